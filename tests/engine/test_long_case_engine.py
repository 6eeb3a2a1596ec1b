"""A case that loops 2,000 times through the engine keeps working at a flat cost."""

from __future__ import annotations

import pytest

from engine import instances, tasks
from engine.db import unit_of_work
from engine.models import ProcessInstance
from tests.factories import deploy_dir, make_people

ROUNDS = 2000


@pytest.mark.slow
def test_two_thousand_rounds_on_one_case(sqlite_sessions, clock):
    people = make_people(sqlite_sessions, clock)
    deploy_dir(sqlite_sessions, clock)
    actor = people["aigul"]
    with unit_of_work(sqlite_sessions) as s:
        view = instances.start_process(s, process_key="test_loop", actor=actor, clock=clock)
    sizes = {}
    task_id = view.ready_tasks[0].id
    for round_no in range(1, ROUNDS + 1):
        with unit_of_work(sqlite_sessions) as s:
            tasks.complete_task(
                s,
                task_id=task_id,
                actor=actor,
                data={"complete": round_no == ROUNDS},
                clock=clock,
            )
            instance = s.get(ProcessInstance, view.id)
            sizes[round_no] = len(instance.state_json)
            if round_no < ROUNDS:
                [nxt] = instances.get_instance(s, instance_id=view.id).ready_tasks
                assert nxt.bpmn_id == "review"
                task_id = nxt.id
    with unit_of_work(sqlite_sessions) as s:
        final = instances.get_instance(s, instance_id=view.id)
        data = instances.instance_data(s, instance_id=view.id)
    assert final.status == "completed"
    assert data["rounds"] == ROUNDS
    # The stored state does not grow with the history (the audit log keeps that).
    assert sizes[ROUNDS - 1] <= 1.5 * sizes[10]
