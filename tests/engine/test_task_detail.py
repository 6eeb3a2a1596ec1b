"""``task_detail`` gives in one read what the task page took four: the task, its pinned form,
the reader's actions and the case's revision, with the same rule on who may see it."""

from __future__ import annotations

import json
import shutil

import pytest
from sqlalchemy import event

from engine import definitions, instances, tasks
from engine.db import unit_of_work
from engine.errors import Forbidden, NotFound
from engine.identity import SYSTEM
from engine.spiff.parsing import SourceFile
from tests.factories import ENGINE_DATA, VALID_CHILD, deploy_dir, make_people


@pytest.fixture
def world(sessions, clock):
    people = make_people(sessions, clock)
    deploy_dir(sessions, clock)
    with unit_of_work(sessions) as s:
        case = instances.start_process(
            s, process_key="test_intake", actor=people["aigul"], clock=clock, business_key="K-7"
        )
    return people, case.id, case.ready_tasks[0].id


def separate_reads(session, task_id, actor):
    """The detail as the pages used to read it, one service at a time."""
    task = tasks.get_task(session, task_id=task_id, actor=actor)
    case = instances.get_instance(session, instance_id=task.instance_id)
    return tasks.TaskDetail(
        task=task,
        form=tasks.task_form(session, task_id=task_id),
        actions=tasks.allowed_actions(session, task_id=task_id, actor=actor),
        revision=case.revision,
        business_key=case.business_key,
    )


def detail_and_reads(sessions, task_id, actor):
    with unit_of_work(sessions) as s:
        detail = tasks.task_detail(s, task_id=task_id, actor=actor)
    with unit_of_work(sessions) as s:
        return detail, separate_reads(s, task_id, actor)


def test_each_reader_sees_what_the_separate_reads_give(world, sessions, clock):
    people, case_id, task_id = world
    register = (ENGINE_DATA / "forms" / "test" / "register.json").read_text(encoding="utf-8")

    # A role member of the district, before anyone claims the task.
    detail, reads = detail_and_reads(sessions, task_id, people["erzhan"])
    assert detail == reads
    assert detail.actions == {"claim", "complete"}
    assert detail.form == json.loads(register)
    assert (detail.task.instance_id, detail.business_key) == (case_id, "K-7")
    before = detail.revision

    with unit_of_work(sessions) as s:
        tasks.claim_task(s, task_id=task_id, actor=people["aigul"], clock=clock)

    expected = {
        "aigul": {"release", "complete"},  # the claimant
        "erzhan": frozenset(),  # a role member, but the task is another's now
        "head": {"release", "assign"},  # a lead
    }
    for name, actions in expected.items():
        detail, reads = detail_and_reads(sessions, task_id, people[name])
        assert detail == reads, name
        assert detail.actions == actions, name
        assert detail.task.assignee_id == people["aigul"].user_id
        # The claim moved the case on by one revision; the detail sees it.
        assert detail.revision == before + 1


@pytest.mark.parametrize("outsider", ["maria", "rudny_spec"])
def test_an_outsider_is_refused_like_get_task(world, sessions, outsider):
    people, _, task_id = world
    with unit_of_work(sessions) as s:
        with pytest.raises(Forbidden, match=f"{outsider} may not see task {task_id}"):
            tasks.task_detail(s, task_id=task_id, actor=people[outsider])
        with pytest.raises(Forbidden, match=f"{outsider} may not see task {task_id}"):
            tasks.get_task(s, task_id=task_id, actor=people[outsider])
        with pytest.raises(NotFound):
            tasks.task_detail(s, task_id=task_id + 1000, actor=people["head"])


def test_a_completed_task_offers_no_actions(world, sessions, clock):
    people, _, task_id = world
    with unit_of_work(sessions) as s:
        tasks.complete_task(
            s, task_id=task_id, actor=people["aigul"], data=VALID_CHILD, clock=clock
        )
    for name in ("aigul", "head"):
        detail, reads = detail_and_reads(sessions, task_id, people[name])
        assert detail == reads
        assert detail.task.status == "completed"
        assert detail.actions == frozenset()
        assert detail.form is not None  # the form it was completed with


def test_the_form_is_the_one_of_the_cases_version(world, sessions, clock, tmp_path):
    people, _, task_id = world
    # Version 2 shortens the child's name; the running case stays on version 1.
    forms_dir = tmp_path / "forms"
    shutil.copytree(ENGINE_DATA / "forms", forms_dir)
    register = forms_dir / "test" / "register.json"
    schema = json.loads(register.read_text(encoding="utf-8"))
    schema["properties"]["child_name"]["maxLength"] = 50
    register.write_text(json.dumps(schema), encoding="utf-8")
    xml = (ENGINE_DATA / "test_intake.bpmn").read_text(encoding="utf-8")
    bundle = definitions.Bundle(
        sources=[
            SourceFile("test_intake.bpmn", xml.replace("legal_check", "legal_review").encode())
        ],
        rules_files=[("deadlines.yaml", (ENGINE_DATA / "deadlines.yaml").read_bytes())],
        forms_dir=forms_dir,
    )
    with unit_of_work(sessions) as s:
        [v2] = definitions.deploy(s, bundle, actor=SYSTEM, now=clock.now())
    assert v2.version == 2

    detail, reads = detail_and_reads(sessions, task_id, people["aigul"])
    assert detail == reads
    assert detail.form["properties"]["child_name"]["maxLength"] == 200


def test_reads_the_task_and_the_case_once_each(world, sessions, db_engine):
    people, _, task_id = world
    with unit_of_work(sessions) as s:
        tasks.task_detail(s, task_id=task_id, actor=people["aigul"])  # the version is cached
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(db_engine, "before_cursor_execute", count)
    try:
        with unit_of_work(sessions) as s:
            tasks.task_detail(s, task_id=task_id, actor=people["aigul"])
    finally:
        event.remove(db_engine, "before_cursor_execute", count)
    reads = [st for st in statements if st.lstrip().upper().startswith("SELECT")]
    assert len(reads) == 2, reads
