"""The one place that touches SpiffWorkflow's workflow, serializer and task tree.

What the rest of the engine gets from here are plain values (``ManualTaskInfo``,
``StepFailure``) and a handful of verbs: build, load, save, run, inspect.

Persistence is *state only*: the spec of each process version is serialized once at
deployment (``dump_spec_bundle``) and built once per process (``SpecCache``); an instance
stores just its task tree and data, about half the size and twice as fast to load as
SpiffWorkflow's full serialization.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnEvent, BpmnWorkflow
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.workflow import (
    BpmnWorkflowConverter,
    WorkflowConverter,
)
from SpiffWorkflow.bpmn.specs.event_definitions.message import (
    MessageEventDefinition as BaseMessageEventDefinition,
)
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    CycleTimerEventDefinition,
    DurationTimerEventDefinition,
    TimeDateEventDefinition,
    TimerEventDefinition,
)
from SpiffWorkflow.exceptions import TaskNotFoundException
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.spiff.specs.event_definitions import MessageEventDefinition
from SpiffWorkflow.task import Task as SpiffTask
from SpiffWorkflow.util.task import TaskState

from engine.clock import Clock
from engine.errors import ScriptError
from engine.sandbox.environment import make_script_engine
from engine.spiff.compaction import compact
from engine.spiff.timers import with_clocked_timers

SERIALIZER_VERSION = "1.5"


# --- serialization ----------------------------------------------------------------------

_loading = threading.local()


class _StateOnlyConverter(BpmnWorkflowConverter):
    """Writes a workflow without its spec; restores it against an already-built spec.

    The spec for the restore is handed over through a thread-local set by ``load_workflow``
    because SpiffWorkflow's converters take only the dictionary.
    """

    def to_dict(self, workflow: BpmnWorkflow) -> dict[str, Any]:
        dct = WorkflowConverter.to_dict(self, workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def from_dict(self, dct: dict[str, Any]) -> BpmnWorkflow:
        spec, subprocess_specs = _loading.specs
        workflow = self.target_class(spec, subprocess_specs, deserializing=True)
        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


def _register_data_types(registry: Any) -> None:
    # Task data may hold these; SpiffWorkflow's registry knows only datetime and timedelta.
    registry.register(Decimal, lambda v: {"value": str(v)}, lambda d: Decimal(d["value"]))
    registry.register(
        date, lambda v: {"value": v.isoformat()}, lambda d: date.fromisoformat(d["value"])
    )


def _state_serializer() -> BpmnWorkflowSerializer:
    # Timers restore as the clocked classes (engine/spiff/timers.py), same type names.
    config = with_clocked_timers(SPIFF_CONFIG)
    config[BpmnWorkflow] = _StateOnlyConverter
    registry = BpmnWorkflowSerializer.configure(config)
    _register_data_types(registry)
    return BpmnWorkflowSerializer(registry, version=SERIALIZER_VERSION)


def _spec_registry() -> Any:
    registry = BpmnWorkflowSerializer.configure(with_clocked_timers(SPIFF_CONFIG))
    _register_data_types(registry)
    return registry


_STATE = _state_serializer()
_SPECS = _spec_registry()


def dump_spec_bundle(spec: Any, subprocess_specs: dict[str, Any]) -> str:
    """Serialize a process spec with the specs it calls, once per process version."""
    return json.dumps(
        {
            "spec": _SPECS.convert(spec),
            "subprocess_specs": {name: _SPECS.convert(s) for name, s in subprocess_specs.items()},
        }
    )


def load_spec_bundle(bundle: str) -> tuple[Any, dict[str, Any]]:
    dct = json.loads(bundle)
    spec = _SPECS.restore(dct["spec"])
    subprocess_specs = {name: _SPECS.restore(s) for name, s in dct["subprocess_specs"].items()}
    return spec, subprocess_specs


class SpecCache:
    """Built specs per process version, shared by every instance of that version.

    Specs are never modified once built, so sharing them between threads is safe.
    """

    def __init__(self, size: int = 128) -> None:
        self._size = size
        self._items: OrderedDict[str, tuple[Any, dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str, bundle_loader: Any) -> tuple[Any, dict[str, Any]]:
        """The built spec for ``key`` (a version's content hash), built on first use."""
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
                return hit
        built = load_spec_bundle(bundle_loader())
        with self._lock:
            self._items[key] = built
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return built

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


SPEC_CACHE = SpecCache()


def new_workflow(
    spec: Any,
    subprocess_specs: dict[str, Any],
    data: dict[str, Any],
    *,
    clock: Clock | None = None,
) -> BpmnWorkflow:
    """A fresh instance with ``data`` seeded where scripts can see it (the root task).

    ``clock`` drives the instance's timers and ``now()``/``today()`` in its scripts.
    """
    workflow = BpmnWorkflow(spec, subprocess_specs, script_engine=make_script_engine(clock=clock))
    workflow.task_tree.data.update(data)
    return workflow


def restore_state(state_json: str, spec: Any, subprocess_specs: dict[str, Any]) -> BpmnWorkflow:
    """Rebuild a workflow from its state-only JSON against an already-built spec."""
    _loading.specs = (spec, subprocess_specs)
    try:
        return _STATE.deserialize_json(state_json)
    finally:
        _loading.specs = None


def dump_state(workflow: BpmnWorkflow) -> str:
    """The state-only JSON of a workflow (no spec), as stored on its instance row."""
    return _STATE.serialize_json(workflow)


def load_workflow(
    state_json: str,
    spec: Any,
    subprocess_specs: dict[str, Any],
    *,
    clock: Clock | None = None,
) -> BpmnWorkflow:
    """Restore an instance, with the restricted script engine attached.

    The script engine is not part of the serialized state: a restored workflow would
    otherwise run scripts with SpiffWorkflow's default, unrestricted ``exec``. It also
    carries ``clock``, which the instance's timers read (engine/spiff/timers.py).
    """
    workflow = restore_state(state_json, spec, subprocess_specs)
    workflow.script_engine = make_script_engine(clock=clock)
    return workflow


def reattach(workflow: BpmnWorkflow, *, clock: Clock | None = None) -> BpmnWorkflow:
    """Give a workflow kept in memory from an earlier command a fresh script engine on
    this command's clock, as ``load_workflow`` does for a restored one."""
    workflow.script_engine = make_script_engine(clock=clock)
    return workflow


def save_workflow(workflow: BpmnWorkflow) -> str:
    """Compact finished history out of the tree, then serialize the state (no spec)."""
    compact(workflow)
    return dump_state(workflow)


# --- running ----------------------------------------------------------------------------


@dataclass(frozen=True)
class StepFailure:
    """Something inside the workflow failed: becomes an incident on the instance."""

    element_id: str | None
    kind: str
    message: str
    line: int | None = None


def failure_from_exception(exc: BaseException, workflow: BpmnWorkflow) -> StepFailure:
    """Name the element and the reason, whatever layer the exception came from."""
    script_error = _find_cause(exc, ScriptError)
    element_id = None
    task = getattr(exc, "task", None)
    if task is not None:
        element_id = task.task_spec.bpmn_id or task.task_spec.name
    if element_id is None:
        failed = [t for t in workflow.get_tasks(state=TaskState.ERROR)]
        if failed:
            element_id = failed[-1].task_spec.bpmn_id or failed[-1].task_spec.name
    if script_error is not None:
        return StepFailure(
            element_id=script_error.element_id or element_id,
            kind=script_error.kind,
            message=script_error.message,
            line=script_error.line,
        )
    line = getattr(exc, "line_number", None) or None
    message = f"{type(exc).__name__}: {exc}"
    return StepFailure(element_id=element_id, kind="error", message=message, line=line)


def _find_cause(exc: BaseException | None, kind: type[BaseException]) -> Any:
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, kind):
            return exc
        inner = getattr(exc, "exception", None)
        exc = inner if isinstance(inner, BaseException) else (exc.__cause__ or exc.__context__)
    return None


