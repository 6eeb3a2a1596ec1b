"""Procedure 8, information request to another state body (Reg 14): send, wait for the
reply as a correlated message, remind on the due date, escalate to the head when late."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from engine import instances
from engine.db import unit_of_work
from engine.errors import Forbidden, NotFound
from tests.procedures.service_support import ServiceWorld, local

KEY = "information_request"
START = {"addressee": "Қостанай облысының ПД", "subject": "Сведения о родителях ребёнка"}


@pytest.fixture
def world(sqlite_sessions, clock):
    return ServiceWorld.create(sqlite_sessions, clock)


def _send(world, case_id, due="2026-03-12", number="01-15/1"):
    world.complete(
        case_id,
        "prepare_request",
        {
            "request_number": number,
            "sent_on": "2026-03-02",
            "reply_due_on": due,
            "request_text": "Просим представить сведения",
        },
        role="specialist",
    )


def _reply(world, business_key, payload):
    with unit_of_work(world.sessions) as s:
        return instances.correlate_message(
            s,
            message_name="information_reply",
            business_key=business_key,
            payload=payload,
            clock=world.clock,
        )


def test_only_a_specialist_starts_a_request(world):
    with pytest.raises(Forbidden):
        world.start(KEY, "maria", START, business_key="REQ-0")


def test_reply_in_time_is_recorded(world):
    case = world.start(KEY, "aigul", START, business_key="REQ-1")
    task = world.task(case.id, "prepare_request")
    # 1 working day after Monday 2 March 2026, to its end in Kostanay.
    assert task.due_at == datetime(2026, 3, 3, 18, 59, 59, tzinfo=UTC)
    _send(world, case.id)
    waiting = world.instance(case.id)
    assert waiting.status == "waiting"
    # Reminder at 09:00 on the due date in Kostanay.
    assert waiting.next_timer_at == datetime(2026, 3, 12, 4, 0, tzinfo=UTC)
    world.not_due_at(case.id, local("2026-03-12T08:59"))

    answered = _reply(world, "REQ-1", {"letter": "№ 5-12", "parents": "not found"})
    assert [t.bpmn_id for t in answered.ready_tasks] == ["record_reply"]
    world.complete(
        case.id, "record_reply", {"reply_summary": "Родители не найдены", "reply_complete": True}
    )
    done = world.instance(case.id)
    assert done.status == "completed"
    data = world.data(case.id)
    assert data["reply"] == {"letter": "№ 5-12", "parents": "not found"}
    assert data["requests_sent"] == 1
    with pytest.raises(NotFound):
        _reply(world, "REQ-1", {})


def test_incomplete_reply_sends_the_request_again(world):
    case = world.start(KEY, "aigul", START, business_key="REQ-2")
    _send(world, case.id)
    _reply(world, "REQ-2", {"letter": "partial"})
    world.complete(
        case.id, "record_reply", {"reply_summary": "Не все сведения", "reply_complete": False}
    )
    assert world.ready(case.id) == ["prepare_request"]
    _send(world, case.id, due="2026-03-20", number="01-15/2")
    assert world.data(case.id)["requests_sent"] == 2
    assert world.instance(case.id).next_timer_at == datetime(2026, 3, 20, 4, 0, tzinfo=UTC)
    _reply(world, "REQ-2", {"letter": "full"})
    world.complete(case.id, "record_reply", {"reply_summary": "Полный", "reply_complete": True})
    assert world.instance(case.id).status == "completed"


def test_late_reply_reminds_then_escalates_and_the_head_closes(world):
    case = world.start(KEY, "aigul", START, business_key="REQ-3")
    _send(world, case.id)
    reminded = world.advance_to(case.id, local("2026-03-12T09:00"))
    assert [t.bpmn_id for t in reminded.ready_tasks] == ["send_reminder"]
    # The reminder does not stop the wait: the reply may still come.
    assert reminded.status == "running"
    # Escalation on the morning of the next working day: Friday 13 March.
    assert reminded.next_timer_at == datetime(2026, 3, 13, 4, 0, tzinfo=UTC)
    world.complete(
        case.id, "send_reminder", {"reminder_number": "01-15/1-1", "reminded_on": "2026-03-12"}
    )
    assert world.instance(case.id).status == "waiting"

    escalated = world.advance_to(case.id, local("2026-03-13T09:00"))
    assert [(t.bpmn_id, t.role) for t in escalated.ready_tasks] == [("escalation", "head")]
    # The wait was interrupted: a late reply now reaches nobody.
    with pytest.raises(NotFound):
        _reply(world, "REQ-3", {"letter": "late"})
    world.complete(
        case.id,
        "escalation",
        {"escalation_decision": "close", "instructions": "Обратиться в прокуратуру"},
        role="head",
    )
    assert world.instance(case.id).status == "completed"


def test_head_orders_the_request_repeated(world):
    case = world.start(KEY, "aigul", START, business_key="REQ-4")
    _send(world, case.id, due="2026-03-05")
    world.advance_to(case.id, local("2026-03-05T09:00"))
    # Escalation on Friday 6 March (a working day).
    world.advance_to(case.id, local("2026-03-06T09:00"))
    assert world.ready(case.id) == ["escalation", "send_reminder"]
    world.complete(
        case.id,
        "escalation",
        {"escalation_decision": "repeat_request", "instructions": "Повторить за подписью"},
    )
    assert world.ready(case.id) == ["prepare_request", "send_reminder"]
    world.complete(
        case.id, "send_reminder", {"reminder_number": "01-15/1-1", "reminded_on": "2026-03-05"}
    )
    _send(world, case.id, due="2026-03-20", number="01-15/3")
    _reply(world, "REQ-4", {"letter": "ok"})
    world.complete(case.id, "record_reply", {"reply_summary": "Получено", "reply_complete": True})
    final = world.instance(case.id)
    assert final.status == "completed"
    assert world.data(case.id)["requests_sent"] == 2
