"""Messages reach the one case that waits for them; timers are found without loading cases."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from engine import instances, tasks
from engine.db import unit_of_work
from engine.errors import Conflict, InvalidTransition, NotFound
from tests.factories import deploy_dir, make_people


@pytest.fixture
def world(sessions, clock):
    people = make_people(sessions, clock)
    deploy_dir(sessions, clock)
    return people


def _request(sessions, clock, actor, key):
    with unit_of_work(sessions) as s:
        view = instances.start_process(
            s, process_key="test_request", actor=actor, clock=clock, business_key=key
        )
    with unit_of_work(sessions) as s:
        tasks.complete_task(
            s, task_id=view.ready_tasks[0].id, actor=actor, data={"addressee": "ДВД"}, clock=clock
        )
    return view


def test_message_is_correlated_by_business_key(world, sessions, clock):
    a = _request(sessions, clock, world["aigul"], "REQ-1")
    b = _request(sessions, clock, world["aigul"], "REQ-2")
    with unit_of_work(sessions) as s:
        assert instances.get_instance(s, instance_id=a.id).status == "waiting"
        done = instances.correlate_message(
            s, message_name="reply_received", business_key="REQ-2", payload={"answer": "yes"}
        )
    assert done.id == b.id
    assert [t.bpmn_id for t in done.ready_tasks] == ["record"]
    with unit_of_work(sessions) as s:
        assert instances.instance_data(s, instance_id=b.id)["reply"] == {"answer": "yes"}
        assert instances.get_instance(s, instance_id=a.id).status == "waiting"
    with pytest.raises(NotFound):
        with unit_of_work(sessions) as s:
            instances.correlate_message(
                s, message_name="reply_received", business_key="REQ-2", payload={}
            )


def test_ambiguous_message_is_refused(world, sessions, clock):
    _request(sessions, clock, world["aigul"], "SAME")
    _request(sessions, clock, world["aigul"], "SAME")
    with pytest.raises(Conflict, match="exactly one case"):
        with unit_of_work(sessions) as s:
            instances.correlate_message(
                s, message_name="reply_received", business_key="SAME", payload={}
            )


def _start_timer(sessions, clock, actor, due: datetime):
    with unit_of_work(sessions) as s:
        return instances.start_process(
            s, process_key="test_timer", actor=actor, clock=clock, data={"due": due.isoformat()}
        )


def test_next_timer_is_stored_and_fired_when_due(world, sessions, clock):
    later = clock.now() + timedelta(hours=2)
    far = _start_timer(sessions, clock, world["aigul"], later)
    assert far.next_timer_at == later
    soon = clock.now() + timedelta(seconds=30)
    near = _start_timer(sessions, clock, world["aigul"], soon)
    with unit_of_work(sessions) as s:
        assert instances.due_timer_instances(s, now=clock.now()) == []
    # The timers read the injected clock (engine/spiff/timers.py): move it, never sleep.
    clock.advance(timedelta(seconds=30))
    with unit_of_work(sessions) as s:
        due = instances.due_timer_instances(s, now=clock.now())
    assert due == [near.id]
    with unit_of_work(sessions) as s:
        fired = instances.fire_timers(s, instance_id=near.id, clock=clock)
    assert [t.bpmn_id for t in fired.ready_tasks] == ["escalate"]
    assert fired.ready_tasks[0].role == "head"
    assert fired.next_timer_at is None
    with unit_of_work(sessions) as s:
        rows = tasks.inbox(s, actor=world["aigul"])
        assert all(r.instance_id != near.id for r in rows)  # "work" was cancelled
        # The far timer is untouched until its own time.
        assert instances.get_instance(s, instance_id=far.id).next_timer_at == later


def test_a_timer_already_past_fires_at_once(world, sessions, clock):
    past = clock.now() - timedelta(minutes=5)
    view = _start_timer(sessions, clock, world["aigul"], past)
    assert [t.bpmn_id for t in view.ready_tasks] == ["escalate"]


def test_bad_timer_value_is_an_incident(world, sessions, clock):
    with unit_of_work(sessions) as s:
        view = instances.start_process(
            s,
            process_key="test_timer",
            actor=world["aigul"],
            clock=clock,
            data={"due": "next Tuesday"},
        )
    assert view.status == "error"
    assert view.incident is not None
    with pytest.raises(InvalidTransition):
        with unit_of_work(sessions) as s:
            tasks.complete_task(s, task_id=1, actor=world["aigul"], data={}, clock=clock)