def run_engine(workflow: BpmnWorkflow) -> StepFailure | None:
    """Run automatic steps until the instance waits; a failure is returned, not raised.

    Timers are refreshed first: SpiffWorkflow marks a due timer ready only in a refresh,
    and ``do_engine_steps`` refreshes only at its end, after its run loop.
    """
    try:
        workflow.refresh_timers()
        workflow.do_engine_steps()
    except Exception as exc:  # noqa: BLE001 - any failure inside becomes an incident
        return failure_from_exception(exc, workflow)
    return None


def run_task(workflow: BpmnWorkflow, task: SpiffTask, data: dict[str, Any]) -> StepFailure | None:
    """Complete a manual task with ``data`` and continue to the next wait state."""
    try:
        task.set_data(**data)
        task.run()
    except Exception as exc:  # noqa: BLE001
        return failure_from_exception(exc, workflow)
    return run_engine(workflow)


def retry_failed(workflow: BpmnWorkflow) -> StepFailure | None:
    """Make tasks that failed runnable again and continue."""
    for task in workflow.get_tasks(state=TaskState.ERROR):
        task._set_state(TaskState.READY)  # noqa: SLF001 - no public API resets a failed task
    return run_engine(workflow)


def find_task(workflow: BpmnWorkflow, task_guid: str) -> SpiffTask | None:
    """The task with this id, or None (also when compaction removed a finished task)."""
    try:
        return workflow.get_task_from_id(UUID(task_guid))
    except (ValueError, KeyError, TaskNotFoundException):
        return None


