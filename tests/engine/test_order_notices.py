"""What the people of an order are told: its author when it is signed and registered, the
author and the process's starter when it is delivered; each once, in Kazakh and Russian,
and through the e-mail outbox. On SQLite and PostgreSQL."""

from __future__ import annotations

import email
import email.policy
from datetime import date, timedelta

import pytest
from sqlalchemy import select, update

from engine import instances, notifications, order_notices, orders
from engine.db import unit_of_work
from engine.errors import Forbidden
from engine.models import HumanTask, Notification, User
from engine.models.orders import Order
from tests.engine.test_scheduler import smtp_sink  # noqa: F401 - a fixture, used below
from tests.orders_support import CHILD, OrderWorld


@pytest.fixture
def world(sessions, clock, tmp_path):
    return OrderWorld.create(sessions, clock, tmp_path / "keys")


def _rows(world, **where):
    with unit_of_work(world.sessions) as s:
        stmt = select(Notification).order_by(Notification.id)
        for name, value in where.items():
            stmt = stmt.where(getattr(Notification, name) == value)
        rows = s.scalars(stmt).all()
        names = {u.id: u.username for u in s.scalars(select(User))}
        return [(names[r.user_id], r) for r in rows]


def _task_id(world, instance_id, bpmn_id):
    with unit_of_work(world.sessions) as s:
        return s.scalar(
            select(HumanTask.id).where(
                HumanTask.instance_id == instance_id, HumanTask.bpmn_id == bpmn_id
            )
        )


def _deliver(world, order_id, who="aigul", to="Ісмағұлова Г. Һ."):
    with unit_of_work(world.sessions) as s:
        return orders.notify_order(
            s, order_id=order_id, actor=world.people[who], notified_to=to, clock=world.clock
        )


def test_signing_tells_the_author_the_number_once_in_both_languages(world):
    order = world.to_queue()
    assert _rows(world) == []
    [signed] = world.sign([order.id])
    told = _rows(world)
    assert [name for name, _ in told] == ["aigul"]  # not the lawyer, not the head
    row = told[0][1]
    assert (row.kind, row.email_status, row.read_at) == ("order", "pending", None)
    assert row.instance_id == order.instance_id
    assert row.task_id == _task_id(world, order.instance_id, "sign")
    assert row.title == "Бұйрық № 1 қол қойылып, тіркелді / Приказ № 1 подписан и зарегистрирован"
    assert f"Бұйрық № 1, 02.03.2026: «{signed.title_kk}»." in row.body
    assert f"Приказ № 1 от 02.03.2026: «{signed.title_ru}»." in row.body
    assert "Қол қойған: Head." in row.body
    assert "Подписал(а): Head." in row.body
    # The author sees it among their unread notifications.
    with unit_of_work(world.sessions) as s:
        [unread] = notifications.unread(s, actor=world.people["aigul"])
        assert unread.id == row.id and unread.kind == "order"
    # Delivery is a new step: its own notice; the signing one is not repeated.
    _deliver(world, order.id)
    assert [(n, r.task_id) for n, r in _rows(world)] == [
        ("aigul", row.task_id),
        ("aigul", _task_id(world, order.instance_id, "publish")),
    ]


def test_a_batch_tells_each_author_of_each_order(world):
    a, b = world.to_queue(), world.to_queue(who="erzhan")
    world.sign([a.id, b.id])
    told = [(n, r.title.split(" / ")[1]) for n, r in _rows(world)]
    assert sorted(told) == [
        ("aigul", "Приказ № 1 подписан и зарегистрирован"),
        ("erzhan", "Приказ № 2 подписан и зарегистрирован"),
    ]


def test_a_deputy_signing_for_the_head_is_named_with_the_head(world):
    order = world.to_queue()
    world.delegate(date(2026, 3, 2), date(2026, 3, 6))
    world.sign([order.id], who="deputy")
    [(name, row)] = _rows(world)
    assert name == "aigul"
    assert "Қол қойған: Сәкен Дәулетұлы Жүніс; басшының атынан" in row.body
    assert "за руководителя (по делегированию): Head." in row.body


