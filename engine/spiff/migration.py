"""Moving a running instance's state onto another version's spec (SpiffWorkflow 3.2.0).

An instance is stored as state-only JSON (``engine/spiff/workflow.py``): its tasks name their
task spec, and each running subprocess names the spec it runs. Restoring that JSON against
another spec works exactly when every task spec named in the state exists there (a missing
name would restore a task without a spec, which fails later in the middle of a case). The
engine compacts finished history away (``engine/spiff/compaction.py``), so the names in the
state are the live tasks, their direct parents and a few structural tasks.

SpiffWorkflow also keeps *predictions* in the tree: below a READY or WAITING task hang the
tasks it expects next (FUTURE, LIKELY, MAYBE), built from the old spec. Those are not work
under way: the move drops them and lets the target spec predict again from each READY and
WAITING task, so a changed path after the current task never blocks a case.

So the check reads the instance against its own spec, collects every other task of every
(sub)process with its state, and looks each name up in the target spec; the active tasks
(READY, WAITING, STARTED) that are missing are the ones a person must hear about, and a
missing finished task kept in the state blocks as well because the restore needs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from SpiffWorkflow.bpmn.specs.mixins import SubWorkflowTaskMixin
from SpiffWorkflow.util.task import TaskState

from engine.spiff.workflow import dump_state, restore_state

_ACTIVE = TaskState.READY | TaskState.WAITING | TaskState.STARTED
_PREDICTION = TaskState.FUTURE | TaskState.PREDICTED_MASK
_PREDICTS = TaskState.READY | TaskState.WAITING


@dataclass(frozen=True)
class StateTask:
    """One task kept in an instance's state."""

    process_id: str  # the (sub)process spec it belongs to
    spec_name: str  # its task spec name (the BPMN id for BPMN elements)
    bpmn_id: str | None
    state: str
    active: bool
    # It runs a subprocess of its own, which the target must be able to hold.
    has_subprocess: bool = False


@dataclass(frozen=True)
class MissingTask:
    """A task of the state whose spec the target version does not have."""

    process_id: str
    spec_name: str
    bpmn_id: str | None
    state: str
    active: bool

    def __str__(self) -> str:
        what = "active task" if self.active else f"{self.state.lower()} task kept in the state"
        return f"{what} {self.bpmn_id or self.spec_name!r} ({self.process_id}) is not in the target"


def state_tasks(state_json: str, spec: Any, subprocess_specs: dict[str, Any]) -> list[StateTask]:
    """Every task in an instance's state, in the top process and each running subprocess."""
    workflow = restore_state(state_json, spec, subprocess_specs)
    found = []
    for each in [workflow, *workflow.subprocesses.values()]:
        for task in each.tasks.values():
            if _is_prediction(task):
                continue
            task_spec = task.task_spec
            found.append(
                StateTask(
                    process_id=each.spec.name,
                    spec_name=task_spec.name,
                    bpmn_id=getattr(task_spec, "bpmn_id", None),
                    state=TaskState.get_name(task.state),
                    active=bool(task.state & _ACTIVE),
                    has_subprocess=task.id in workflow.subprocesses,
                )
            )
    return found


def missing_in(
    tasks: list[StateTask], target_spec: Any, target_subprocess_specs: dict[str, Any]
) -> list[MissingTask]:
    """The tasks whose (sub)process or task spec the target lacks, active ones first."""
    specs = {target_spec.name: target_spec, **target_subprocess_specs}
    missing = []
    for task in tasks:
        process = specs.get(task.process_id)
        target = process.task_specs.get(task.spec_name) if process is not None else None
        # A call activity turned into a plain task would silently lose its subprocess.
        if target is not None and (
            not task.has_subprocess or isinstance(target, SubWorkflowTaskMixin)
        ):
            continue
        missing.append(
            MissingTask(task.process_id, task.spec_name, task.bpmn_id, task.state, task.active)
        )
    missing.sort(key=lambda m: (not m.active, m.process_id, m.spec_name))
    return missing


def _is_prediction(task: Any) -> bool:
    """A task that only predicts what comes after a READY or WAITING task."""
    while task.has_state(_PREDICTION) and task.parent is not None:
        if task.parent.has_state(_PREDICTS):
            return True
        task = task.parent
    return False


def _prediction_roots(workflow: Any) -> list[Any]:
    # Children of READY/WAITING tasks that are predictions; removing one removes its subtree.
    roots = []
    for each in [workflow, *workflow.subprocesses.values()]:
        for task in list(each.tasks.values()):
            if task.has_state(_PREDICTION) and task.parent and task.parent.has_state(_PREDICTS):
                roots.append(task)
    return roots


def rebase_state(
    state_json: str,
    source_spec: Any,
    source_subprocess_specs: dict[str, Any],
    target_spec: Any,
    target_subprocess_specs: dict[str, Any],
) -> str:
    """Move the state onto the target spec: drop the old predictions, restore against the
    target, predict again from every READY and WAITING task, serialize.

    Returns:
        The new state JSON.

    Raises:
        ValueError: a task of the state has no spec in the target (check ``missing_in``
            first; this is the safety net).
    """
    old = restore_state(state_json, source_spec, source_subprocess_specs)
    for task in _prediction_roots(old):
        task.workflow._remove_task(task.id)  # noqa: SLF001 - no public API prunes predictions
    workflow = restore_state(dump_state(old), target_spec, target_subprocess_specs)
    for each in [workflow, *workflow.subprocesses.values()]:
        for task in each.tasks.values():
            if task.task_spec is None:
                raise ValueError(f"task {task.id} has no spec in the target version")
    for each in [workflow, *workflow.subprocesses.values()]:
        for task in list(each.tasks.values()):
            if task.has_state(_PREDICTS):
                # The mask must include the task's own state, or its hook never runs (as
                # SpiffWorkflow's MultiInstance does when it predicts from a READY task).
                task.task_spec._predict(task, mask=_PREDICTS | _PREDICTION)  # noqa: SLF001
    return dump_state(workflow)
