"""Failures inside a case become incidents on that case; the rest of the system goes on."""

from __future__ import annotations

import threading
import time

import pytest

from engine import instances, tasks
from engine.db import unit_of_work
from engine.errors import InvalidTransition
from tests.factories import VALID_CHILD, deploy_dir, make_people


@pytest.fixture
def world(sqlite_sessions, clock):
    people = make_people(sqlite_sessions, clock)
    deploy_dir(sqlite_sessions, clock)
    return people


def _start_and_prepare(sessions, clock, actor, key, divisor=0):
    with unit_of_work(sessions) as s:
        view = instances.start_process(s, process_key=key, actor=actor, clock=clock)
    with unit_of_work(sessions) as s:
        tasks.complete_task(
            s,
            task_id=view.ready_tasks[0].id,
            actor=actor,
            data={"divisor": divisor},
            clock=clock,
        )
    with unit_of_work(sessions) as s:
        return instances.get_instance(s, instance_id=view.id)


def test_script_error_is_an_incident_with_element_and_line(world, sqlite_sessions, clock):
    view = _start_and_prepare(sqlite_sessions, clock, world["aigul"], "test_crash")
    assert view.status == "error"
    assert view.incident is not None
    assert view.incident.element_id == "compute"
    assert "ZeroDivisionError" in view.incident.message
    assert "line 1" in view.incident.message
    # The user's own work was kept: the prepare task is completed.
    with unit_of_work(sqlite_sessions) as s:
        row = tasks.get_task(s, task_id=1, actor=world["aigul"])
        assert row.status == "completed"


def test_retry_records_a_new_incident_when_it_fails_again(world, sqlite_sessions, clock):
    view = _start_and_prepare(sqlite_sessions, clock, world["aigul"], "test_crash")
    first = view.incident.id
    with unit_of_work(sqlite_sessions) as s:
        again = instances.retry_incident(s, instance_id=view.id, actor=world["admin"], clock=clock)
    assert again.status == "error"
    assert again.incident.id != first
    healthy = _start_and_prepare(sqlite_sessions, clock, world["aigul"], "test_crash", divisor=2)
    with pytest.raises(InvalidTransition, match="is running"):
        with unit_of_work(sqlite_sessions) as s:
            instances.retry_incident(s, instance_id=healthy.id, actor=world["admin"])


def test_healthy_script_after_same_steps(world, sqlite_sessions, clock):
    view = _start_and_prepare(sqlite_sessions, clock, world["aigul"], "test_crash", divisor=4)
    assert view.status == "running"
    assert [t.bpmn_id for t in view.ready_tasks] == ["after"]
    with unit_of_work(sqlite_sessions) as s:
        assert instances.instance_data(s, instance_id=view.id)["ratio"] == 2.5


@pytest.mark.slow
def test_runaway_script_is_stopped_and_others_are_served(world, sqlite_sessions, clock):
    with unit_of_work(sqlite_sessions) as s:
        other = instances.start_process(
            s, process_key="test_intake", actor=world["aigul"], clock=clock
        )
    served: list[float] = []
    stop = threading.Event()

    def other_user():
        # Another user keeps reading the inbox while the runaway script runs.
        while not stop.is_set():
            t0 = time.perf_counter()
            with unit_of_work(sqlite_sessions) as s:
                tasks.inbox(s, actor=world["erzhan"])
            served.append(time.perf_counter() - t0)
            time.sleep(0.05)

    reader = threading.Thread(target=other_user)
    reader.start()
    t0 = time.perf_counter()
    try:
        view = _start_and_prepare(sqlite_sessions, clock, world["aigul"], "test_runaway")
    finally:
        elapsed = time.perf_counter() - t0
        stop.set()
        reader.join()
    assert view.status == "error"
    assert view.incident.element_id == "compute"
    assert view.incident.kind == "timeout"
    assert elapsed < 10  # stopped after its time limit, not left running
    assert len(served) >= 5  # the other user was served throughout
    # The other case is untouched and still works.
    with unit_of_work(sqlite_sessions) as s:
        tasks.complete_task(
            s, task_id=other.ready_tasks[0].id, actor=world["aigul"], data=VALID_CHILD, clock=clock
        )
