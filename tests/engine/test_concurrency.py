"""Two people complete the same task at the same moment: one wins, the other gets a conflict.

Runs on SQLite and on PostgreSQL. Nothing half-applied survives on either side.
"""

from __future__ import annotations

import contextlib
import threading

import pytest
from sqlalchemy import event, func, select

from engine import instances, tasks
from engine.db import unit_of_work
from engine.errors import Conflict, EngineError
from engine.models import AuditEvent, HumanTask, ProcessInstance
from tests.factories import VALID_CHILD, deploy_dir, make_people


@pytest.fixture
def case(sessions, clock):
    people = make_people(sessions, clock)
    deploy_dir(sessions, clock)
    with unit_of_work(sessions) as s:
        view = instances.start_process(
            s, process_key="test_intake", actor=people["aigul"], clock=clock
        )
    return people, view


def test_stale_revision_is_a_conflict(case, sessions, clock):
    people, view = case
    task_id = view.ready_tasks[0].id
    with unit_of_work(sessions) as s:
        tasks.claim_task(s, task_id=task_id, actor=people["aigul"], clock=clock)
    # The form was opened at the revision of the start; the claim moved it on.
    with pytest.raises(Conflict, match="changed by someone else"):
        with unit_of_work(sessions) as s:
            tasks.complete_task(
                s,
                task_id=task_id,
                actor=people["aigul"],
                data=VALID_CHILD,
                clock=clock,
                expected_revision=view.revision,
            )


def _state(sessions, instance_id):
    with unit_of_work(sessions) as s:
        inst = s.get(ProcessInstance, instance_id)
        rows = s.scalars(select(HumanTask).where(HumanTask.instance_id == instance_id)).all()
        events = s.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.instance_id == instance_id)
        )
        return inst, rows, events


def test_interleaved_writers_one_wins(case, sessions, db_engine, clock):
    """Both writers have read the case and computed their change before either writes.

    A barrier in the flush holds each until both are ready to write: the revision check
    must stop the second. (On PostgreSQL the row lock already orders them: the second
    waits at its SELECT … FOR UPDATE, then finds the task completed.)
    """
    people, view = case
    task_id = view.ready_tasks[0].id
    barrier = threading.Barrier(2, timeout=3)

    def hold(session, _ctx, _instances):
        if session.info.get("held"):
            return
        session.info["held"] = True
        # On PostgreSQL the other writer is blocked on the row lock: go on alone.
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait()

    outcomes: list[object] = []

    def writer(actor):
        session = sessions()
        event.listen(session, "before_flush", hold)
        try:
            tasks.complete_task(
                session, task_id=task_id, actor=actor, data=VALID_CHILD, clock=clock
            )
            session.commit()
            outcomes.append("ok")
        except EngineError as exc:
            session.rollback()
            outcomes.append(exc)
        finally:
            session.close()

    # Both may complete: the task is unclaimed and both hold its role.
    threads = [threading.Thread(target=writer, args=(people[n],)) for n in ("aigul", "erzhan")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert outcomes.count("ok") == 1, outcomes
    [loser] = [o for o in outcomes if o != "ok"]
    assert isinstance(loser, EngineError)
    assert loser.code in {"conflict", "invalid_transition"}

    inst, rows, events = _state(sessions, view.id)
    by_id = {r.bpmn_id: r for r in rows}
    assert by_id["register"].status == "completed"
    assert by_id["legal_check"].status == "ready"
    assert len(rows) == 2  # no duplicate inbox rows from the loser
    # start + task.created, then claimed + completed + task.created by the winner only
    assert events == inst.audit_seq


def test_many_racers_exactly_one_completion(case, sessions, clock):
    people, view = case
    task_id = view.ready_tasks[0].id
    results: list[str] = []
    lock = threading.Lock()

    def racer(actor):
        try:
            with unit_of_work(sessions) as s:
                tasks.complete_task(s, task_id=task_id, actor=actor, data=VALID_CHILD, clock=clock)
            outcome = "ok"
        except EngineError as exc:
            outcome = exc.code
        with lock:
            results.append(outcome)

    threads = [
        threading.Thread(target=racer, args=(people["aigul" if i % 2 else "erzhan"],))
        for i in range(6)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert results.count("ok") == 1, results
    assert set(results) <= {"ok", "conflict", "invalid_transition"}
    _inst, rows, _events = _state(sessions, view.id)
    assert sorted(r.bpmn_id for r in rows) == ["legal_check", "register"]
