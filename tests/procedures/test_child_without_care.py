"""Procedure 1, a child left without parental care (Reg 15.2, 15.3, 15.10): both placement
paths, the legal terms of each step, and who may act."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from engine import instances, tasks
from engine.config import BPMN_DIR
from engine.db import unit_of_work
from engine.deadlines import parse_rules
from engine.errors import Forbidden, ValidationFailed
from engine.models import HumanTask
from engine.spiff.xmlsafe import parse_untrusted
from tests.procedures.care_support import CareWorld

REPORT = {
    "reported_on": "2026-03-02",
    "informant_kind": "school",
    "informant_name": "Қостанай қ. № 5 мектеп",
    "child_name": "Нұрлан",
    "child_iin": "190515500019",
    "found_at": "Қостанай қ., Абай даңғылы",
    "circumstances": "Ата-анасы үш күннен бері үйде жоқ.",
}
EXAM = {
    "exam_date": "2026-03-03",
    "exam_act_number": "Б-3",
    "exam_findings": "Үйде тамақ жоқ, бала жалғыз.",
    "immediate_threat": True,
}
PERMANENT = {"permanent_form": "guardianship", "permanent_form_reason": "Әжесі өтініш берді."}


@pytest.fixture
def world(sqlite_sessions, clock):
    return CareWorld.create(sqlite_sessions, clock)


def test_report_form_checks_the_iin_and_who_may_register(world):
    with pytest.raises(ValidationFailed) as caught:
        world.start("child_without_care", "aigul", dict(REPORT, child_iin="190515500018"))
    assert [e.field for e in caught.value.errors] == ["child_iin"]
    for outsider in ("maria", "head"):
        with pytest.raises(Forbidden):
            world.start("child_without_care", outsider, REPORT)
    # A child found without papers is registered without an IIN.
    no_iin = {k: v for k, v in REPORT.items() if k != "child_iin"}
    assert world.start("child_without_care", "aigul", no_iin).status == "running"


def test_placement_in_an_adaptation_centre_then_a_permanent_form(world):
    view = world.start("child_without_care", "aigul", REPORT, business_key="C-1")
    registration = world.task(view.id, "primary_registration")
    # Primary registration: 1 working day after Monday 2 March 2026, to the end of Tuesday
    # in Kostanay (UTC+5).
    assert registration.deadline_rule == "child.primary_registration"
    assert registration.due_at == datetime(2026, 3, 3, 18, 59, 59, tzinfo=UTC)
    with unit_of_work(world.sessions) as s:
        row = s.scalars(select(HumanTask).where(HumanTask.id == registration.id)).one()
        assert (row.child_name, row.child_iin, row.case_number) == ("Нұрлан", "190515500019", "C-1")

    world.clock.advance(timedelta(days=1))  # Tuesday
    world.complete(
        view.id,
        "primary_registration",
        "aigul",
        {"registered_on": "2026-03-03", "data_bank_number": "РБД-2026-0042"},
    )
    exam = world.task(view.id, "examine_living_conditions")
    # Three working days from Tuesday 3 March: Wednesday, Thursday, Friday 6 March.
    assert exam.due_at == datetime(2026, 3, 6, 18, 59, 59, tzinfo=UTC)
    world.complete(view.id, "examine_living_conditions", "aigul", EXAM)
    world.complete(
        view.id,
        "temporary_placement",
        "aigul",
        {
            "placement": "adaptation_centre",
            "placement_organisation": "Қостанай облыстық бейімдеу орталығы",
            "placed_on": "2026-03-03",
        },
    )
    permanent = world.task(view.id, "choose_permanent_form")
    assert permanent.due_at is None  # no legal term is known for the choice
    done = world.complete(view.id, "choose_permanent_form", "aigul", PERMANENT)
    assert done.status == "completed"
    data = world.data(view.id)
    assert (data["placement"], data["permanent_form"]) == ("adaptation_centre", "guardianship")
    assert "transferred_to" not in data


def test_a_health_organisation_holds_the_child_72_hours_at_most(world):
    view = world.start("child_without_care", "aigul", REPORT)
    world.complete(
        view.id,
        "primary_registration",
        "aigul",
        {"registered_on": "2026-03-02", "data_bank_number": "РБД-2026-0043"},
    )
    world.complete(view.id, "examine_living_conditions", "aigul", EXAM)
    world.clock.set(datetime(2026, 3, 3, 22, 30, tzinfo=UTC))
    world.complete(
        view.id,
        "temporary_placement",
        "aigul",
        {
            "placement": "health_organisation",
            "placement_organisation": "Қостанай облыстық балалар ауруханасы",
            "placed_on": "2026-03-04",
        },
    )
    transfer = world.task(view.id, "health_transfer")
    # Three days (сутки) count in hours from the placement, through nights and weekends.
    assert transfer.deadline_rule == "child.health_placement"
    assert transfer.due_at == datetime(2026, 3, 6, 22, 30, tzinfo=UTC)
    with pytest.raises(ValidationFailed) as caught:
        world.complete(
            view.id,
            "health_transfer",
            "aigul",
            {
                "transferred_to": "health_organisation",
                "transfer_organisation": "x",
                "transferred_on": "2026-03-05",
            },
        )
    assert [e.field for e in caught.value.errors] == ["transferred_to"]
    world.complete(
        view.id,
        "health_transfer",
        "aigul",
        {
            "transferred_to": "professional_receiving_family",
            "transfer_organisation": "Ахметовтар отбасы",
            "transferred_on": "2026-03-05",
        },
    )
    done = world.complete(view.id, "choose_permanent_form", "aigul", PERMANENT)
    assert done.status == "completed"
    data = world.data(view.id)
    assert (data["placement"], data["transferred_to"]) == (
        "health_organisation",
        "professional_receiving_family",
    )


def _placed_in_hospital(world, placed_at: datetime) -> int:
    view = world.start("child_without_care", "aigul", REPORT)
    registration = {"registered_on": "2026-03-02", "data_bank_number": "РБД-2026-0044"}
    world.complete(view.id, "primary_registration", "aigul", registration, check_outsiders=False)
    world.complete(view.id, "examine_living_conditions", "aigul", EXAM, check_outsiders=False)
    world.clock.set(placed_at)
    world.complete(
        view.id,
        "temporary_placement",
        "aigul",
        {
            "placement": "health_organisation",
            "placement_organisation": "Қостанай облыстық балалар ауруханасы",
            "placed_on": placed_at.date().isoformat(),
        },
        check_outsiders=False,
    )
    return view.id


def _fire(world, instance_id):
    with unit_of_work(world.sessions) as s:
        return instances.fire_timers(s, instance_id=instance_id, clock=world.clock)


def test_the_head_is_told_when_72_hours_pass_and_both_branches_keep_their_data(world):
    placed_at = datetime(2026, 3, 6, 9, 0, tzinfo=UTC)  # a Friday: the term runs on weekends
    instance_id = _placed_in_hospital(world, placed_at)
    view = world.instance(instance_id)
    [transfer] = view.ready_tasks
    assert view.next_timer_at == transfer.due_at == placed_at + timedelta(hours=72)

    world.clock.advance(timedelta(hours=71, minutes=59))
    assert [t.bpmn_id for t in _fire(world, instance_id).ready_tasks] == ["health_transfer"]
    world.clock.advance(timedelta(minutes=1))
    fired = _fire(world, instance_id)
    # Non-interrupting: the specialist's transfer task stays, the head gets the escalation.
    assert sorted((t.bpmn_id, t.role) for t in fired.ready_tasks) == [
        ("health_overdue", "head"),
        ("health_transfer", "specialist"),
    ]
    assert fired.next_timer_at is None
    escalation = next(t for t in fired.ready_tasks if t.bpmn_id == "health_overdue")
    for outsider in ("aigul", "maria"):
        with pytest.raises(Forbidden):
            with unit_of_work(world.sessions) as s:
                tasks.complete_task(
                    s,
                    task_id=escalation.id,
                    actor=world.people[outsider],
                    data={},
                    clock=world.clock,
                )
    with unit_of_work(world.sessions) as s:
        tasks.complete_task(
            s,
            task_id=escalation.id,
            actor=world.people["head"],
            data={"head_instruction": "Move the child today.", "instruction_due_on": "2026-03-09"},
            clock=world.clock,
        )
    world.complete(
        instance_id,
        "health_transfer",
        "aigul",
        {
            "transferred_to": "adaptation_centre",
            "transfer_organisation": "Қостанай облыстық бейімдеу орталығы",
            "transferred_on": "2026-03-09",
        },
    )
    done = world.complete(instance_id, "choose_permanent_form", "aigul", PERMANENT)
    assert done.status == "completed"
    data = world.data(instance_id)
    # What the head wrote in the escalation branch survives beside the main path's data.
    assert data["head_instruction"] == "Move the child today."
    assert (data["transferred_to"], data["permanent_form"]) == ("adaptation_centre", "guardianship")


def test_no_escalation_when_the_child_is_moved_in_time(world):
    instance_id = _placed_in_hospital(world, datetime(2026, 3, 6, 9, 0, tzinfo=UTC))
    world.clock.advance(timedelta(hours=30))
    world.complete(
        instance_id,
        "health_transfer",
        "aigul",
        {
            "transferred_to": "professional_receiving_family",
            "transfer_organisation": "Ахметовтар отбасы",
            "transferred_on": "2026-03-07",
        },
        check_outsiders=False,
    )
    view = world.instance(instance_id)
    assert view.next_timer_at is None
    world.clock.advance(timedelta(days=5))
    assert [t.bpmn_id for t in _fire(world, instance_id).ready_tasks] == ["choose_permanent_form"]


def test_the_timer_duration_is_the_deadline_rule():
    root = parse_untrusted((BPMN_DIR / "child_without_care.bpmn").read_bytes(), "x").getroot()
    [duration] = root.iter("{http://www.omg.org/spec/BPMN/20100524/MODEL}timeDuration")
    rules, problems = parse_rules("deadlines.yaml", (BPMN_DIR / "deadlines.yaml").read_bytes())
    assert problems == []
    [rule] = rules["child.health_placement"]
    assert rule["unit"] == "hours"
    assert duration.text == f'"PT{rule["value"]}H"'
