"""Procedure 6, certificate for the disposal of a minor's property (Reg 15.2; MES Order
No. 158 of 24.04.2020, Appendix 2): document check with return for completion, the
lawyer's assessment of the transaction for the child, a certificate or a reasoned refusal
signed by the head, notification."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from tests.factories import make_iin
from tests.procedures.service_support import ServiceWorld

KEY = "property_disposal_certificate"
APPLICATION = {
    "applicant_name": "Айгерім Нұрланова",
    "applicant_iin": "061211600012",
    "second_representative_name": "Нұрлан Ахметов",
    "child_name": "Әлихан Нұрланов",
    "child_iin": make_iin(date(2015, 2, 20), "male"),
    "property_kind": "housing",
    "transaction_kind": "sale",
    "property_description": "1/4 доли квартиры, г. Костанай",
}
DOCUMENTS = {
    "representatives_applications": True,
    "identity_documents": True,
    "title_documents": True,
}


@pytest.fixture
def world(sqlite_sessions, clock):
    return ServiceWorld.create(sqlite_sessions, clock)


def _assess(world, case_id, preserved):
    world.complete(
        case_id,
        "legal_assessment",
        {"child_interests_preserved": preserved, "assessment_reasons": "Равноценная доля"},
        role="lawyer",
    )


def _notify(world, case_id):
    world.complete(
        case_id, "notify_applicant", {"notified_on": "2026-03-03", "channel": "in_person"}
    )


def test_certificate_is_issued_when_the_child_keeps_an_equal_share(world):
    case = world.start(KEY, "aigul", APPLICATION)
    # 1 working day (unverified) from Monday 2 March 2026.
    assert world.task(case.id, "check_documents").due_at == datetime(
        2026, 3, 3, 18, 59, 59, tzinfo=UTC
    )
    world.complete(case.id, "check_documents", DOCUMENTS, role="specialist")
    _assess(world, case.id, True)
    world.sign_order(case.id, "property_certificate.certificate")
    _notify(world, case.id)
    assert world.instance(case.id).status == "completed"
    assert world.data(case.id)["granted"] is True


def test_a_transaction_against_the_child_is_refused_with_reasons(world):
    case = world.start(KEY, "aigul", APPLICATION)
    world.complete(case.id, "check_documents", DOCUMENTS)
    _assess(world, case.id, False)
    world.sign_order(case.id, "property_certificate.refusal")
    _notify(world, case.id)
    assert world.instance(case.id).status == "completed"
    assert world.data(case.id)["granted"] is False


def test_return_for_completion_loops_until_complete_or_withdrawn(world):
    case = world.start(KEY, "aigul", APPLICATION)
    world.complete(case.id, "check_documents", dict(DOCUMENTS, title_documents=False))
    world.complete(
        case.id,
        "return_documents",
        {
            "missing_reason": "Нет правоустанавливающих документов",
            "resubmitted": True,
            "documents_received_on": "2026-03-03",
        },
    )
    world.complete(case.id, "check_documents", dict(DOCUMENTS, representatives_applications=False))
    world.complete(
        case.id, "return_documents", {"missing_reason": "Нет заявления отца", "resubmitted": False}
    )
    assert world.instance(case.id).status == "completed"
    assert world.data(case.id)["documents_complete"] is False
