"""Moving running cases to a newer version: dry run, blocked cases, the move, the audit."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from engine import audit, definitions, instances, tasks
from engine.db import unit_of_work
from engine.errors import Forbidden, ValidationFailed
from engine.identity import SYSTEM
from engine.migration import migrate_instances
from engine.models import AuditEvent, HumanTask, ProcessInstance
from engine.spiff.parsing import SourceFile
from tests.factories import ENGINE_DATA, VALID_CHILD, deploy_dir, make_people

INTAKE = (ENGINE_DATA / "test_intake.bpmn").read_text(encoding="utf-8")


def deploy_xml(sessions, clock, xml):
    bundle = definitions.Bundle(
        sources=[SourceFile("test_intake.bpmn", xml.encode("utf-8"))],
        rules_files=[("deadlines.yaml", (ENGINE_DATA / "deadlines.yaml").read_bytes())],
        forms_dir=ENGINE_DATA / "forms",
    )
    with unit_of_work(sessions) as s:
        [version] = definitions.deploy(s, bundle, actor=SYSTEM, now=clock.now())
        return version


@pytest.fixture
def world(sessions, clock):
    people = make_people(sessions, clock)
    [v1] = deploy_dir(sessions, clock, ENGINE_DATA, "test_intake.bpmn")
    with unit_of_work(sessions) as s:
        at_register = instances.start_process(
            s, process_key="test_intake", actor=people["aigul"], clock=clock, business_key="A"
        )
        at_legal = instances.start_process(
            s, process_key="test_intake", actor=people["aigul"], clock=clock, business_key="B"
        )
    with unit_of_work(sessions) as s:
        tasks.complete_task(
            s,
            task_id=at_legal.ready_tasks[0].id,
            actor=people["aigul"],
            data=VALID_CHILD,
            clock=clock,
        )
    # Version 2 renames the lawyer's task: a case waiting there cannot move.
    v2 = deploy_xml(sessions, clock, INTAKE.replace("legal_check", "legal_review"))
    return people, v1, v2, at_register.id, at_legal.id


def events(sessions):
    with unit_of_work(sessions) as s:
        return s.scalar(select(func.count()).select_from(AuditEvent))


def test_dry_run_lists_movable_and_blocked_and_changes_nothing(world, sessions, clock):
    people, v1, v2, a, b = world
    before = events(sessions)
    with unit_of_work(sessions) as s:
        result = migrate_instances(
            s, instance_ids=[a, b], target_version_id=v2.id, actor=people["admin"], dry_run=True
        )
    assert result.dry_run and result.target_version == 2
    assert [i.instance_id for i in result.moved] == [a]
    assert result.moved[0].active == ("register",)
    [blocked] = result.blocked
    assert blocked.instance_id == b and blocked.active == ("legal_check",)
    assert any("legal_check" in reason and "active task" in reason for reason in blocked.reasons)
    with unit_of_work(sessions) as s:
        assert {i.process_version_id for i in s.scalars(select(ProcessInstance))} == {v1.id}
    assert events(sessions) == before


def test_migration_moves_a_case_which_continues_on_the_new_version(world, sessions, clock):
    people, v1, v2, a, b = world
    with unit_of_work(sessions) as s:
        result = migrate_instances(
            s,
            instance_ids=[a, b],
            target_version_id=v2.id,
            actor=people["admin"],
            dry_run=False,
            clock=clock,
        )
    assert [i.instance_id for i in result.moved] == [a]
    assert [i.instance_id for i in result.blocked] == [b]
    with unit_of_work(sessions) as s:
        moved, stayed = s.get(ProcessInstance, a), s.get(ProcessInstance, b)
        assert (moved.process_version_id, stayed.process_version_id) == (v2.id, v1.id)
        # The open inbox row is the same task, now of version 2.
        [row] = s.scalars(
            select(HumanTask).where(HumanTask.instance_id == a, HumanTask.status == "ready")
        ).all()
        assert (row.bpmn_id, row.form_key, row.role) == ("register", "test/register", "specialist")
        task_id = row.id
    with unit_of_work(sessions) as s:
        tasks.complete_task(
            s, task_id=task_id, actor=people["aigul"], data=VALID_CHILD, clock=clock
        )
    with unit_of_work(sessions) as s:
        view = instances.get_instance(s, instance_id=a)
    # It continues on version 2: the lawyer's task is version 2's.
    assert view.version == 2
    assert [t.bpmn_id for t in view.ready_tasks] == ["legal_review"]
    with unit_of_work(sessions) as s:
        old = instances.get_instance(s, instance_id=b)
        assert old.version == 1 and [t.bpmn_id for t in old.ready_tasks] == ["legal_check"]
        [legal] = old.ready_tasks
    with unit_of_work(sessions) as s:
        tasks.complete_task(
            s, task_id=legal.id, actor=people["maria"], data={"opinion": "approve"}, clock=clock
        )
    with unit_of_work(sessions) as s:
        done = instances.get_instance(s, instance_id=b)
    assert done.status == "completed" and done.version == 1


def test_migration_is_audited_on_the_case_and_the_system_chain(world, sessions, clock):
    people, _v1, v2, a, b = world
    with unit_of_work(sessions) as s:
        migrate_instances(
            s,
            instance_ids=[a, b],
            target_version_id=v2.id,
            actor=people["admin"],
            dry_run=False,
            clock=clock,
        )
    with unit_of_work(sessions) as s:
        [case_event] = s.scalars(
            select(AuditEvent).where(
                AuditEvent.instance_id == a, AuditEvent.action == "process.migrated"
            )
        ).all()
        assert case_event.actor == "admin"
        assert (case_event.detail["from_version"], case_event.detail["to_version"]) == (1, 2)
        [system] = s.scalars(
            select(AuditEvent).where(AuditEvent.action == "instances.migrated")
        ).all()
        assert system.detail["moved"] == [a]
        assert "legal_check" in " ".join(system.detail["blocked"][str(b)])
        assert audit.verify_all(s) == []


def test_only_an_admin_migrates_and_only_within_one_process(world, sessions, clock):
    people, v1, v2, a, _b = world
    with unit_of_work(sessions) as s, pytest.raises(Forbidden):
        migrate_instances(
            s, instance_ids=[a], target_version_id=v2.id, actor=people["analyst"], dry_run=True
        )
    with unit_of_work(sessions) as s:
        [other] = definitions.deploy(
            s,
            definitions.read_paths(
                [ENGINE_DATA / "test_request.bpmn"], forms_dir=ENGINE_DATA / "forms"
            ),
            actor=SYSTEM,
            now=clock.now(),
        )
    with unit_of_work(sessions) as s, pytest.raises(ValidationFailed, match="test_intake"):
        migrate_instances(
            s, instance_ids=[a], target_version_id=other.id, actor=people["admin"], dry_run=True
        )
    # Not to an older (or the same) version.
    with unit_of_work(sessions) as s:
        result = migrate_instances(
            s, instance_ids=[a], target_version_id=v1.id, actor=people["admin"], dry_run=True
        )
    assert result.blocked[0].reasons == ("the case is already on version 1",)
