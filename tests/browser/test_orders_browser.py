"""In a real browser: the head selects ten orders in the signing queue, gives the key's
passphrase once, and all ten are signed and registered with consecutive numbers."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from engine import definitions, orders, signing
from engine.config import BPMN_DIR, FORMS_DIR
from engine.db import unit_of_work
from engine.identity import SYSTEM
from tests.orders_support import CA_PASS, CHILD, PASSPHRASES
from tests.web.conftest import PASSWORD, actors_of


def test_batch_signing_of_ten_orders(live_server, new_page, tmp_path, clock):
    app, base = live_server
    keys = tmp_path / "keys"
    signing.create_ca(passphrase=CA_PASS, folder=keys)
    signing.issue_signer_key(
        username="head",
        full_name="Әлия Сәрсенова",
        ca_passphrase=CA_PASS,
        passphrase=PASSPHRASES["head"],
        folder=keys,
    )
    app.config["ORDERS_KEYS_DIR"] = str(keys)
    sessions = app.extensions["qorgau.sessions"]
    bundle = definitions.read_paths([BPMN_DIR / "head_order.bpmn"], forms_dir=FORMS_DIR)
    with unit_of_work(sessions) as s:
        definitions.deploy(s, bundle, actor=SYSTEM, now=clock.now())
    people = actors_of(sessions)
    ids = []
    for _ in range(10):
        with unit_of_work(sessions) as s:
            view = orders.start_order(
                s,
                actor=people["aigul"],
                template="guardianship.establish",
                data=CHILD,
                clock=clock,
            )
            orders.submit_order(s, order_id=view.id, actor=people["aigul"], clock=clock)
            orders.review_order(
                s, order_id=view.id, actor=people["maria"], decision="approve", clock=clock
            )
        ids.append(view.id)

    page = new_page()
    page.goto(f"{base}/sign-in")
    page.fill("#username", "head")
    page.fill("#password", PASSWORD)
    page.locator("form.stack button[type=submit]").click()
    page.wait_for_url(re.compile(r".*/inbox$"))
    page.goto(f"{base}/orders/queue")
    boxes = page.locator("input[type=checkbox][name=order_id]")
    expect(boxes).to_have_count(10)
    for i in range(10):
        boxes.nth(i).check()
    page.fill("#passphrase", PASSPHRASES["head"])
    page.locator("#sign-selected").click()
    page.wait_for_url(re.compile(r".*/orders/queue$"))
    expect(page.locator(".flash-info")).to_contain_text("№ 1, № 2, № 3")
    expect(page.locator("input[type=checkbox][name=order_id]")).to_have_count(0)

    with unit_of_work(sessions) as s:
        signed = [orders.get_order(s, order_id=i) for i in ids]
        assert sorted(int(o.number) for o in signed) == list(range(1, 11))
        assert {o.status for o in signed} == {"registered"}
        root = signing.load_ca_certificate(keys)
        for o in signed:
            result = orders.verify_order_pdf(
                s, data=orders.order_pdf(s, order_id=o.id), trust_roots=[root]
            )
            assert result.ok, result.problems
