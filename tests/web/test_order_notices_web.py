"""The notices of an order reach the people in the browser: signing in the queue and
recording the delivery on the order's page put them in the author's notifications."""

from __future__ import annotations

from tests.orders_support import PASSPHRASES
from tests.web.test_orders_web import keys, login, oapp, queued  # noqa: F401 - fixtures


def test_the_author_reads_the_signing_and_the_delivery_notices(oapp, people, clock):  # noqa: F811
    [order_id] = queued(oapp, people, clock)
    head = login(oapp, "head")
    head.get("/orders/queue")
    signed = head.post("/orders/sign", {"order_id": [order_id], "passphrase": PASSPHRASES["head"]})
    assert signed.status_code == 302
    assert head.client.get("/notifications").get_json()["unread"] == 0

    author = login(oapp, "aigul")
    bell = author.client.get("/notifications").get_json()
    assert bell["unread"] == 1
    [item] = bell["items"]
    assert item["kind"] == "order"
    assert item["title"].startswith("Бұйрық № 1 қол қойылып, тіркелді / Приказ № 1")
    assert "Кәмелетке толмаған Айғаным" in item["body"] and "Приказ № 1 от" in item["body"]

    author.get(f"/orders/{order_id}")
    recorded = author.post(f"/orders/{order_id}/notify", {"notified_to": "Ісмағұлова Г. Һ."})
    assert recorded.status_code == 302
    bell = author.client.get("/notifications").get_json()
    assert [i["title"] for i in bell["items"]][0] == "Бұйрық № 1 хабарланды / Приказ № 1 доведён"
    assert "Кому доведён: Ісмағұлова Г. Һ." in bell["items"][0]["body"]
    assert bell["unread"] == 2
