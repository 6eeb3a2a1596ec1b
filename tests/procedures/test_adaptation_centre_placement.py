"""Procedure 3, placement in an adaptation centre for minors (Reg 15.4, 15.5; Law No. 591 of
09.07.2004, Art. 11): grounds, decision of the guardianship body (an order of the head) or a
court ruling, admission, a stay review before the stay expires, discharge."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from engine.errors import Forbidden
from tests.factories import make_iin
from tests.procedures.service_support import ServiceWorld, local

KEY = "adaptation_centre_placement"


@pytest.fixture
def world(sqlite_sessions, clock):
    return ServiceWorld.create(sqlite_sessions, clock)


def _start(world, born=date(2014, 5, 15)):
    return world.start(
        KEY,
        "aigul",
        {
            "child_name": "Аружан Серікова",
            "child_iin": make_iin(born),
            "detected_on": "2026-03-02",
            "circumstances": "Обнаружена без присмотра на вокзале",
        },
        business_key="AC-1",
    )


def _grounds(world, case_id, category, basis):
    world.complete(
        case_id,
        "assess_grounds",
        {"category": category, "placement_basis": basis},
        role="specialist",
    )


ADMISSION = {
    "centre_name": "Центр адаптации несовершеннолетних г. Костанай",
    "admitted_on": "2026-03-02",
    "stay_until": "2026-04-01",
    "review_on": "2026-03-27",
    "medical_check_done": True,
}


def test_only_a_specialist_starts(world):
    with pytest.raises(Forbidden):
        world.start(KEY, "head", {})


def test_guardianship_decision_admission_and_return_to_family(world):
    case = _start(world)
    assert world.task(case.id, "assess_grounds").due_at == datetime(2026, 3, 3, 5, tzinfo=UTC)
    _grounds(world, case.id, "without_parental_care", "guardianship_body_decision")
    data = world.data(case.id)
    assert data["grounds_ok"] is True and data["child_age"] == 11
    world.sign_order(case.id, "adaptation_centre.placement_decision")
    world.complete(case.id, "admit", ADMISSION, role="specialist")
    plan = world.task(case.id, "arrange_placement")
    # The maximum stay (30 calendar days, unverified) runs from the task's creation.
    assert plan.due_at == datetime(2026, 4, 1, 18, 59, 59, tzinfo=UTC)
    waiting = world.instance(case.id)
    assert waiting.next_timer_at == datetime(2026, 3, 27, 4, 0, tzinfo=UTC)
    world.complete(
        case.id, "arrange_placement", {"outcome": "return_to_family", "receiving_person": "Мать"}
    )
    world.complete(
        case.id, "discharge", {"discharged_on": "2026-03-10", "discharge_act_number": "А-7"}
    )
    done = world.instance(case.id)
    assert done.status == "completed" and done.next_timer_at is None
    assert world.data(case.id)["order_number"] == f"{case.id}-НҚ"


def test_court_ruling_needs_no_order_and_ends_in_a_family_form(world):
    case = _start(world)
    _grounds(world, case.id, "special_school_referral", "court_ruling")
    assert world.ready(case.id) == ["record_court_ruling"]
    world.complete(
        case.id,
        "record_court_ruling",
        {
            "court_name": "СМСН по делам несовершеннолетних",
            "ruling_number": "2-15/26",
            "ruling_date": "2026-03-01",
        },
    )
    world.complete(case.id, "admit", ADMISSION)
    world.complete(
        case.id,
        "arrange_placement",
        {
            "outcome": "family_form",
            "family_form": "patronage",
            "receiving_person": "Патронатный воспитатель",
        },
    )
    world.complete(
        case.id, "discharge", {"discharged_on": "2026-03-20", "discharge_act_number": "А-8"}
    )
    assert world.instance(case.id).status == "completed"
    assert "order_number" not in world.data(case.id)


@pytest.mark.parametrize(
    ("born", "category", "basis", "ok"),
    [
        # Law 591 Art. 11: a special-school referral needs a court ruling.
        (date(2012, 1, 10), "special_school_referral", "guardianship_body_decision", False),
        # The other categories need the guardianship body's decision.
        (date(2012, 1, 10), "special_social_services", "court_ruling", False),
        # Neglected or homeless children are admitted from the age of 3 (on 2 March 2026).
        (date(2023, 3, 3), "neglected_or_homeless", "guardianship_body_decision", False),
        (date(2023, 3, 2), "neglected_or_homeless", "guardianship_body_decision", True),
        # Minors only: 17 is admitted, 18 is not.
        (date(2008, 3, 3), "without_parental_care", "guardianship_body_decision", True),
        (date(2008, 3, 2), "without_parental_care", "guardianship_body_decision", False),
    ],
)
def test_grounds_at_their_boundaries(world, born, category, basis, ok):
    case = _start(world, born)
    _grounds(world, case.id, category, basis)
    assert world.data(case.id)["grounds_ok"] is ok
    if ok:
        assert world.ready(case.id) == ["draft"]
        return
    assert world.ready(case.id) == ["refuse_placement"]
    world.complete(case.id, "refuse_placement", {"refusal_reason": "Нет оснований (ст. 11)"})
    assert world.instance(case.id).status == "completed"


def test_stay_review_before_expiry_extends_the_stay(world):
    case = _start(world)
    _grounds(world, case.id, "special_school_referral", "court_ruling")
    world.complete(
        case.id,
        "record_court_ruling",
        {"court_name": "Суд", "ruling_number": "2-16/26", "ruling_date": "2026-03-01"},
    )
    world.complete(case.id, "admit", ADMISSION)
    world.not_due_at(case.id, local("2026-03-27T08:59"))
    reviewed = world.advance_to(case.id, local("2026-03-27T09:00"))
    # The timer interrupted the placement work and brought the stay before the head.
    assert [(t.bpmn_id, t.role) for t in reviewed.ready_tasks] == [("review_stay", "head")]
    world.complete(
        case.id,
        "review_stay",
        {
            "stay_until": "2026-05-01",
            "review_on": "2026-04-27",
            "review_reasons": "Идёт подбор приёмной семьи",
        },
        role="head",
    )
    again = world.instance(case.id)
    assert [t.bpmn_id for t in again.ready_tasks] == ["arrange_placement"]
    assert again.next_timer_at == datetime(2026, 4, 27, 4, 0, tzinfo=UTC)
    # A second review, then the child is placed.
    world.advance_to(case.id, local("2026-04-27T09:00"))
    world.complete(
        case.id,
        "review_stay",
        {"stay_until": "2026-05-31", "review_on": "2026-05-25", "review_reasons": "Суд"},
    )
    world.complete(
        case.id,
        "arrange_placement",
        {"outcome": "family_form", "family_form": "guardianship", "receiving_person": "Тётя"},
    )
    world.complete(
        case.id, "discharge", {"discharged_on": "2026-05-05", "discharge_act_number": "А-9"}
    )
    assert world.instance(case.id).status == "completed"
    data = world.data(case.id)
    assert (data["stay_until"], data["outcome"]) == ("2026-05-31", "family_form")
