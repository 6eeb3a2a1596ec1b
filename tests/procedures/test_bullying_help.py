"""Procedure 7, bullying or cyberbullying with urgent psychological help (Reg 15.15, 15.16,
15.18, 15.20): triage within hours, a psychologist assigned, help within an hour-level term
(escalated to the head when late), a support plan the head may return, and follow-up
monitoring on a timer until the child is well."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from engine import tasks
from engine.db import unit_of_work
from engine.errors import Forbidden, ValidationFailed
from tests.factories import make_iin
from tests.procedures.service_support import ServiceWorld

KEY = "bullying_help"
REPORT = {
    "child_name": "Мадина Қайратқызы",
    "child_iin": make_iin(date(2012, 11, 3)),
    "school": "Школа-гимназия № 5, г. Костанай",
    "incident_kind": "cyberbullying",
    "suicide_risk_signs": True,
    "description": "Травля в чате класса, высказывания о самоповреждении",
}
HELP = {"help_given": "Кризисная консультация, связь с родителями", "risk_level": "high"}
PLAN = {
    "plan": "8 встреч, работа с классом",
    "sessions_planned": 8,
    "school_measures": "Классный час",
}


@pytest.fixture
def world(sqlite_sessions, clock):
    return ServiceWorld.create(sqlite_sessions, clock)


def _assign(world, task_id, who, by="head"):
    with unit_of_work(world.sessions) as s:
        return tasks.assign_task(
            s, task_id=task_id, actor=world.people[by], assignee=who, clock=world.clock
        )


def test_report_form_refuses_a_wrong_iin_and_other_roles(world):
    with pytest.raises(ValidationFailed) as caught:
        world.start(KEY, "aigul", dict(REPORT, child_iin="061211600013"))
    assert [e.field for e in caught.value.errors] == ["child_iin"]
    with pytest.raises(Forbidden):
        world.start(KEY, "dinara", REPORT)


def test_crisis_help_late_is_escalated_then_plan_returned_and_monitored(world):
    case = world.start(KEY, "aigul", REPORT, business_key="B-1")
    triage = world.task(case.id, "triage")
    assert triage.due_at == datetime(2026, 3, 2, 7, 0, tzinfo=UTC)  # 2 hours
    world.complete(case.id, "triage", {"urgency": "crisis", "parents_informed": True})
    help_task = world.task(case.id, "crisis_help")
    assert help_task.role == "psychologist"
    assert help_task.due_at == world.clock.now() + timedelta(hours=2)
    # The head assigns a psychologist of the case's district; others cannot be assigned.
    with pytest.raises(ValidationFailed):
        _assign(world, help_task.id, "rudny_psy")
    with pytest.raises(Forbidden):
        _assign(world, help_task.id, "dinara", by="aigul")
    assert _assign(world, help_task.id, "dinara").assignee_id == world.people["dinara"].user_id

    start = world.clock.now()
    world.not_due_at(case.id, start + timedelta(hours=1, minutes=59))
    late = world.advance_to(case.id, start + timedelta(hours=2))
    # Non-interrupting: the help goes on, the head is told.
    assert sorted((t.bpmn_id, t.role) for t in late.ready_tasks) == [
        ("crisis_help", "psychologist"),
        ("escalate_help", "head"),
    ]
    world.complete(case.id, "escalate_help", {"action_taken": "Направлен второй психолог"})
    world.complete(case.id, "crisis_help", HELP, role="psychologist")
    world.complete(case.id, "support_plan", PLAN, role="psychologist")
    world.complete(
        case.id,
        "plan_review",
        {"plan_approved": False, "comments": "Добавить работу с родителями"},
        role="head",
    )
    assert world.ready(case.id) == ["support_plan"]
    world.complete(case.id, "support_plan", dict(PLAN, sessions_planned=10))
    world.complete(case.id, "plan_review", {"plan_approved": True})
    waiting = world.instance(case.id)
    assert waiting.status == "waiting"
    # Follow-up every 30 days (unverified internal term).
    assert waiting.next_timer_at == world.clock.now() + timedelta(days=30)
    world.advance_to(case.id, world.clock.now() + timedelta(days=30))
    world.complete(
        case.id, "follow_up", {"child_state": "improving", "notes": "Лучше"}, role="psychologist"
    )
    assert world.instance(case.id).status == "waiting"
    world.advance_to(case.id, world.clock.now() + timedelta(days=30))
    world.complete(case.id, "follow_up", {"child_state": "resolved", "notes": "Конфликт исчерпан"})
    final = world.instance(case.id)
    assert final.status == "completed" and final.next_timer_at is None
    data = world.data(case.id)
    assert data["sessions_planned"] == 10 and data["action_taken"] == "Направлен второй психолог"


def test_standard_case_in_time_and_a_worse_follow_up_revises_the_plan(world):
    report = dict(REPORT, suicide_risk_signs=False, incident_kind="bullying")
    case = world.start(KEY, "aigul", report)
    world.complete(case.id, "triage", {"urgency": "standard", "parents_informed": True})
    session = world.task(case.id, "first_session")
    assert session.due_at == world.clock.now() + timedelta(hours=24)
    assert world.instance(case.id).next_timer_at == world.clock.now() + timedelta(hours=24)
    world.clock.advance(timedelta(hours=5))
    world.complete(case.id, "first_session", dict(HELP, risk_level="low"))
    world.complete(case.id, "support_plan", PLAN)
    world.complete(case.id, "plan_review", {"plan_approved": True})
    world.advance_to(case.id, world.clock.now() + timedelta(days=30))
    world.complete(case.id, "follow_up", {"child_state": "worse", "notes": "Травля продолжается"})
    assert world.ready(case.id) == ["support_plan"]
    world.complete(case.id, "support_plan", dict(PLAN, school_measures="Перевод в другой класс"))
    world.complete(case.id, "plan_review", {"plan_approved": True})
    world.advance_to(case.id, world.clock.now() + timedelta(days=30))
    world.complete(case.id, "follow_up", {"child_state": "resolved", "notes": "Ок"})
    assert world.instance(case.id).status == "completed"
    # The late-help timer never fired: the session came in time.
    assert "action_taken" not in world.data(case.id)