def is_ready_manual(task: SpiffTask) -> bool:
    # SpiffWorkflow's task.run() runs a task in any state; only READY manual tasks may be
    # completed by a person.
    return task.state == TaskState.READY and bool(task.task_spec.manual)


def is_completed(workflow: BpmnWorkflow) -> bool:
    return bool(workflow.is_completed())


def has_failed_tasks(workflow: BpmnWorkflow) -> bool:
    return bool(workflow.get_tasks(state=TaskState.ERROR))


def cancel(workflow: BpmnWorkflow) -> None:
    workflow.cancel()


def workflow_data(workflow: BpmnWorkflow) -> dict[str, Any]:
    """The data of a finished instance, or the data of its latest ready task."""
    if workflow.is_completed():
        return dict(workflow.data)
    ready = workflow.get_tasks(state=TaskState.READY)
    if ready:
        return dict(ready[-1].data)
    return dict(workflow.last_task.data) if workflow.last_task else {}


# --- inspecting -------------------------------------------------------------------------


@dataclass(frozen=True)
class ManualTaskInfo:
    guid: str
    bpmn_id: str
    name: str
    lane: str | None
    properties: dict[str, str] = field(default_factory=dict)
    instructions: str | None = None
    process_id: str | None = None


def _manual_info(task: SpiffTask) -> ManualTaskInfo:
    spec = task.task_spec
    extensions = getattr(spec, "extensions", None) or {}
    return ManualTaskInfo(
        guid=str(task.id),
        bpmn_id=spec.bpmn_id or spec.name,
        name=spec.bpmn_name or spec.bpmn_id or spec.name,
        lane=spec.lane,
        properties=dict(extensions.get("properties") or {}),
        instructions=extensions.get("instructionsForEndUser") or spec.documentation,
        process_id=task.workflow.spec.name,
    )


def ready_manual_tasks(workflow: BpmnWorkflow) -> list[ManualTaskInfo]:
    return [_manual_info(t) for t in workflow.get_tasks(state=TaskState.READY, manual=True)]


