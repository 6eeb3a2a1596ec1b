"""Procedure 5, placement of a child with a guest family (Reg 15.11; Code Art. 137-1; MES
Order No. 402 of 2016): document check with return for completion, examination of the
family, an order of the head or a reasoned refusal, notification; 10 working days."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from engine.errors import Forbidden, ValidationFailed
from tests.factories import make_iin
from tests.procedures.service_support import ServiceWorld

KEY = "guest_family_placement"
APPLICATION = {
    "applicant_name": "Ерлан Жақсылықов",
    "applicant_iin": "791028302728",
    "applicant_phone": "+77011234567",
    "child_name": "Данияр Әбенов",
    "child_iin": make_iin(date(2016, 9, 1), "male"),
    "stay_kind": "weekends",
    "period_from": "2026-03-07",
    "period_to": "2026-06-30",
}
DOCUMENTS = {
    "identity_document": True,
    "spouse_consent": True,
    "income_12_months": True,
    "health_certificates": True,
    "housing_documents": True,
    "training_certificate": True,
}


@pytest.fixture
def world(sqlite_sessions, clock):
    return ServiceWorld.create(sqlite_sessions, clock)


def _examine(world, case_id, suitable):
    world.complete(
        case_id,
        "examine_home",
        {
            "act_number": "17",
            "act_date": "2026-03-05",
            "conditions_suitable": suitable,
            "findings": "Условия проверены",
        },
        role="specialist",
    )


def _notify(world, case_id):
    world.complete(case_id, "notify_applicant", {"notified_on": "2026-03-12", "channel": "egov"})


def test_application_form_checks_iin_and_phone(world):
    with pytest.raises(ValidationFailed) as caught:
        world.start(KEY, "aigul", dict(APPLICATION, applicant_iin="791028302729"))
    assert [e.field for e in caught.value.errors] == ["applicant_iin"]
    with pytest.raises(ValidationFailed) as caught:
        world.start(KEY, "aigul", dict(APPLICATION, applicant_phone="8 701 123"))
    assert [e.field for e in caught.value.errors] == ["applicant_phone"]
    with pytest.raises(Forbidden):
        world.start(KEY, "maria", APPLICATION)


def test_complete_application_is_granted_by_order(world):
    case = world.start(KEY, "aigul", APPLICATION)
    # 10 working days from Monday 2 March 2026: 9 March is a day off (8 March fell on a
    # Sunday), so the term ends with Tuesday 17 March in Kostanay.
    check = world.task(case.id, "check_documents")
    assert check.due_at == datetime(2026, 3, 17, 18, 59, 59, tzinfo=UTC)
    world.complete(case.id, "check_documents", DOCUMENTS, role="specialist")
    _examine(world, case.id, True)
    world.sign_order(case.id, "guest_family.placement")
    _notify(world, case.id)
    assert world.instance(case.id).status == "completed"
    data = world.data(case.id)
    assert data["granted"] is True and data["documents_complete"] is True


def test_unsuitable_conditions_end_in_a_signed_refusal(world):
    case = world.start(KEY, "aigul", APPLICATION)
    world.complete(case.id, "check_documents", DOCUMENTS)
    _examine(world, case.id, False)
    world.sign_order(case.id, "guest_family.refusal")
    _notify(world, case.id)
    assert world.instance(case.id).status == "completed"
    assert world.data(case.id)["granted"] is False


def test_incomplete_documents_return_for_completion_then_pass(world):
    case = world.start(KEY, "aigul", APPLICATION)
    world.complete(case.id, "check_documents", dict(DOCUMENTS, training_certificate=False))
    assert world.ready(case.id) == ["return_documents"]
    returned = {"missing_reason": "Нет сертификата об обучении", "resubmitted": True}
    # Resubmitted documents need the day they came back: the service term restarts then.
    with pytest.raises(ValidationFailed) as caught:
        world.complete(case.id, "return_documents", returned)
    assert [e.field for e in caught.value.errors] == ["documents_received_on"]
    world.clock.advance(timedelta(days=3))  # Thursday 5 March: the documents come back
    world.complete(case.id, "return_documents", dict(returned, documents_received_on="2026-03-05"))
    assert world.ready(case.id) == ["check_documents"]
    # 10 working days from Thursday 5 March (9 March off): Friday 20 March in Kostanay.
    end = datetime(2026, 3, 20, 18, 59, 59, tzinfo=UTC)
    assert world.task(case.id, "check_documents").due_at == end
    world.complete(case.id, "check_documents", DOCUMENTS)
    assert world.ready(case.id) == ["examine_home"]
    _examine(world, case.id, True)
    world.sign_order(case.id, "guest_family.placement")
    assert world.task(case.id, "notify_applicant").due_at == end


def test_application_not_completed_is_withdrawn(world):
    case = world.start(KEY, "aigul", APPLICATION)
    world.complete(case.id, "check_documents", dict(DOCUMENTS, income_12_months=False))
    world.complete(
        case.id,
        "return_documents",
        {"missing_reason": "Нет справки о доходах", "resubmitted": False},
    )
    final = world.instance(case.id)
    assert final.status == "completed" and final.ready_tasks == ()
