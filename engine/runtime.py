"""The shape every command shares: lock, load, act, step, save, keep the inbox in step, audit.

Each public service in ``tasks.py`` and ``instances.py`` runs inside the caller's
transaction and uses a ``Unit`` from here:

1. ``Unit.open`` (or ``open_for_task``) reads the instance row, and for a task the case's
   open inbox rows (``SELECT … FOR UPDATE`` on PostgreSQL); these and the writes below are
   SQLAlchemy Core statements compiled once per dialect and run on the driver's cursor
   (engine/prepared.py); when the command needs it, ``load`` gives the workflow: the one a
   committed command left in memory if the row's state is exactly what it saved, else
   restored against the cached spec of its version;
2. the command acts on the workflow (complete a task, deliver a message, …);
3. ``Unit.save`` serializes the state, recomputes status, next timer and message
   subscriptions, brings ``human_task`` rows in line with the READY manual tasks and appends
   the audit events, one statement per table. The instance UPDATE goes first and carries
   ``WHERE revision = <read>``: when another writer got there first nothing is written and
   ``Conflict`` is raised, so the caller rolls the whole transaction back.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import bindparam, event, insert, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from engine import audit
from engine.calendar import WorkingCalendar
from engine.calendar_overrides import load_calendar
from engine.clock import SYSTEM_CLOCK, Clock
from engine.deadlines import deadline_for
from engine.errors import Conflict, InvalidTransition, NotFound
from engine.identity import Actor
from engine.models import (
    TASK_IS_OPEN,
    AuditEvent,
    HumanTask,
    Incident,
    MessageSubscription,
    ProcessInstance,
    ProcessVersion,
)
from engine.prepared import Prepared
from engine.spiff import workflow as spiff
from engine.views import InstanceView

ACTIVE = frozenset({"running", "waiting"})
ENDED = frozenset({"completed", "terminated"})


@dataclass(frozen=True)
class VersionInfo:
    """What running a process version needs, read once per process and shared.

    Versions never change after deployment, so one snapshot per (id, content hash) serves
    every command in this process. Its dictionaries are shared: read them, never change
    them.
    """

    id: int
    process_key: str
    version: int
    name: str
    content_hash: str
    forms: Mapping[str, Any]
    deadline_rules: Mapping[str, Any]
    starter_roles: tuple[str, ...]
    properties: Mapping[str, Any]
    deployed_at: datetime
    specs: tuple[Any, dict[str, Any]]


class _VersionCache:
    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._items: OrderedDict[tuple[int, str], VersionInfo] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[int, str]) -> VersionInfo | None:
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
            return hit

    def put(self, info: VersionInfo) -> None:
        with self._lock:
            self._items[(info.id, info.content_hash)] = info
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


VERSIONS = _VersionCache()


def load_version(session: Session, version_id: int, content_hash: str | None = None) -> VersionInfo:
    """The version's snapshot: from the cache when ``content_hash`` (read with the instance)
    matches one, else from the database. Keyed by content as well as id, since two databases
    (or a restored one) may reuse ids."""
    if content_hash is not None:
        hit = VERSIONS.get((version_id, content_hash))
        if hit is not None:
            return hit
    row = session.get(ProcessVersion, version_id)
    if row is None:
        raise NotFound(f"process version {version_id} does not exist")
    hit = VERSIONS.get((row.id, row.content_hash))
    if hit is not None:
        return hit
    info = VersionInfo(
        id=row.id,
        process_key=row.process_key,
        version=row.version,
        name=row.name,
        content_hash=row.content_hash,
        forms=row.forms or {},
        deadline_rules=row.deadline_rules or {},
        starter_roles=tuple(row.starter_roles or ()),
        properties=row.properties or {},
        deployed_at=row.deployed_at,
        specs=spiff.SPEC_CACHE.get(row.content_hash, lambda: row.spec_json),
    )
    VERSIONS.put(info)
    return info


def specs_of(version: ProcessVersion | VersionInfo) -> tuple[Any, dict[str, Any]]:
    if isinstance(version, VersionInfo):
        return version.specs
    # Keyed by content, not id: two databases (or a restored one) may reuse ids.
    return spiff.SPEC_CACHE.get(version.content_hash, lambda: version.spec_json)


class Record(dict[str, Any]):
    """A row read with SQLAlchemy Core, its columns also as attributes.

    Commands read and write the instance row and its inbox rows without the ORM's
    per-object bookkeeping, which would be most of a step's cost; ``Unit.save`` writes each
    table back in one statement.
    """

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value


class _WarmWorkflows:
    """Workflows of recently changed cases, kept in memory once their transaction committed,
    so that the next command on a case skips deserializing it.

    An entry is used only when the state it was saved as is exactly the state on the
    instance row just read, so a change by another process, a rolled-back save or a
    restored database can never hand out a stale workflow. Taking an entry removes it: a
    workflow is changed by one command at a time, and a command that fails leaves nothing
    behind.
    """

    _PENDING = "qorgau.warm_workflows"

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._items: OrderedDict[tuple[str, int], tuple[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: tuple[str, int], state_json: str) -> Any:
        with self._lock:
            found = self._items.pop(key, None)
        if found is None or found[0] != state_json:
            return None
        return found[1]

    def keep_after_commit(
        self, session: Session, key: tuple[str, int], state_json: str, workflow: Any
    ) -> None:
        session.info.setdefault(self._PENDING, {})[key] = (state_json, workflow)

    def publish(self, session: Session) -> None:
        pending = session.info.pop(self._PENDING, None)
        if not pending:
            return
        with self._lock:
            for key, entry in pending.items():
                self._items[key] = entry
                self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def discard(self, session: Session) -> None:
        session.info.pop(self._PENDING, None)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


WARM = _WarmWorkflows()
event.listen(Session, "after_commit", WARM.publish)
event.listen(Session, "after_rollback", WARM.discard)
event.listen(Session, "after_soft_rollback", lambda session, _previous: WARM.discard(session))

INSTANCES = ProcessInstance.__table__
TASKS = HumanTask.__table__
VERSIONS_TABLE = ProcessVersion.__table__

# The columns a command may change on an instance row (``revision`` is moved by the save)
# and on an existing inbox row.
_INSTANCE_MUTABLE = (
    "process_version_id",
    "status",
    "state_json",
    "serializer_version",
    "next_timer_at",
    "updated_at",
    "ended_at",
    "audit_seq",
    "audit_head",
    "waiting_messages",
)
_TASK_MUTABLE = ("assignee_id", "claimed_at", "status", "completed_at", "completed_by_id")

_SELECT_INSTANCE = select(INSTANCES, VERSIONS_TABLE.c.content_hash).join(
    VERSIONS_TABLE, VERSIONS_TABLE.c.id == INSTANCES.c.process_version_id
)
# Reads lock the instance row on PostgreSQL (SQLite renders no FOR UPDATE: its writers are
# serialized by the database lock, and the revision check catches a stale read).
_BY_ID = Prepared(
    _SELECT_INSTANCE.where(INSTANCES.c.id == bindparam("instance_id")).with_for_update(of=INSTANCES)
)
_OF_TASK = Prepared(
    _SELECT_INSTANCE.where(
        INSTANCES.c.id
        == select(TASKS.c.instance_id).where(TASKS.c.id == bindparam("task_id")).scalar_subquery()
    ).with_for_update(of=INSTANCES)
)
_SELECT_OPEN_AND_TASK = Prepared(
    select(TASKS).where(
        TASKS.c.instance_id == bindparam("instance_id"),
        or_(TASK_IS_OPEN, TASKS.c.id == bindparam("task_id")),
    )
)
_SELECT_OPEN = Prepared(
    select(TASKS).where(TASKS.c.instance_id == bindparam("instance_id"), TASK_IS_OPEN)
)
# Mutable columns with an index: SQLite rewrites the index entry of every column an UPDATE
# sets, changed or not (two of the ~20 pages a step writes), so they are set only on change.
_INSTANCE_INDEXED = ("process_version_id", "status", "next_timer_at")
_INSTANCE_ALWAYS = tuple(c for c in _INSTANCE_MUTABLE if c not in _INSTANCE_INDEXED)


@cache
def _update_instance(changed: frozenset[str]) -> Prepared:
    """The instance UPDATE setting the always-written columns and the ``changed`` indexed
    ones, with the revision check: a writer that lost the race updates nothing."""
    columns = _INSTANCE_ALWAYS + tuple(c for c in _INSTANCE_INDEXED if c in changed)
    return Prepared(
        update(INSTANCES)
        .where(INSTANCES.c.id == bindparam("_id"), INSTANCES.c.revision == bindparam("_read"))
        .values(revision=bindparam("_next"), **{c: bindparam(f"_{c}") for c in columns})
    )


_INSTANCE_COLUMNS = tuple(c.name for c in INSTANCES.columns if c.name != "id")
_INSERT_INSTANCE = Prepared(insert(INSTANCES).returning(INSTANCES.c.id), _INSTANCE_COLUMNS)
_UPDATE_TASK = Prepared(
    update(TASKS)
    .where(TASKS.c.id == bindparam("_id"))
    .values({c: bindparam(f"_{c}") for c in _TASK_MUTABLE})
)
_TASK_COLUMNS = tuple(c.name for c in TASKS.columns if c.name != "id")
_INSERT_TASK = Prepared(insert(TASKS).returning(TASKS.c.id), _TASK_COLUMNS)
_INSERT_AUDIT = Prepared(insert(AuditEvent.__table__), audit.EVENT_COLUMNS)


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
    # The instance row (a ``Record``), changed in place by commands and written by ``save``.
    instance: Record
    version: ProcessVersion | VersionInfo
    _workflow: Any = None
    events: list[audit.PendingEvent] = field(default_factory=list)
    # guid -> user id of tasks this command completed (so their rows say "completed").
    completed: dict[str, int | None] = field(default_factory=dict)
    # Set when a step of this command failed: the case is in error even if SpiffWorkflow
    # left no task in its ERROR state (a bad timer value fails outside any task's run).
    failed: bool = False
    # Open inbox rows of the case when already read (``open_for_task``), by id.
    _open_rows: dict[int, Record] | None = None
    # Inbox rows changed or created by this command, written after the revision-checked
    # UPDATE (see ``save``).
    _changed_rows: dict[int, Record] = field(default_factory=dict)
    _new_tasks: list[Record] = field(default_factory=list)
    now: datetime = field(init=False)
    _calendar: WorkingCalendar | None = field(init=False, default=None)
    # The indexed columns of the instance row as read (see _update_instance).
    _indexed: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        self.now = self.clock.now()
        self._indexed = {c: self.instance[c] for c in _INSTANCE_INDEXED}

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
        unit = cls._open_where(
            session, _BY_ID, {"instance_id": instance_id}, actor, clock, expected_revision
        )
        if unit is None:
            raise NotFound(f"process instance {instance_id} does not exist")
        if load:
            unit.load()
        return unit

    @classmethod
    def for_new_instance(
        cls,
        session: Session,
        actor: Actor,
        clock: Clock,
        instance: dict[str, Any],
        version: ProcessVersion | VersionInfo,
        workflow: Any,
    ) -> Unit:
        """The unit of a case being started: inserts its row (the id names the audit
        chain); its workflow is new and it has no inbox rows yet."""
        row = Record(
            {c.name: None for c in INSTANCES.columns if c.name != "id"},
            revision=1,
            audit_seq=0,
            audit_head="",
            waiting_messages=[],
        )
        row.update(instance)
        session.flush()  # anything the caller added first (a case row) goes before
        row["id"] = _INSERT_INSTANCE.returning(session.connection(), row)["id"]
        return cls(session, actor, clock, row, version, workflow, _open_rows={})

    @classmethod
    def open_for_task(
        cls,
        session: Session,
        task_id: int,
        *,
        actor: Actor,
        clock: Clock | None = None,
        expected_revision: int | None = None,
    ) -> tuple[Unit, Record]:
        """Open the case of a task, and read that task with the case's open inbox rows in
        one statement (after the row lock on PostgreSQL, so they are as the last writer
        left them)."""
        unit = cls._open_where(
            session, _OF_TASK, {"task_id": task_id}, actor, clock, expected_revision
        )
        if unit is None:
            raise NotFound(f"task {task_id} does not exist", task_id=task_id)
        rows = _SELECT_OPEN_AND_TASK.rows(
            session.connection(), {"instance_id": unit.instance.id, "task_id": task_id}
        )
        unit._open_rows = {}
        task = None
        for found in rows:
            row = Record(found)
            if row.status == "ready":
                unit._open_rows[row.id] = row
            if row.id == task_id:
                task = row
        if task is None:  # removed between the two reads; nothing to work on
            raise NotFound(f"task {task_id} does not exist", task_id=task_id)
        return unit, task

    @classmethod
    def _open_where(
        cls,
        session: Session,
        stmt: Prepared,
        params: dict[str, Any],
        actor: Actor,
        clock: Clock | None,
        expected_revision: int | None,
    ) -> Unit | None:
        session.flush()  # what the caller changed through the ORM is visible to Core reads
        found = stmt.one_or_none(session.connection(), params)
        if found is None:
            return None
        instance = Record(found)
        content_hash = instance.pop("content_hash")
        if expected_revision is not None and instance.revision != expected_revision:
            raise Conflict(
                f"case {instance.id} was changed by someone else since you opened it "
                f"(revision {expected_revision}, now {instance.revision}); reload it",
                instance_id=instance.id,
            )
        version = load_version(session, instance.process_version_id, content_hash)
        return cls(session, actor, clock or SYSTEM_CLOCK, instance, version)

    def load(self) -> Any:
        """Restore the workflow (once): commands that only touch inbox rows never need it."""
        if self._workflow is None:
            kept = WARM.take(self._warm_key(), self.instance.state_json)
            if kept is not None:
                self._workflow = spiff.reattach(kept, clock=self.clock)
            else:
                spec, subprocess_specs = specs_of(self.version)
                self._workflow = spiff.load_workflow(
                    self.instance.state_json, spec, subprocess_specs, clock=self.clock
                )
        return self._workflow

    def _warm_key(self) -> tuple[str, int]:
        return (self.version.content_hash, self.instance.id)

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
        if wf is not None:
            instance.state_json = spiff.save_workflow(wf)
            instance.serializer_version = spiff.SERIALIZER_VERSION
            seen = spiff.snapshot(wf)
            instance.next_timer_at = seen.next_timer_at
            self._derive_status(seen)
            if instance.status in ENDED:
                instance.next_timer_at = None
            self._sync_tasks(seen)
            self._sync_messages()
        instance.updated_at = self.now
        audit_rows = audit.instance_event_rows(instance, self.actor, self.events, self.now)
        self.events = []
        connection = self.session.connection()
        # The instance UPDATE carries the revision check and goes first: a writer that lost
        # the race stops here, before it writes anything else.
        changed = frozenset(c for c in _INSTANCE_INDEXED if instance[c] != self._indexed[c])
        written = _update_instance(changed).execute(
            connection,
            {
                "_id": instance.id,
                "_read": instance.revision,
                "_next": instance.revision + 1,
                **{f"_{c}": instance[c] for c in _INSTANCE_MUTABLE},
            },
        )
        if written != 1:
            raise Conflict(
                f"case {instance.id} was changed by someone else at the same time; reload it",
                instance_id=instance.id,
            )
        instance.revision += 1
        self._indexed = {c: instance[c] for c in _INSTANCE_INDEXED}
        self._forget_loaded(ProcessInstance, [instance.id])
        if wf is not None:
            WARM.keep_after_commit(self.session, self._warm_key(), instance.state_json, wf)
        # Rows changed through the ORM (a claim, an incident, a message subscription).
        self.session.flush()
        if self._changed_rows:
            _UPDATE_TASK.execute_many(
                connection,
                [
                    {"_id": row_id, **{f"_{c}": row[c] for c in _TASK_MUTABLE}}
                    for row_id, row in self._changed_rows.items()
                ],
            )
            self._forget_loaded(HumanTask, self._changed_rows)
            self._changed_rows = {}
        if self._new_tasks:
            for row in self._new_tasks:
                row["id"] = _INSERT_TASK.returning(connection, row)["id"]
                if self._open_rows is not None:
                    self._open_rows[row.id] = row
            self._new_tasks = []
        if audit_rows:
            _INSERT_AUDIT.execute_many(connection, audit_rows)

    def _forget_loaded(self, model: type, ids: Iterable[int]) -> None:
        """Expire ORM copies of rows just written with Core, so that a later read in this
        session sees the new values."""
        if not self.session.identity_map:
            return
        for row_id in ids:
            loaded = self.session.identity_map.get(identity_key(model, row_id))
            if loaded is not None:
                self.session.expire(loaded)

    def _derive_status(self, seen: spiff.Snapshot) -> None:
        instance = self.instance
        if instance.status in {"suspended", "terminated"}:
            return
        if self.failed or seen.failed:
            instance.status = "error"
        elif seen.completed:
            if instance.status != "completed":
                instance.status = "completed"
                instance.ended_at = self.now
                self.event("process.completed", {})
        elif seen.ready_manual:
            instance.status = "running"
        else:
            instance.status = "waiting"

    def _sync_tasks(self, seen: spiff.Snapshot) -> None:
        """Make the open ``human_task`` rows equal the workflow's READY manual tasks."""
        instance = self.instance
        ready = [] if instance.status in ENDED else seen.ready_manual
        ready_by_guid = {t.guid: t for t in ready}
        open_rows = self.open_rows()
        known = set()
        for row in list(open_rows.values()):
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
            self._changed_rows[row.id] = row
            del open_rows[row.id]
        data = seen.data() if ready else {}
        case_fields = _case_fields(instance, data) if ready else {}
        new_rows = []
        for task in ready:
            if task.guid in known:
                continue
            rule = task.properties.get("deadlineRule") or None
            deadline = (
                deadline_for(
                    self.version.deadline_rules or {},
                    rule,
                    self.now,
                    self.calendar,
                    case_started=instance.started_at,
                    data=data,
                )
                if rule
                else None
            )
            row = Record(
                instance_id=instance.id,
                task_guid=task.guid,
                bpmn_id=task.bpmn_id,
                name=task.name,
                process_key=instance.process_key,
                role=role_of(task, self.version),
                district_id=instance.district_id,
                assignee_id=None,
                status="ready",
                form_key=task.properties.get("formKey") or None,
                deadline_rule=rule,
                due_at=deadline.due_at if deadline else None,
                deadline_basis=deadline.basis if deadline else None,
                calendar_version=deadline.calendar_version if deadline else None,
                reminded_at=None,
                overdue_at=None,
                escalated_at=None,
                created_at=self.now,
                claimed_at=None,
                completed_at=None,
                completed_by_id=None,
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
                    "term_start": deadline.starts_at if deadline else None,
                },
                task.guid,
            )
        self._new_tasks.extend(new_rows)

    def open_rows(self) -> dict[int, Record]:
        """The case's open inbox rows by id, read once per command."""
        if self._open_rows is None:
            found = _SELECT_OPEN.rows(self.session.connection(), {"instance_id": self.instance.id})
            self._open_rows = {r["id"]: Record(r) for r in found}
        return self._open_rows

    def view(self) -> InstanceView:
        """The case as this command left it, without reading it back (call after ``save``)."""
        incident = None
        if self.instance.status == "error":
            incident = _open_incident(self.session, self.instance.id)
        ready = [row for _, row in sorted(self.open_rows().items())]
        return InstanceView.of(self.instance, self.version, ready, incident)

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


def _case_fields(instance: Record, data: dict[str, Any]) -> dict[str, str | None]:
    """What the inbox searches by: the case number (business key) and, by convention,
    the process variables ``child_name`` and ``child_iin`` where a procedure has them."""
    name, iin = data.get("child_name"), data.get("child_iin")
    return {
        "case_number": instance.business_key,
        "child_name": str(name)[:200] if isinstance(name, str) else None,
        "child_iin": iin if isinstance(iin, str) and len(iin) == 12 else None,
    }


def _open_incident(session: Session, instance_id: int) -> Incident | None:
    return session.scalars(
        select(Incident)
        .where(Incident.instance_id == instance_id, Incident.resolved_at.is_(None))
        .order_by(Incident.id.desc())
        .limit(1)
    ).first()


def instance_view(session: Session, instance: ProcessInstance) -> InstanceView:
    version = load_version(session, instance.process_version_id)
    ready = session.scalars(
        select(HumanTask)
        .where(HumanTask.instance_id == instance.id, TASK_IS_OPEN)
        .order_by(HumanTask.id)
    ).all()
    incident = _open_incident(session, instance.id) if instance.status == "error" else None
    return InstanceView.of(instance, version, list(ready), incident)