@dataclass(frozen=True)
class Snapshot:
    """What saving an instance needs to know of its workflow, read in one walk of the task
    tree (each of ``ready_manual_tasks``, ``has_failed_tasks``, ``next_timer_at`` and
    ``workflow_data`` walks it again)."""

    ready_manual: list[ManualTaskInfo]
    failed: bool
    completed: bool
    next_timer_at: datetime | None
    _data_source: Any

    def data(self) -> dict[str, Any]:
        """As ``workflow_data``: the data of the finished instance or of its latest ready task."""
        source = self._data_source
        return dict(source.data) if source is not None else {}


def snapshot(workflow: BpmnWorkflow) -> Snapshot:
    ready_manual: list[ManualTaskInfo] = []
    waiting: list[SpiffTask] = []
    failed = False
    last_ready = None
    for task in workflow.get_tasks_iterator():
        state = task.state
        if state == TaskState.READY:
            last_ready = task
            if task.task_spec.manual:
                ready_manual.append(_manual_info(task))
        elif state == TaskState.WAITING:
            waiting.append(task)
        elif state == TaskState.ERROR:
            failed = True
    completed = bool(workflow.is_completed())
    if completed:
        source: Any = workflow
    else:
        source = last_ready if last_ready is not None else workflow.last_task
    return Snapshot(
        ready_manual=ready_manual,
        failed=failed,
        completed=completed,
        next_timer_at=_earliest_timer(waiting),
        _data_source=source,
    )


def task_data(task: SpiffTask) -> dict[str, Any]:
    return dict(task.data)


def next_timer_at(workflow: BpmnWorkflow) -> datetime | None:
    """The earliest due time among the instance's waiting timers (UTC), if any."""
    return _earliest_timer(workflow.get_tasks(state=TaskState.WAITING))


def _earliest_timer(waiting: Iterable[SpiffTask]) -> datetime | None:
    due: list[datetime] = []
    for task in waiting:
        definition = getattr(task.task_spec, "event_definition", None)
        if definition is None:
            continue
        value = task.internal_data.get("event_value")
        if isinstance(definition, MultipleEventDefinition):
            # Event-based gateway: SpiffWorkflow keeps one shared due time for all its timers.
            kinds = [d for d in definition.event_definitions if isinstance(d, TimerEventDefinition)]
            if not kinds or value is None:
                continue
            definition = kinds[0]
        if not isinstance(definition, TimerEventDefinition) or value is None:
            continue
        when = _timer_due(definition, value)
        if when is not None:
            due.append(when)
    return min(due) if due else None


def _timer_due(definition: TimerEventDefinition, value: Any) -> datetime | None:
    try:
        if isinstance(definition, CycleTimerEventDefinition):
            if not isinstance(value, dict) or value.get("cycles") == 0:
                return None
            when = datetime.fromisoformat(value["next"])
        elif isinstance(definition, DurationTimerEventDefinition):
            when = datetime.fromisoformat(value)
        elif isinstance(definition, TimeDateEventDefinition):
            when = TimerEventDefinition.parse_time_or_duration(value)
        else:
            return None
    except (TypeError, ValueError, KeyError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


def waiting_message_names(workflow: BpmnWorkflow) -> set[str]:
    names = set()
    for pending in workflow.waiting_events():
        if pending.event_type in {
            MessageEventDefinition.__name__,
            BaseMessageEventDefinition.__name__,
        }:
            names.add(pending.name)
    return names


def deliver_message(workflow: BpmnWorkflow, name: str, payload: Any) -> StepFailure | None:
    """Hand a message to the instance; raises LookupError if it does not wait for it."""
    from SpiffWorkflow.exceptions import WorkflowException

    event = BpmnEvent(MessageEventDefinition(name), payload)
    try:
        workflow.send_event(event)
    except WorkflowException as exc:
        raise LookupError(str(exc)) from exc
    except Exception as exc:  # noqa: BLE001
        return failure_from_exception(exc, workflow)
    return run_engine(workflow)


def element_ids(tasks: Iterable[ManualTaskInfo]) -> set[str]:
    return {t.bpmn_id for t in tasks}
