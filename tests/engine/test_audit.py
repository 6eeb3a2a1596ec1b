"""The audit chain notices a changed, a removed and an inserted row, and names the first."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner
from sqlalchemy import delete, select, update

from engine import audit, instances, tasks
from engine.db import unit_of_work
from engine.models import AuditEvent
from tests.factories import VALID_CHILD, deploy_dir, make_people


@pytest.fixture
def history(sessions, clock):
    people = make_people(sessions, clock)
    deploy_dir(sessions, clock)
    with unit_of_work(sessions) as s:
        view = instances.start_process(
            s, process_key="test_intake", actor=people["aigul"], clock=clock
        )
    with unit_of_work(sessions) as s:
        tasks.complete_task(
            s, task_id=view.ready_tasks[0].id, actor=people["aigul"], data=VALID_CHILD, clock=clock
        )
    return view


def _events(sessions, instance_id):
    with unit_of_work(sessions) as s:
        return s.scalars(
            select(AuditEvent)
            .where(AuditEvent.chain == audit.instance_chain(instance_id))
            .order_by(AuditEvent.seq)
        ).all()


def test_intact_log_verifies_and_records_the_story(history, sessions):
    events = _events(sessions, history.id)
    assert [e.action for e in events] == [
        "process.started",
        "task.created",
        "task.claimed",
        "task.completed",
        "task.created",
    ]
    assert events[3].detail["data"]["child_iin"] == VALID_CHILD["child_iin"]
    assert events[3].actor == "aigul"
    with unit_of_work(sessions) as s:
        assert audit.verify_all(s) == []


def test_changed_row_is_named(history, sessions):
    target = _events(sessions, history.id)[3]
    with unit_of_work(sessions) as s:
        s.execute(
            update(AuditEvent)
            .where(AuditEvent.id == target.id)
            .values(detail={"bpmn_id": "register", "data": {"child_iin": "000000000000"}})
        )
    with unit_of_work(sessions) as s:
        [bad] = audit.verify_all(s)
    assert (bad.seq, bad.event_id) == (4, target.id)
    assert "changed" in bad.reason


def test_changed_actor_is_named(history, sessions):
    target = _events(sessions, history.id)[2]
    with unit_of_work(sessions) as s:
        s.execute(update(AuditEvent).where(AuditEvent.id == target.id).values(actor="erzhan"))
    with unit_of_work(sessions) as s:
        [bad] = audit.verify_all(s)
    assert bad.event_id == target.id


def test_deleted_rows_are_named(history, sessions):
    events = _events(sessions, history.id)
    with unit_of_work(sessions) as s:
        s.execute(delete(AuditEvent).where(AuditEvent.id == events[1].id))
    with unit_of_work(sessions) as s:
        [bad] = audit.verify_all(s)
    assert bad.seq == 2 and "missing" in bad.reason


def test_deleting_the_newest_row_is_caught_by_the_instance_head(history, sessions):
    events = _events(sessions, history.id)
    with unit_of_work(sessions) as s:
        s.execute(delete(AuditEvent).where(AuditEvent.id == events[-1].id))
    with unit_of_work(sessions) as s:
        [bad] = audit.verify_all(s)
    assert bad.seq == len(events)


def test_cli_exits_non_zero_on_a_bad_chain(history, sessions, db_url, monkeypatch):
    from web.cli import main

    monkeypatch.setenv("QORGAU_DATABASE_URL", db_url)
    ok = CliRunner().invoke(main, ["audit", "verify"])
    assert ok.exit_code == 0, ok.output
    assert "intact" in ok.output
    target = _events(sessions, history.id)[0]
    with unit_of_work(sessions) as s:
        s.execute(update(AuditEvent).where(AuditEvent.id == target.id).values(action="x"))
    bad = CliRunner().invoke(main, ["audit", "verify"])
    assert bad.exit_code == 1
    assert f"event {target.id}" in bad.output


def test_the_hashed_form_of_an_event_never_changes():
    """Stored chains are verified by hashing each event again, so the text hashed must keep
    its exact form: keys sorted, no spaces, the time in UTC to the microsecond, non-ASCII
    text as it is. Written out here rather than computed, so that a change to it fails."""
    text = (
        '{"action":"task.completed","actor":"aigul","at":"2026-01-05T04:30:00.000000+00:00",'
        '"chain":"instance:7","detail":{"bpmn_id":"review","data":{"note":"Қазақша"}},'
        '"instance_id":7,"on_behalf_of":null,"prev_hash":"' + audit.GENESIS + '","seq":3,'
        '"task_guid":"g-1"}'
    )
    kostanay = timezone(timedelta(hours=5))
    for _ in range(2):  # the second time through the cached time stamp
        assert (
            audit.event_hash(
                chain="instance:7",
                seq=3,
                at=datetime(2026, 1, 5, 9, 30, tzinfo=kostanay),
                actor="aigul",
                on_behalf_of=None,
                action="task.completed",
                instance_id=7,
                task_guid="g-1",
                detail={"data": {"note": "Қазақша"}, "bpmn_id": "review"},
                prev_hash=audit.GENESIS,
            )
            == hashlib.sha256(text.encode("utf-8")).hexdigest()
        )
