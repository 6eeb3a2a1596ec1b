"""The shape every command shares: lock, load, act, step, save, keep the inbox in step, audit.

Each public service in ``tasks.py`` and ``instances.py`` runs inside the caller's
transaction and uses a ``Unit`` from here:

1. ``Unit.open`` reads the instance row (``SELECT … FOR UPDATE`` on PostgreSQL) and, when the
   command needs it, restores the workflow against the cached spec of its version;
2. the command acts on the workflow (complete a task, deliver a message, …);
3. ``Unit.save`` serializes the state, recomputes status, next timer and message
   subscriptions, brings ``human_task`` rows in line with the READY manual tasks, appends the
   audit events, and flushes. The instance UPDATE carries ``WHERE revision = <read>``:
   when another writer got there first nothing is written and ``Conflict`` is raised, so the
   caller rolls the whole transaction back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from engine import audit
from engine.calendar import WorkingCalendar
from engine.calendar_overrides import load_calendar
from engine.clock import SYSTEM_CLOCK, Clock
from engine.db import is_postgres
from engine.deadlines import deadline_for
from engine.errors import Conflict, InvalidTransition, NotFound
from engine.identity import Actor
from engine.models import (
    AuditEvent,
    HumanTask,
    Incident,
    MessageSubscription,
    ProcessInstance,
    ProcessVersion,
)
from engine.spiff import workflow as spiff
from engine.views import InstanceView

ACTIVE = frozenset({"running", "waiting"})
ENDED = frozenset({"completed", "terminated"})


def load_version(session: Session, version_id: int) -> ProcessVersion:
    version = session.get(ProcessVersion, version_id)
    if version is None:
        raise NotFound(f"process version {version_id} does not exist")
    return version


def specs_of(version: ProcessVersion) -> tuple[Any, dict[str, Any]]:
    # Keyed by content, not id: two databases (or a restored one) may reuse ids.
    return spiff.SPEC_CACHE.get(version.content_hash, lambda: version.spec_json)


def role_of(task: spiff.ManualTaskInfo, version: ProcessVersion) -> str | None:
    """A task's role: its own ``role`` property, else its lane mapped through the process
    properties (``role.<lane>``), else the lane name itself (lanes are role codes)."""
    if task.properties.get("role"):
        return task.properties["role"]
    if task.lane is None:
        return None
    mapped = (version.properties or {}).get(f"role.{task.lane}")
    return mapped or task.lane


@dataclass
class Unit:
    session: Session
    actor: Actor
    clock: Clock
    instance: ProcessInstance
    version: ProcessVersion
    _workflow: Any = None
    events: list[audit.PendingEvent] = field(default_factory=list)
    # guid -> user id of tasks this command completed (so their rows say "completed").
    completed: dict[str, int | None] = field(default_factory=dict)
    # Set when a step of this command failed: the case is in error even if SpiffWorkflow
    # left no task in its ERROR state (a bad timer value fails outside any task's run).
    failed: bool = False
    # Inbox rows to insert after the revision-checked UPDATE (see ``save``).
    _new_tasks: list[dict[str, Any]] = field(default_factory=list)
    now: datetime = field(init=False)
    _calendar: WorkingCalendar | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.now = self.clock.now()

    @property
    def calendar(self) -> WorkingCalendar:
        """The working-day calendar in force, read from the database when a due date needs
        it (one small query), so that the version stored with a due date is the current one.

        Scripts' working-day helpers use the calendar this process loaded last; the scheduler
        reloads it every minute (engine/calendar.py, "Active calendar").
        """
        if self._calendar is None:
            self._calendar = load_calendar(self.session)
        return self._calendar

    # --- opening ------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        session: Session,
        instance_id: int,
        *,
        actor: Actor,
        clock: Clock | None = None,
        expected_revision: int | None = None,
        load: bool = True,
    ) -> Unit:
        stmt = (
            select(ProcessInstance)
            .where(ProcessInstance.id == instance_id)
            .execution_options(populate_existing=True)
        )
        if is_postgres(session):
            stmt = stmt.with_for_update()
        instance = session.scalars(stmt).one_or_none()
        if instance is None:
            raise NotFound(f"process instance {instance_id} does not exist")
        if expected_revision is not None and instance.revision != expected_revision:
            raise Conflict(
                f"case {instance_id} was changed by someone else since you opened it "
                f"(revision {expected_revision}, now {instance.revision}); reload it",
                instance_id=instance_id,
            )
        version = load_version(session, instance.process_version_id)
        unit = cls(session, actor, clock or SYSTEM_CLOCK, instance, version)
        if load:
            unit.load()
        return unit

    def load(self) -> Any:
        """Restore the workflow (once): commands that only touch inbox rows never need it."""
        if self._workflow is None:
            spec, subprocess_specs = specs_of(self.version)
            self._workflow = spiff.load_workflow(
                self.instance.state_json, spec, subprocess_specs, clock=self.clock
            )
        return self._workflow

    @property
    def workflow(self) -> Any:
        return self._workflow

    @workflow.setter
    def workflow(self, value: Any) -> None:
        self._workflow = value

    # --- acting -------------------------------------------------------------------------

    def event(
        self, action: str, detail: dict[str, Any] | None = None, task_guid: str | None = None
    ) -> None:
        self.events.append(audit.PendingEvent(action, detail or {}, task_guid))

    def require_status(self, allowed: frozenset[str], doing: str) -> None:
        if self.instance.status not in allowed:
            raise InvalidTransition(
                f"cannot {doing}: case {self.instance.id} is {self.instance.status}",
                instance_id=self.instance.id,
                status=self.instance.status,
            )

    def apply(self, step: Callable[[], spiff.StepFailure | None]) -> spiff.StepFailure | None:
        failure = step()
        if failure is not None:
            self.open_incident(failure)
        return failure

    def open_incident(self, failure: spiff.StepFailure) -> None:
        self.failed = True
        message = failure.message
        if failure.line:
            message = f"line {failure.line}: {message}"
        self.session.add(
            Incident(
                instance_id=self.instance.id,
                element_id=failure.element_id,
                kind=failure.kind,
                message=message,
                created_at=self.now,
            )
        )
        self.event(
            "incident.opened",
            {"element_id": failure.element_id, "kind": failure.kind, "message": message},
        )

    # --- saving -------------------------------------------------------------------------

    def save(self) -> None:
        """Write everything this command changed, or raise ``Conflict`` and write nothing."""
        instance, wf = self.instance, self.workflow
        instance_id = instance.id  # readable after a failed write has expired the row
        with self.session.no_autoflush:
            if wf is not None:
                instance.state_json = spiff.save_workflow(wf)
                instance.serializer_version = spiff.SERIALIZER_VERSION
                instance.next_timer_at = spiff.next_timer_at(wf)
                self._derive_status()
                if instance.status in ENDED:
                    instance.next_timer_at = None
                self._sync_tasks()
                self._sync_messages()
            instance.updated_at = self.now
            audit_rows = audit.instance_event_rows(instance, self.actor, self.events, self.now)
        self.events = []
        try:
            # The instance UPDATE carries the revision check and goes first: a writer that
            # lost the race stops here, before it inserts anything.
            self.session.flush()
        except StaleDataError as exc:
            raise Conflict(
                f"case {instance_id} was changed by someone else at the same time; reload it",
                instance_id=instance_id,
            ) from exc
        # Core executemany for rows written once: the ORM's per-object bookkeeping would be
        # most of a step's cost.
        if self._new_tasks:
            self.session.execute(insert(HumanTask), self._new_tasks)
            self._new_tasks = []
        if audit_rows:
            self.session.execute(insert(AuditEvent), audit_rows)

    def _derive_status(self) -> None:
        instance, wf = self.instance, self.workflow
        if instance.status in {"suspended", "terminated"}:
            return
        if self.failed or spiff.has_failed_tasks(wf):
            instance.status = "error"
        elif spiff.is_completed(wf):
            if instance.status != "completed":
                instance.status = "completed"
                instance.ended_at = self.now
                self.event("process.completed", {})
        elif spiff.ready_manual_tasks(wf):
            instance.status = "running"
        else:
            instance.status = "waiting"

    def _sync_tasks(self) -> None:
        """Make the open ``human_task`` rows equal the workflow's READY manual tasks."""
        instance = self.instance
        ready = [] if instance.status in ENDED else spiff.ready_manual_tasks(self.workflow)
        ready_by_guid = {t.guid: t for t in ready}
        open_rows = self.session.scalars(
            select(HumanTask).where(
                HumanTask.instance_id == instance.id, HumanTask.status == "ready"
            )
        ).all()
        known = set()
        for row in open_rows:
            known.add(row.task_guid)
            if row.task_guid in ready_by_guid:
                continue
            if row.task_guid in self.completed:
                row.status = "completed"
                row.completed_at = self.now
                row.completed_by_id = self.completed[row.task_guid]
            else:
                # Cancelled by the workflow itself: a boundary event, a termination.
                row.status = "cancelled"
                row.completed_at = self.now
                self.event("task.cancelled", {"bpmn_id": row.bpmn_id}, row.task_guid)
        case_fields = _case_fields(instance, self.workflow) if ready else {}
        new_rows = []
        for task in ready:
            if task.guid in known:
                continue
            rule = task.properties.get("deadlineRule") or None
            deadline = (
                deadline_for(self.version.deadline_rules or {}, rule, self.now, self.calendar)
                if rule
                else None
            )
            row = dict(
                instance_id=instance.id,
                task_guid=task.guid,
                bpmn_id=task.bpmn_id,
                name=task.name,
                process_key=instance.process_key,
                role=role_of(task, self.version),
                district_id=instance.district_id,
                status="ready",
                form_key=task.properties.get("formKey") or None,
                deadline_rule=rule,
                due_at=deadline.due_at if deadline else None,
                deadline_basis=deadline.basis if deadline else None,
                calendar_version=deadline.calendar_version if deadline else None,
                created_at=self.now,
                **case_fields,
            )
            new_rows.append(row)
            self.event(
                "task.created",
                {
                    "bpmn_id": task.bpmn_id,
                    "role": row["role"],
                    "due_at": row["due_at"],
                    "deadline_basis": row["deadline_basis"],
                    "calendar_version": row["calendar_version"],
                },
                task.guid,
            )
        self._new_tasks.extend(new_rows)

    def _sync_messages(self) -> None:
        instance = self.instance
        wanted = set() if instance.status in ENDED else spiff.waiting_message_names(self.workflow)
        if wanted == set(instance.waiting_messages or ()):
            return
        instance.waiting_messages = sorted(wanted)
        rows = self.session.scalars(
            select(MessageSubscription).where(MessageSubscription.instance_id == instance.id)
        ).all()
        have = {r.message_name: r for r in rows}
        for name, row in have.items():
            if name not in wanted:
                self.session.delete(row)
        for name in sorted(wanted - set(have)):
            self.session.add(
                MessageSubscription(
                    instance_id=instance.id, message_name=name, business_key=instance.business_key
                )
            )


def _case_fields(instance: ProcessInstance, workflow: Any) -> dict[str, str | None]:
    """What the inbox searches by: the case number (business key) and, by convention,
    the process variables ``child_name`` and ``child_iin`` where a procedure has them."""
    data = spiff.workflow_data(workflow)
    name, iin = data.get("child_name"), data.get("child_iin")
    return {
        "case_number": instance.business_key,
        "child_name": str(name)[:200] if isinstance(name, str) else None,
        "child_iin": iin if isinstance(iin, str) and len(iin) == 12 else None,
    }


def instance_view(session: Session, instance: ProcessInstance) -> InstanceView:
    version = load_version(session, instance.process_version_id)
    ready = session.scalars(
        select(HumanTask)
        .where(HumanTask.instance_id == instance.id, HumanTask.status == "ready")
        .order_by(HumanTask.id)
    ).all()
    incident = None
    if instance.status == "error":
        incident = session.scalars(
            select(Incident)
            .where(Incident.instance_id == instance.id, Incident.resolved_at.is_(None))
            .order_by(Incident.id.desc())
            .limit(1)
        ).first()
    return InstanceView.of(instance, version, list(ready), incident)
