"""State saved and restored between every step equals the state never saved."""

from __future__ import annotations

from engine import definitions
from engine.spiff import workflow as spiff
from tests.factories import ENGINE_DATA


def _specs(process_id):
    checked = definitions.check(definitions.read_paths([ENGINE_DATA], ENGINE_DATA / "forms"))
    assert checked.problems == []
    bundle = spiff.dump_spec_bundle(
        checked.processes[process_id].spec, checked.processes[process_id].subprocess_specs
    )
    return spiff.load_spec_bundle(bundle)


def _drive(process_id, inputs, *, persist):
    """Run a process to its end, feeding ``inputs`` to its manual tasks in turn.

    Returns what a user would see after every step: the ready tasks and their data.
    """
    spec, subs = _specs(process_id)
    wf = spiff.new_workflow(spec, subs, {})
    assert spiff.run_engine(wf) is None
    seen = []
    for data in inputs:
        if persist:
            wf = spiff.load_workflow(spiff.save_workflow(wf), spec, subs)
        [ready] = spiff.ready_manual_tasks(wf)
        seen.append((ready.bpmn_id, sorted(spiff.task_data(spiff.find_task(wf, ready.guid)))))
        task = spiff.find_task(wf, ready.guid)
        assert spiff.run_task(wf, task, data) is None
    if persist:
        wf = spiff.load_workflow(spiff.save_workflow(wf), spec, subs)
    return seen, spiff.is_completed(wf), spiff.workflow_data(wf)


def test_intake_with_and_without_saving():
    inputs = [
        {"child_name": "Аружан", "child_age": 6, "child_iin": "190515600016"},
        {"opinion": "approve"},
    ]
    assert _drive("test_intake", inputs, persist=True) == _drive(
        "test_intake", inputs, persist=False
    )


def test_loop_with_and_without_saving():
    inputs = [{"complete": False}] * 40 + [{"complete": True}]
    saved = _drive("test_loop", inputs, persist=True)
    memory = _drive("test_loop", inputs, persist=False)
    assert saved == memory
    assert saved[1] is True
    assert saved[2]["rounds"] == 41


def test_restored_workflow_runs_scripts_in_the_sandbox():
    spec, subs = _specs("test_intake")
    wf = spiff.new_workflow(spec, subs, {})
    spiff.run_engine(wf)
    restored = spiff.load_workflow(spiff.save_workflow(wf), spec, subs)
    from engine.sandbox.environment import QorgauScriptEngine

    assert isinstance(restored.script_engine, QorgauScriptEngine)