def test_a_refused_signing_tells_nobody(world):
    a, b = world.to_queue(), world.to_queue(who="chief")
    with pytest.raises(Forbidden):
        world.sign([a.id, b.id], who="chief")  # chief drafted b: all or none
    assert _rows(world) == []


def test_delivery_tells_the_author_and_the_starter_once_each(world):
    # erzhan starts the order's process; aigul drafts the order in it.
    with unit_of_work(world.sessions) as s:
        started = instances.start_process(
            s,
            process_key=orders.PROCESS_KEY,
            actor=world.people["erzhan"],
            data={"order_template": "guardianship.establish", "order_subject": "Қорғаншылық"},
            clock=world.clock,
        )
        order = orders.start_order(
            s,
            actor=world.people["aigul"],
            template="guardianship.establish",
            data=CHILD,
            instance_id=started.id,
            clock=world.clock,
        )
        orders.submit_order(s, order_id=order.id, actor=world.people["aigul"], clock=world.clock)
        orders.review_order(
            s, order_id=order.id, actor=world.people["maria"], decision="approve", clock=world.clock
        )
    world.sign([order.id])
    assert [n for n, _ in _rows(world)] == ["aigul"]  # signing tells the author only
    world.clock.advance(timedelta(hours=2))
    _deliver(world, order.id, to="Ісмағұлова Г. Һ., 02.03.2026 қолма-қол")
    publish = _task_id(world, order.instance_id, "publish")
    told = _rows(world, task_id=publish)
    assert sorted(n for n, _ in told) == ["aigul", "erzhan"]
    for _, row in told:
        assert row.kind == "order" and row.email_status == "pending"
        assert row.title == "Бұйрық № 1 хабарланды / Приказ № 1 доведён"
        assert "Кімге хабарланды: Ісмағұлова Г. Һ., 02.03.2026 қолма-қол." in row.body
        assert "Кому доведён: Ісмағұлова Г. Һ., 02.03.2026 қолма-қол." in row.body
        assert "Мүдделі тұлғаларға хабарланды." in row.body
        assert "Доведён до заинтересованных лиц." in row.body
        assert "Белгілеген: Aigul." in row.body and "Отметил(а): Aigul." in row.body
    # The same step told twice (a retried job) adds nobody.
    with unit_of_work(world.sessions) as s:
        row = s.get(Order, order.id)
        again = order_notices.tell_delivered(
            s,
            row=row,
            notified_to="x",
            delivery="notified",
            by=world.people["aigul"],
            task_id=publish,
            now=world.clock.now(),
        )
    assert again == []
    assert len(_rows(world, task_id=publish)) == 2


def test_when_the_author_started_the_process_delivery_tells_them_once(world):
    order = world.to_queue()
    world.sign([order.id])
    _deliver(world, order.id)
    publish = _task_id(world, order.instance_id, "publish")
    assert [n for n, _ in _rows(world, task_id=publish)] == ["aigul"]


def test_an_inactive_author_is_not_told(world):
    order = world.to_queue()
    with unit_of_work(world.sessions) as s:
        s.execute(update(User).where(User.username == "aigul").values(is_active=False))
    world.sign([order.id])
    assert _rows(world) == []


def test_the_notice_goes_out_by_email_in_both_languages(world, smtp_sink):  # noqa: F811
    sink, port = smtp_sink
    with unit_of_work(world.sessions) as s:
        s.execute(update(User).where(User.username == "aigul").values(email="aigul@example.kz"))
    order = world.to_queue()
    world.sign([order.id])
    settings = notifications.SmtpSettings(host="127.0.0.1", port=port, sender="qorgau@example.kz")
    with unit_of_work(world.sessions) as s:
        sent = notifications.send_pending_emails(s, settings=settings, now=world.clock.now())
    assert sent == 1
    [(to, content)] = sink.messages
    message = email.message_from_string(content, policy=email.policy.default)
    assert to == ["aigul@example.kz"]
    assert message["Subject"] == (
        "Бұйрық № 1 қол қойылып, тіркелді / Приказ № 1 подписан и зарегистрирован"
    )
    text = message.get_content()
    assert "Бұйрықты өтініш берушіге жеткізіп" in text and "Доведите приказ до заявителя" in text
    assert [r.email_status for _, r in _rows(world)] == ["sent"]
