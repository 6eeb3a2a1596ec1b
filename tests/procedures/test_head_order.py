"""Procedure 4, the order of the head (Reg 7, 18.9): every path, and who may act at each step."""

from __future__ import annotations

import pytest

from engine.errors import Forbidden, ValidationFailed
from tests.procedures.care_support import DRAFT, CareWorld, drive_order

START = {"order_template": "general", "order_subject": "Annual plan of inspections"}


@pytest.fixture
def world(sqlite_sessions, clock):
    return CareWorld.create(sqlite_sessions, clock)


def test_only_a_specialist_starts_an_order(world):
    for outsider in ("maria", "head"):
        with pytest.raises(Forbidden):
            world.start("head_order", outsider, START)
    with pytest.raises(ValidationFailed) as caught:
        world.start("head_order", "aigul", {"order_template": "nonsense", "order_subject": "x"})
    assert [e.field for e in caught.value.errors] == ["order_template"]


def test_straight_path_draft_review_sign_register_publish(world):
    view = world.start("head_order", "aigul", START, business_key="ORD-1")
    draft = world.task(view.id, "draft")
    assert (draft.role, draft.form_key) == ("specialist", "order/draft")
    done = drive_order(world, view.id, number="17-ж")
    assert done.status == "completed"
    data = world.data(view.id)
    assert data["order_template"] == "general"
    assert (data["order_number"], data["order_date"]) == ("17-ж", "2026-03-10")
    assert data["legal_decision"] == "approve" and data["sign_decision"] == "sign"
    assert data["order_text_kk"] == DRAFT["order_text_kk"]


def test_each_step_is_offered_to_its_role(world):
    view = world.start("head_order", "aigul", START)
    world.complete(view.id, "draft", "aigul", DRAFT)
    assert world.task(view.id, "legal_review").role == "lawyer"
    world.complete(view.id, "legal_review", "maria", {"legal_decision": "approve"})
    assert world.task(view.id, "sign").role == "head"
    world.complete(view.id, "sign", "head", {"sign_decision": "sign"})
    register = world.task(view.id, "register")
    # Registration stays with the specialist lane until the records office has a role.
    assert (register.role, register.form_key) == ("specialist", "order/register")


def test_the_lawyer_returns_the_draft_with_comments(world):
    view = world.start("head_order", "aigul", START)
    world.complete(view.id, "draft", "aigul", DRAFT)
    task = world.task(view.id, "legal_review")
    # A return without comments is refused: the drafter must learn what to change.
    with pytest.raises(ValidationFailed) as caught:
        world.complete(view.id, "legal_review", "maria", {"legal_decision": "return"})
    assert [e.field for e in caught.value.errors] == ["legal_comments"]
    assert world.task(view.id, "legal_review").id == task.id
    world.complete(
        view.id, "legal_review", "maria", {"legal_decision": "return", "legal_comments": "Basis?"}
    )
    redraft = world.task(view.id, "draft")
    assert redraft.id != task.id
    assert world.data(view.id)["legal_comments"] == "Basis?"


def test_loops_of_returns_by_lawyer_and_head_end_in_a_signed_order(world):
    view = world.start("head_order", "aigul", START)
    done = drive_order(world, view.id, legal_returns=2, head_returns=2, number="21")
    assert done.status == "completed"
    data = world.data(view.id)
    assert data["order_number"] == "21"
    assert data["head_comments"] == "Add the control clause."


def test_the_head_returns_without_comments_is_refused(world):
    view = world.start("head_order", "aigul", START)
    world.complete(view.id, "draft", "aigul", DRAFT)
    world.complete(view.id, "legal_review", "maria", {"legal_decision": "approve"})
    with pytest.raises(ValidationFailed) as caught:
        world.complete(view.id, "sign", "head", {"sign_decision": "return"})
    assert [e.field for e in caught.value.errors] == ["head_comments"]
    world.complete(view.id, "sign", "head", {"sign_decision": "return", "head_comments": "No."})
    assert world.ready(view.id) == ["draft"]


def test_registration_needs_a_number_and_a_date(world):
    view = world.start("head_order", "aigul", START)
    world.complete(view.id, "draft", "aigul", DRAFT)
    world.complete(view.id, "legal_review", "maria", {"legal_decision": "approve"})
    world.complete(view.id, "sign", "head", {"sign_decision": "sign"})
    with pytest.raises(ValidationFailed) as caught:
        world.complete(
            view.id, "register", "aigul", {"order_number": "no number", "order_date": "10.03.2026"}
        )
    assert {e.field for e in caught.value.errors} == {"order_number", "order_date"}
