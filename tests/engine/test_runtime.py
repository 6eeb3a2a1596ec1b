"""The runtime services end to end, on SQLite and PostgreSQL: who may act, and bad input."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from engine import instances, tasks
from engine.db import unit_of_work
from engine.errors import Forbidden, InvalidTransition, NotFound, ValidationFailed
from engine.models import AuditEvent, HumanTask, ProcessInstance
from tests.factories import VALID_CHILD, deploy_dir, make_people


@pytest.fixture
def world(sessions, clock):
    people = make_people(sessions, clock)
    deploy_dir(sessions, clock)
    return people


def start(sessions, clock, actor, key="test_intake", **kw):
    with unit_of_work(sessions) as s:
        return instances.start_process(s, process_key=key, actor=actor, clock=clock, **kw)


def complete(sessions, clock, actor, task_id, data, **kw):
    with unit_of_work(sessions) as s:
        return tasks.complete_task(s, task_id=task_id, actor=actor, data=data, clock=clock, **kw)


def snapshot(sessions, instance_id):
    """Everything a refused command must leave untouched."""
    with unit_of_work(sessions) as s:
        inst = s.get(ProcessInstance, instance_id)
        rows = s.scalars(select(HumanTask).where(HumanTask.instance_id == instance_id)).all()
        events = s.scalar(select(func.count()).select_from(AuditEvent))
        return (
            inst.revision,
            inst.state_json,
            inst.status,
            sorted((r.id, r.status, r.assignee_id) for r in rows),
            events,
        )


def test_start_creates_the_first_task_with_role_and_deadline(world, sessions, clock):
    view = start(sessions, clock, world["aigul"], business_key="K-1")
    assert view.status == "running"
    assert view.version == 1
    [task] = view.ready_tasks
    assert (task.bpmn_id, task.role, task.form_key) == ("register", "specialist", "test/register")
    assert task.district_id is not None  # the starter's district
    # 1 working day after Monday 2 March 2026 is Tuesday 3 March, to its end in Kostanay.
    assert task.due_at == datetime(2026, 3, 3, 18, 59, 59, tzinfo=UTC)


def test_a_role_that_may_not_start_is_refused(world, sessions, clock):
    with pytest.raises(Forbidden, match="specialist"):
        start(sessions, clock, world["maria"])
    with pytest.raises(NotFound):
        start(sessions, clock, world["aigul"], key="no_such_process")


def test_full_path_to_the_lawyer_and_completion(world, sessions, clock):
    view = start(sessions, clock, world["aigul"])
    [register] = view.ready_tasks
    done = complete(sessions, clock, world["aigul"], register.id, VALID_CHILD)
    assert done.status == "completed"
    with unit_of_work(sessions) as s:
        inbox = tasks.inbox(s, actor=world["maria"])
        assert [t.bpmn_id for t in inbox] == ["legal_check"]
        # The specialist no longer sees anything of this case.
        assert tasks.inbox(s, actor=world["aigul"]) == []
    complete(sessions, clock, world["maria"], inbox[0].id, {"opinion": "approve"})
    with unit_of_work(sessions) as s:
        final = instances.get_instance(s, instance_id=view.id)
        data = instances.instance_data(s, instance_id=view.id)
    assert final.status == "completed"
    assert final.ended_at is not None
    assert data["eligible"] is True and data["score"] == len("Аружан") + 6


def test_the_gateway_default_refuses(world, sessions, clock):
    view = start(sessions, clock, world["aigul"])
    adult = dict(VALID_CHILD, child_age=19)
    complete(sessions, clock, world["aigul"], view.ready_tasks[0].id, adult)
    with unit_of_work(sessions) as s:
        final = instances.get_instance(s, instance_id=view.id)
    assert final.status == "completed"
    assert final.ready_tasks == ()


def test_wrong_role_wrong_claimant_and_other_district_change_nothing(world, sessions, clock):
    view = start(sessions, clock, world["aigul"])
    task_id = view.ready_tasks[0].id
    before = snapshot(sessions, view.id)
    with pytest.raises(Forbidden, match="role specialist"):
        complete(sessions, clock, world["maria"], task_id, VALID_CHILD)
    with pytest.raises(Forbidden):
        with unit_of_work(sessions) as s:
            tasks.claim_task(s, task_id=task_id, actor=world["rudny_spec"], clock=clock)
    assert snapshot(sessions, view.id) == before

    with unit_of_work(sessions) as s:
        tasks.claim_task(s, task_id=task_id, actor=world["aigul"], clock=clock)
    claimed = snapshot(sessions, view.id)
    with pytest.raises(Forbidden, match="only the claimant"):
        complete(sessions, clock, world["erzhan"], task_id, VALID_CHILD)
    with pytest.raises(InvalidTransition, match="already claimed"):
        with unit_of_work(sessions) as s:
            tasks.claim_task(s, task_id=task_id, actor=world["erzhan"], clock=clock)
    assert snapshot(sessions, view.id) == claimed


def test_bad_form_data_names_each_field_and_changes_nothing(world, sessions, clock):
    view = start(sessions, clock, world["aigul"])
    task_id = view.ready_tasks[0].id
    before = snapshot(sessions, view.id)
    cases = {
        "unknown": (
            dict(VALID_CHILD, favourite_colour="red"),
            {"favourite_colour": "unknown field"},
        ),
        "mistyped": (
            dict(VALID_CHILD, child_age="seven"),
            {"child_age": "must be of type integer"},
        ),
        "missing": ({"child_name": "Аружан", "child_age": 6}, {"child_iin": "required"}),
        "iin": (dict(VALID_CHILD, child_iin="190515600017"), {"child_iin": "check digit"}),
        "phone": (dict(VALID_CHILD, phone="8 701 000"), {"phone": "not a valid phone-kz"}),
    }
    for name, (data, expected) in cases.items():
        with pytest.raises(ValidationFailed) as caught:
            complete(sessions, clock, world["aigul"], task_id, data)
        fields = {e.field: e.message for e in caught.value.errors}
        for field, fragment in expected.items():
            assert field in fields, name
            assert fragment in fields[field], (name, fields)
    assert snapshot(sessions, view.id) == before


def test_completing_twice_says_who_and_when(world, sessions, clock):
    view = start(sessions, clock, world["aigul"])
    task_id = view.ready_tasks[0].id
    complete(sessions, clock, world["aigul"], task_id, VALID_CHILD)
    after = snapshot(sessions, view.id)
    with pytest.raises(InvalidTransition, match="already completed by Aigul at 2026-03-02"):
        complete(sessions, clock, world["aigul"], task_id, VALID_CHILD)
    assert snapshot(sessions, view.id) == after


def test_lead_assigns_and_claimant_releases(world, sessions, clock):
    view = start(sessions, clock, world["aigul"])
    task_id = view.ready_tasks[0].id
    with pytest.raises(Forbidden):
        with unit_of_work(sessions) as s:
            tasks.assign_task(s, task_id=task_id, actor=world["aigul"], assignee="erzhan")
    with pytest.raises(ValidationFailed, match="does not hold the role"):
        with unit_of_work(sessions) as s:
            tasks.assign_task(s, task_id=task_id, actor=world["head"], assignee="maria")
    with unit_of_work(sessions) as s:
        assigned = tasks.assign_task(s, task_id=task_id, actor=world["head"], assignee="erzhan")
        assert assigned.assignee_id == world["erzhan"].user_id
        assert tasks.allowed_actions(s, task_id=task_id, actor=world["erzhan"]) == {
            "release",
            "complete",
        }
        assert tasks.allowed_actions(s, task_id=task_id, actor=world["aigul"]) == frozenset()
    with unit_of_work(sessions) as s:
        released = tasks.release_task(s, task_id=task_id, actor=world["erzhan"], clock=clock)
        assert released.assignee_id is None
        assert tasks.allowed_actions(s, task_id=task_id, actor=world["aigul"]) == {
            "claim",
            "complete",
        }


def test_suspended_case_refuses_work_until_resumed(world, sessions, clock):
    view = start(sessions, clock, world["aigul"])
    task_id = view.ready_tasks[0].id
    with pytest.raises(Forbidden):
        with unit_of_work(sessions) as s:
            instances.suspend(s, instance_id=view.id, actor=world["aigul"], reason="x")
    with unit_of_work(sessions) as s:
        instances.suspend(s, instance_id=view.id, actor=world["admin"], reason="court order")
    with pytest.raises(InvalidTransition, match="suspended"):
        complete(sessions, clock, world["aigul"], task_id, VALID_CHILD)
    with unit_of_work(sessions) as s:
        assert instances.resume(s, instance_id=view.id, actor=world["admin"]).status == "running"
    complete(sessions, clock, world["aigul"], task_id, VALID_CHILD)


def test_terminate_cancels_open_tasks(world, sessions, clock):
    view = start(sessions, clock, world["aigul"])
    with unit_of_work(sessions) as s:
        ended = instances.terminate(s, instance_id=view.id, actor=world["head"], reason="duplicate")
    assert ended.status == "terminated"
    assert ended.ready_tasks == ()
    with unit_of_work(sessions) as s:
        row = s.get(HumanTask, view.ready_tasks[0].id)
        assert row.status == "cancelled"
    with pytest.raises(InvalidTransition):
        with unit_of_work(sessions) as s:
            instances.terminate(s, instance_id=view.id, actor=world["head"], reason="again")


def test_new_version_for_new_cases_old_cases_keep_theirs(world, sessions, clock, tmp_path):
    old = start(sessions, clock, world["aigul"])
    assert deploy_dir(sessions, clock) == []  # same content: nothing new
    changed = tmp_path / "defs"
    changed.mkdir()
    import shutil

    from tests.factories import ENGINE_DATA

    shutil.copytree(ENGINE_DATA / "forms", changed / "forms")
    shutil.copy(ENGINE_DATA / "deadlines.yaml", changed / "deadlines.yaml")
    text = (ENGINE_DATA / "test_intake.bpmn").read_text(encoding="utf-8")
    (changed / "test_intake.bpmn").write_text(
        text.replace("years &lt; 18", "years &lt; 16"), encoding="utf-8"
    )
    [v2] = deploy_dir(sessions, clock, changed, "test_intake.bpmn")
    assert (v2.process_key, v2.version) == ("test_intake", 2)
    new = start(sessions, clock, world["aigul"])
    assert (old.version, new.version) == (1, 2)
    # A 17-year-old: eligible under v1 (old case), not under v2 (new case).
    teen = dict(VALID_CHILD, child_age=17)
    complete(sessions, clock, world["aigul"], old.ready_tasks[0].id, teen)
    complete(sessions, clock, world["aigul"], new.ready_tasks[0].id, teen)
    with unit_of_work(sessions) as s:
        assert instances.get_instance(s, instance_id=old.id).status == "running"
        assert instances.get_instance(s, instance_id=new.id).status == "completed"
