"""Procedure 2, guardianship or custody appointment (Reg 15.2, 15.11): every path, the
eligibility table at its boundaries, and the IIN checks of the application form."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from engine.errors import Forbidden, ValidationFailed
from tests.factories import make_iin
from tests.procedures.care_support import CareWorld, drive_order

ASSESSED_ON = date(2026, 3, 5)

APPLICATION = {
    "application_date": "2026-03-02",
    "channel": "egov",
    "applicant_name": "Гүлнар Сейтқалиева",
    "applicant_iin": make_iin(date(1965, 4, 12), "female"),
    "applicant_phone": "+77011234567",
    "applicant_address": "Қостанай қ., Гоголь к-сі, 1",
    "applicant_married": False,
    "relationship": "grandparent",
    "child_name": "Аружан",
    "child_iin": make_iin(date(2018, 5, 15), "female"),
    "child_birth_date": None,
}
ALL_DOCUMENTS = {
    "doc_identity": True,
    "doc_spouse_consent": False,
    "doc_medical": True,
    "doc_no_parental_care": True,
    "doc_income": True,
    "doc_housing": True,
    "doc_training": False,
    "doc_registers": True,
}
EXAM = {
    "exam_date": "2026-03-04",
    "exam_act_number": "А-12",
    "permanent_residence": True,
    "housing_adequate": True,
    "exam_findings": "Жеке бөлме бар.",
}
FACTS = {
    "assessed_on": ASSESSED_ON.isoformat(),
    "legally_capable": True,
    "parental_rights_restricted": False,
    "removed_as_guardian": False,
    "adoption_cancelled_by_fault": False,
    "health_bar": False,
    "conviction_bar": False,
    "stateless": False,
    "income_below_minimum": False,
    "on_narcology_register": False,
    "on_psychiatric_register": False,
    "years_raising_child": 0,
    "applicant_consents": True,
    "child_opinion": "not_heard",
}
NOTICE = {"notified_on": "2026-03-12", "notice_channel": "egov"}


@pytest.fixture
def world(sqlite_sessions, clock):
    return CareWorld.create(sqlite_sessions, clock)


def _split(overrides: dict[str, Any]) -> list[dict[str, Any]]:
    """The application, documents, examination and facts, with ``overrides`` put in place."""
    steps = [dict(APPLICATION), dict(ALL_DOCUMENTS), dict(EXAM), dict(FACTS)]
    for key, value in overrides.items():
        [target] = [step for step in steps if key in step]
        target[key] = value
    return steps


def to_decision(world: CareWorld, check_outsiders: bool = False, **overrides: Any) -> int:
    """Start a case and take it through documents, examination and the facts to the DMN."""
    app, documents, exam, facts = _split(overrides)
    view = world.start("guardianship_appointment", "aigul", app, business_key="G-1")
    world.complete(
        view.id, "check_completeness", "aigul", documents, check_outsiders=check_outsiders
    )
    world.complete(
        view.id, "examine_living_conditions", "aigul", exam, check_outsiders=check_outsiders
    )
    world.complete(
        view.id, "record_eligibility_facts", "aigul", facts, check_outsiders=check_outsiders
    )
    return view.id


def decide(world: CareWorld, **overrides: Any) -> dict[str, Any]:
    instance_id = to_decision(world, **overrides)
    # Either way the case now waits in the order of the head (the call activity).
    assert world.ready(instance_id) == ["draft"]
    return world.data(instance_id)


# --- the application form ------------------------------------------------------------------


def test_iin_worked_examples_pass_and_wrong_check_digits_name_the_field(world):
    ok = dict(APPLICATION, applicant_iin="791028302728", child_iin="061211600012")
    assert world.start("guardianship_appointment", "aigul", ok).status == "running"
    for field, bad in (("applicant_iin", "791028302729"), ("child_iin", "061211600013")):
        with pytest.raises(ValidationFailed) as caught:
            world.start("guardianship_appointment", "aigul", dict(ok, **{field: bad}))
        errors = {e.field: e.message for e in caught.value.errors}
        assert list(errors) == [field]
        assert "check digit" in errors[field]


def test_the_child_needs_an_iin_or_a_birth_date(world):
    with pytest.raises(ValidationFailed):
        world.start("guardianship_appointment", "aigul", dict(APPLICATION, child_iin=None))
    view = world.start(
        "guardianship_appointment",
        "aigul",
        dict(APPLICATION, child_iin=None, child_birth_date="2018-05-15"),
    )
    assert view.status == "running"


def test_only_a_specialist_registers_an_application(world):
    for outsider in ("maria", "head"):
        with pytest.raises(Forbidden):
            world.start("guardianship_appointment", outsider, APPLICATION)


# --- paths ---------------------------------------------------------------------------------


def test_appointment_of_a_close_relative_end_to_end(world):
    view = world.start("guardianship_appointment", "aigul", APPLICATION, business_key="G-7")
    first = world.task(view.id, "check_completeness")
    # The service term (19 working days, unverified) runs from the application: Monday
    # 2 March 2026 plus 19 working days, skipping 9 March and Nauryz (23-25 March).
    assert first.deadline_rule == "guardianship.service_term"
    assert first.due_at == datetime(2026, 4, 2, 18, 59, 59, tzinfo=UTC)
    world.complete(view.id, "check_completeness", "aigul", ALL_DOCUMENTS)
    world.complete(view.id, "examine_living_conditions", "aigul", EXAM)
    world.complete(view.id, "record_eligibility_facts", "aigul", FACTS)
    data = world.data(view.id)
    assert (data["eligible"], data["priority"], data["refusal_reason"]) == (
        True,
        "close_relative",
        None,
    )
    assert (data["guardianship_kind"], data["order_template"]) == (
        "guardianship",
        "guardianship.establish",
    )
    assert (data["child_age"], data["applicant_age"], data["applicant_is_male"]) == (7, 60, False)
    drive_order(world, view.id, number="45")
    notify = world.task(view.id, "notify_appointment")
    assert notify.role == "specialist"
    done = world.complete(view.id, "notify_appointment", "aigul", NOTICE)
    assert done.status == "completed"
    final = world.data(view.id)
    assert (final["order_number"], final["notice_channel"]) == ("45", "egov")


def test_the_service_term_runs_from_the_application_through_every_step(world):
    # Received on Friday 27 February, registered on Monday 2 March: the 19 working days
    # count from the receipt (to Wednesday 1 April), and every later step of the service
    # shows the same end, however late it begins.
    end = datetime(2026, 4, 1, 18, 59, 59, tzinfo=UTC)
    view = world.start(
        "guardianship_appointment", "aigul", dict(APPLICATION, application_date="2026-02-27")
    )
    assert world.task(view.id, "check_completeness").due_at == end
    world.clock.advance(timedelta(days=3))
    world.complete(view.id, "check_completeness", "aigul", ALL_DOCUMENTS)
    exam = world.task(view.id, "examine_living_conditions")
    assert (exam.deadline_rule, exam.due_at) == ("guardianship.service_term", end)
    world.clock.advance(timedelta(days=10))
    world.complete(view.id, "examine_living_conditions", "aigul", EXAM)
    assert world.task(view.id, "record_eligibility_facts").due_at == end


def test_a_future_application_date_counts_from_registration(world):
    # A typo in the date cannot push the term out: it runs from the case's registration.
    view = world.start(
        "guardianship_appointment", "aigul", dict(APPLICATION, application_date="2026-05-04")
    )
    assert world.task(view.id, "check_completeness").due_at == datetime(
        2026, 4, 2, 18, 59, 59, tzinfo=UTC
    )


def test_incomplete_application_is_returned_and_resubmitted(world):
    view = world.start("guardianship_appointment", "aigul", APPLICATION)
    first = world.task(view.id, "check_completeness")
    world.complete(view.id, "check_completeness", "aigul", dict(ALL_DOCUMENTS, doc_medical=False))
    world.task(view.id, "return_incomplete")
    data = world.data(view.id)
    assert data["documents_complete"] is False
    assert data["return_reason"] == "missing documents: doc_medical"
    resubmitted = {"return_notice_date": "2026-03-03", "return_outcome": "resubmitted"}
    with pytest.raises(ValidationFailed) as caught:
        world.complete(view.id, "return_incomplete", "aigul", resubmitted)
    assert [e.field for e in caught.value.errors] == ["application_date"]
    world.clock.advance(timedelta(days=3))  # Thursday 5 March: the documents come back
    world.complete(
        view.id, "return_incomplete", "aigul", dict(resubmitted, application_date="2026-03-05")
    )
    again = world.task(view.id, "check_completeness")
    assert again.id != first.id
    # The completed application was received on Thursday 5 March: the 19 working days run
    # from then (to Tuesday 7 April), no longer from the first, incomplete one.
    assert again.due_at == datetime(2026, 4, 7, 18, 59, 59, tzinfo=UTC)
    world.complete(view.id, "check_completeness", "aigul", ALL_DOCUMENTS)
    assert world.ready(view.id) == ["examine_living_conditions"]
    assert world.data(view.id)["return_reason"] is None


def test_incomplete_application_closed_with_a_notice(world):
    view = world.start("guardianship_appointment", "aigul", APPLICATION)
    world.complete(view.id, "check_completeness", "aigul", dict(ALL_DOCUMENTS, doc_income=False))
    done = world.complete(
        view.id,
        "return_incomplete",
        "aigul",
        {"return_notice_date": "2026-03-03", "return_outcome": "closed", "return_note": "—"},
    )
    assert done.status == "completed"
    data = world.data(view.id)
    assert "order_template" not in data and data["return_outcome"] == "closed"


@pytest.mark.parametrize(
    ("application", "documents", "missing"),
    [
        ({"applicant_married": True}, {}, ["doc_spouse_consent"]),
        ({"applicant_married": True}, {"doc_spouse_consent": True}, []),
        ({"relationship": "not_related"}, {}, ["doc_training"]),
        ({"relationship": "not_related"}, {"doc_training": True}, []),
        ({}, {"doc_identity": False, "doc_registers": False}, ["doc_identity", "doc_registers"]),
    ],
)
def test_which_documents_the_law_requires(world, application, documents, missing):
    view = world.start("guardianship_appointment", "aigul", dict(APPLICATION, **application))
    world.complete(
        view.id,
        "check_completeness",
        "aigul",
        dict(ALL_DOCUMENTS, **documents),
        check_outsiders=False,
    )
    data = world.data(view.id)
    assert data["missing_documents"] == missing
    assert world.ready(view.id) == (
        ["return_incomplete"] if missing else ["examine_living_conditions"]
    )


def test_refusal_is_a_signed_order_too_and_the_applicant_is_told(world):
    instance_id = to_decision(world, check_outsiders=True, conviction_bar=True)
    data = world.data(instance_id)
    assert (data["eligible"], data["refusal_reason"]) == (False, "conviction")
    assert data["order_template"] == "guardianship.refusal"
    drive_order(world, instance_id, legal_returns=1, head_returns=1, number="46")
    assert world.task(instance_id, "notify_refusal").role == "specialist"
    done = world.complete(instance_id, "notify_refusal", "aigul", NOTICE)
    assert done.status == "completed"
    assert world.data(instance_id)["order_number"] == "46"


# --- the eligibility table and the form of care at their boundaries -----------------------


def _born(years: int, days_short: int = 0) -> date:
    """Born so as to be exactly ``years`` old on ASSESSED_ON (one day short: ``years - 1``)."""
    birthday = ASSESSED_ON.replace(year=ASSESSED_ON.year - years)
    return birthday.fromordinal(birthday.toordinal() + days_short)


def test_applicant_of_17_is_refused_and_of_18_accepted(world):
    young = decide(world, applicant_iin=make_iin(_born(18, 1), "female"))
    assert (young["applicant_age"], young["eligible"]) == (17, False)
    assert young["refusal_reason"] == "applicant_under_age"
    adult = decide(world, applicant_iin=make_iin(_born(18), "female"))
    assert (adult["applicant_age"], adult["eligible"]) == (18, True)


def test_child_opinion_is_required_from_age_10(world):
    nine = decide(world, child_iin=make_iin(_born(10, 1), "male"), child_opinion="not_heard")
    assert (nine["child_age"], nine["eligible"]) == (9, True)
    ten = decide(world, child_iin=make_iin(_born(10), "male"), child_opinion="not_heard")
    assert (ten["child_age"], ten["eligible"], ten["refusal_reason"]) == (
        10,
        False,
        "child_opinion_not_heard",
    )
    agrees = decide(world, child_iin=make_iin(_born(10), "male"), child_opinion="agrees")
    assert agrees["eligible"] is True
    objects = decide(world, child_iin=make_iin(_born(10), "male"), child_opinion="objects")
    assert (objects["eligible"], objects["refusal_reason"]) == (False, "child_objects")


def test_guardianship_under_14_custody_from_14_to_18(world):
    cases = [
        ({"child_iin": make_iin(_born(14, 1), "female")}, 13, "guardianship"),
        ({"child_iin": make_iin(_born(14), "female")}, 14, "custody"),
        # Without an IIN the birth date field decides.
        ({"child_iin": None, "child_birth_date": _born(14).isoformat()}, 14, "custody"),
        ({"child_iin": make_iin(_born(18, 1), "male")}, 17, "custody"),
    ]
    for overrides, age, kind in cases:
        data = decide(world, child_opinion="agrees", **overrides)
        assert (data["child_age"], data["guardianship_kind"], data["eligible"]) == (age, kind, True)
        assert data["order_template"] == f"{kind}.establish"
    adult = decide(world, child_iin=make_iin(_born(18), "male"), child_opinion="agrees")
    assert (adult["eligible"], adult["refusal_reason"]) == (False, "child_not_minor")


def test_unmarried_man_needs_three_years_of_raising_the_child(world):
    man = make_iin(date(1980, 6, 1), "male")
    two = decide(world, applicant_iin=man, years_raising_child=2)
    assert (two["applicant_is_male"], two["eligible"], two["refusal_reason"]) == (
        True,
        False,
        "unmarried_man",
    )
    three = decide(world, applicant_iin=man, years_raising_child=3)
    assert three["eligible"] is True
    married = decide(world, applicant_iin=man, applicant_married=True, doc_spouse_consent=True)
    assert married["eligible"] is True


def test_every_bar_of_the_code_refuses_with_its_reason(world):
    bars = {
        "legally_capable": (False, "no_legal_capacity"),
        "parental_rights_restricted": (True, "parental_rights_lost_or_restricted"),
        "removed_as_guardian": (True, "removed_from_guardianship"),
        "adoption_cancelled_by_fault": (True, "adoption_cancelled_through_fault"),
        "health_bar": (True, "health"),
        "permanent_residence": (False, "no_permanent_residence"),
        "stateless": (True, "stateless"),
        "income_below_minimum": (True, "income_below_subsistence_minimum"),
        "on_narcology_register": (True, "narcology_register"),
        "on_psychiatric_register": (True, "psychiatric_register"),
        "applicant_consents": (False, "applicant_does_not_consent"),
    }
    for field, (value, reason) in bars.items():
        data = decide(world, **{field: value})
        assert (data["eligible"], data["refusal_reason"]) == (False, reason), field
        assert data["order_template"] == "guardianship.refusal"


def test_close_relatives_come_first(world):
    stranger = decide(world, relationship="not_related", doc_training=True)
    assert (stranger["eligible"], stranger["priority"]) == (True, "general")
