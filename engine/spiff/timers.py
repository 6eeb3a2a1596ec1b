"""BPMN timers that read the engine's injected clock instead of the wall clock.

SpiffWorkflow 3.2's timer event definitions call ``datetime.now(timezone.utc)`` inside
``has_fired`` and ``cycle_complete``, so a timer can only come due by waiting for real
time to pass. The subclasses here take "now" from the clock attached to the workflow's
script engine (``make_script_engine(clock=...)``), so that the scheduler, the services and
the tests all agree on one time, and a test moves a ``FixedClock`` instead of sleeping.

Stored state stays compatible, in both directions:

* the subclasses keep SpiffWorkflow's class names, so a serialized spec says
  ``"typename": "TimeDateEventDefinition"`` exactly as before; specs already stored by
  earlier deployments load into these classes, and a spec written with them loads into
  plain SpiffWorkflow;
* the per-task state is SpiffWorkflow's own (``internal_data['event_value']`` and
  ``['event_fired']``, same formats), so state-only JSON is unchanged.

One deliberate difference: a timer fires when its due time is *reached* (``<=``), where
SpiffWorkflow waits until it is passed (``<``). The scheduler claims instances whose
``next_timer_at <= now``; with a strict comparison an instance claimed at exactly its due
time would be loaded, found not due, and claimed again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from SpiffWorkflow.bpmn.specs.event_definitions import timer as spiff_timer

from engine.clock import SYSTEM_CLOCK, Clock


def clock_of(task: Any) -> Clock:
    """The clock of the workflow a task belongs to (the real time when none is attached)."""
    engine = getattr(task.workflow, "script_engine", None)
    environment = getattr(engine, "environment", None)
    clock = getattr(environment, "clock", None)
    return clock if clock is not None else SYSTEM_CLOCK


def _now(task: Any) -> datetime:
    return clock_of(task).now().astimezone(UTC)


class TimeDateEventDefinition(spiff_timer.TimeDateEventDefinition):
    """A timer at a given date and time (``timeDate``)."""

    def has_fired(self, my_task: Any) -> bool:
        event_value = my_task._get_internal_data("event_value")
        if event_value is None:
            event_value = my_task.workflow.script_engine.evaluate(my_task, self.expression)
            my_task._set_internal_data(event_value=event_value)
        if spiff_timer.TimerEventDefinition.parse_time_or_duration(event_value) <= _now(my_task):
            my_task._set_internal_data(event_fired=True)
        return bool(my_task._get_internal_data("event_fired", False))


class DurationTimerEventDefinition(spiff_timer.DurationTimerEventDefinition):
    """A timer a duration after the task was reached (``timeDuration``)."""

    def has_fired(self, my_task: Any) -> bool:
        now = _now(my_task)
        event_value = my_task._get_internal_data("event_value")
        if event_value is None:
            expression = my_task.workflow.script_engine.evaluate(my_task, self.expression)
            parsed = spiff_timer.TimerEventDefinition.parse_iso_duration(expression)
            delta = spiff_timer.TimerEventDefinition.get_timedelta_from_start(parsed, now)
            event_value = (now + delta).isoformat()
            my_task._set_internal_data(event_value=event_value)
        if spiff_timer.TimerEventDefinition.get_datetime(event_value) <= now:
            my_task._set_internal_data(event_fired=True)
        return bool(my_task._get_internal_data("event_fired", False))


class CycleTimerEventDefinition(spiff_timer.CycleTimerEventDefinition):
    """A repeating timer (``timeCycle``, ISO 8601 ``R<n>/…``).

    Each refresh fires at most one due cycle and moves ``next`` on by one period, as
    SpiffWorkflow does; when several periods passed while nothing ran (a stopped server),
    the instance's ``next_timer_at`` is still in the past after the refresh, and the
    scheduler fires the following cycle in its next round, so no cycle is skipped.
    """

    def cycle_complete(self, my_task: Any) -> bool:
        now = _now(my_task)
        event_value = my_task._get_internal_data("event_value")
        if event_value is None:
            expression = my_task.workflow.script_engine.evaluate(my_task, self.expression)
            cycles, start, duration = _parse_cycle(expression, now)
            event_value = {
                "cycles": cycles,
                "next": start.isoformat(),
                "duration": duration.total_seconds(),
            }
        ready = False
        if event_value["cycles"] != 0:
            next_event = datetime.fromisoformat(event_value["next"])
            if next_event <= now:
                event_value["next"] = (
                    next_event + timedelta(seconds=event_value["duration"])
                ).isoformat()
                event_value["cycles"] -= 1
                ready = True
        else:
            my_task.internal_data.pop("event_value", None)
            my_task.internal_data["event_fired"] = True
        my_task._set_internal_data(event_value=event_value)
        return ready


def _parse_cycle(expression: str, now: datetime) -> tuple[int, datetime, timedelta]:
    """``R<n>/start/duration``, ``R<n>/duration/end`` or ``R<n>/duration`` from ``now``."""
    base = spiff_timer.TimerEventDefinition
    components = expression.upper().replace("--", "/").strip("R").split("/")
    if len(components) == 2:
        duration_part = base.parse_time_or_duration(components[1])
        if isinstance(duration_part, dict):
            duration = base.get_timedelta_from_start(duration_part, now)
            cycles = int(components[0]) if components[0] else -1
            return cycles, now + duration, duration
    # The other two forms name their own start or end: SpiffWorkflow's parsing does not
    # read the clock for them.
    cycles, start, duration = base.parse_iso_recurring_interval(expression)
    return cycles, start, duration


# SpiffWorkflow class -> ours; the serializer registers ours under the same type names.
CLOCKED_TIMERS: dict[type, type] = {
    spiff_timer.TimeDateEventDefinition: TimeDateEventDefinition,
    spiff_timer.DurationTimerEventDefinition: DurationTimerEventDefinition,
    spiff_timer.CycleTimerEventDefinition: CycleTimerEventDefinition,
}


def with_clocked_timers(config: dict[Any, Any]) -> dict[Any, Any]:
    """A serializer config that restores timer definitions as the clocked classes.

    SpiffWorkflow's classes stay registered, so specs built by the parser (at deployment)
    still serialize; ours are added *after* them under the same type name, so that
    restoring picks ours (the registry keeps the last restorer per type name).
    """
    out = dict(config)
    for spiff_class, ours in CLOCKED_TIMERS.items():
        out.pop(ours, None)
        out[ours] = config[spiff_class]
    return out
