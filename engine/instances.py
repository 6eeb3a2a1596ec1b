"""Services on process instances: start, messages, timers, suspend/resume/terminate, incidents."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from engine import forms
from engine.clock import SYSTEM_CLOCK, Clock
from engine.db import is_postgres
from engine.errors import Conflict, Forbidden, InvalidTransition, NotFound
from engine.identity import SYSTEM, Actor
from engine.models import Incident, MessageSubscription, ProcessInstance, ProcessVersion
from engine.prepared import Prepared
from engine.runtime import ACTIVE, Unit, VersionInfo, instance_view, load_version, specs_of
from engine.spiff import workflow as spiff
from engine.views import InstanceView

ADMIN_ROLES = frozenset({"admin", "head", "deputy_head"})


_LATEST = Prepared(
    select(ProcessVersion.id, ProcessVersion.content_hash)
    .where(ProcessVersion.process_key == bindparam("process_key"))
    .order_by(ProcessVersion.version.desc())
    .limit(1)
)


def latest_version(session: Session, process_key: str) -> VersionInfo:
    found = _LATEST.one_or_none(session.connection(), {"process_key": process_key})
    if found is None:
        raise NotFound(f"no process {process_key!r} is deployed", process_key=process_key)
    return load_version(session, found["id"], found["content_hash"])


def may_start(actor: Actor, version: ProcessVersion | VersionInfo) -> bool:
    starters = set(version.starter_roles or ())
    return actor.is_system or not starters or bool(starters & actor.roles)


def start_process(
    session: Session,
    *,
    process_key: str,
    actor: Actor,
    data: dict[str, Any] | None = None,
    business_key: str | None = None,
    district_id: int | None = None,
    case_id: int | None = None,
    clock: Clock | None = None,
) -> InstanceView:
    """Start the latest version of a process and run it to its first wait state.

    The start data is checked against the process's start form (process property
    ``startForm``); without one, a process starts with no data.
    """
    clock = clock or SYSTEM_CLOCK
    version = latest_version(session, process_key)
    if not may_start(actor, version):
        raise Forbidden(
            f"{actor.username} may not start {process_key}: it is started by "
            + ", ".join(sorted(version.starter_roles))
        )
    start_form = (version.properties or {}).get("startForm")
    schema = (version.forms or {}).get(start_form) if start_form else None
    clean = forms.validate_submission(start_form, schema, data or {})

    now = clock.now()
    spec, subprocess_specs = specs_of(version)
    workflow = spiff.new_workflow(spec, subprocess_specs, clean, clock=clock)
    unit = Unit.for_new_instance(
        session,
        actor,
        clock,
        {
            "process_version_id": version.id,
            "process_key": version.process_key,
            "business_key": business_key,
            "case_id": case_id,
            "district_id": district_id if district_id is not None else actor.district_id,
            "status": "running",
            "state_json": "",
            "serializer_version": spiff.SERIALIZER_VERSION,
            "started_by_id": actor.user_id,
            "started_at": now,
            "updated_at": now,
        },
        version,
        workflow,
    )
    unit.now = now
    unit.event(
        "process.started",
        {"process_key": version.process_key, "version": version.version, "data": clean},
    )
    unit.apply(lambda: spiff.run_engine(workflow))
    unit.save()
    return unit.view()


def get_instance(session: Session, *, instance_id: int) -> InstanceView:
    instance = session.get(ProcessInstance, instance_id)
    if instance is None:
        raise NotFound(f"process instance {instance_id} does not exist")
    return instance_view(session, instance)


def instance_data(session: Session, *, instance_id: int) -> dict[str, Any]:
    """The current data of a case as the process sees it (for case pages and tests)."""
    instance = session.get(ProcessInstance, instance_id)
    if instance is None:
        raise NotFound(f"process instance {instance_id} does not exist")
    spec, subprocess_specs = specs_of(load_version(session, instance.process_version_id))
    return spiff.workflow_data(spiff.load_workflow(instance.state_json, spec, subprocess_specs))


def _require_admin(actor: Actor, doing: str) -> None:
    if not (actor.is_system or actor.roles & ADMIN_ROLES):
        raise Forbidden(f"{actor.username} may not {doing}")


def suspend(
    session: Session, *, instance_id: int, actor: Actor, reason: str, clock: Clock | None = None
) -> InstanceView:
    """Stop a case from moving: no task can be completed, no timer fires, until resumed."""
    _require_admin(actor, "suspend cases")
    unit = Unit.open(session, instance_id, actor=actor, clock=clock, load=False)
    unit.require_status(ACTIVE | {"error"}, "suspend")
    unit.instance.status = "suspended"
    unit.event("process.suspended", {"reason": reason})
    unit.save()
    return instance_view(session, unit.instance)


def resume(
    session: Session, *, instance_id: int, actor: Actor, clock: Clock | None = None
) -> InstanceView:
    _require_admin(actor, "resume cases")
    unit = Unit.open(session, instance_id, actor=actor, clock=clock, load=True)
    unit.require_status(frozenset({"suspended"}), "resume")
    unit.instance.status = "running"
    unit.event("process.resumed", {})
    # Timers that came due while suspended fire now.
    unit.apply(lambda: spiff.run_engine(unit.workflow))
    unit.save()
    return instance_view(session, unit.instance)


def terminate(
    session: Session, *, instance_id: int, actor: Actor, reason: str, clock: Clock | None = None
) -> InstanceView:
    """End a case for good: its open tasks are cancelled, its timers and messages dropped."""
    _require_admin(actor, "terminate cases")
    unit = Unit.open(session, instance_id, actor=actor, clock=clock, load=True)
    unit.require_status(ACTIVE | {"error", "suspended"}, "terminate")
    spiff.cancel(unit.workflow)
    unit.instance.status = "terminated"
    unit.instance.ended_at = unit.now
    closed = _close_incidents(session, unit)
    unit.event("process.terminated", {"reason": reason, "incidents_closed": closed})
    unit.save()
    return instance_view(session, unit.instance)


def _close_incidents(session: Session, unit: Unit) -> list[int]:
    open_incidents = session.scalars(
        select(Incident).where(
            Incident.instance_id == unit.instance.id, Incident.resolved_at.is_(None)
        )
    ).all()
    for incident in open_incidents:
        incident.resolved_at = unit.now
        incident.resolved_by_id = unit.actor.user_id
    return [i.id for i in open_incidents]


def retry_incident(
    session: Session, *, instance_id: int, actor: Actor, clock: Clock | None = None
) -> InstanceView:
    """Run the failed step again (after the cause was fixed, e.g. by a migration).

    When it fails again, a new incident records the new failure.
    """
    _require_admin(actor, "retry incidents")
    unit = Unit.open(session, instance_id, actor=actor, clock=clock, load=True)
    unit.require_status(frozenset({"error"}), "retry")
    closed = _close_incidents(session, unit)
    unit.instance.status = "running"
    unit.event("incident.retried", {"incidents": closed})
    unit.apply(lambda: spiff.retry_failed(unit.workflow))
    unit.save()
    return instance_view(session, unit.instance)


def correlate_message(
    session: Session,
    *,
    message_name: str,
    business_key: str | None,
    payload: Any,
    actor: Actor = SYSTEM,
    clock: Clock | None = None,
) -> InstanceView:
    """Deliver a message to the one instance waiting for it under ``business_key``."""
    stmt = select(MessageSubscription.instance_id).where(
        MessageSubscription.message_name == message_name
    )
    stmt = stmt.where(
        MessageSubscription.business_key.is_(None)
        if business_key is None
        else MessageSubscription.business_key == business_key
    )
    matches = sorted(set(session.scalars(stmt)))
    if not matches:
        raise NotFound(
            f"no case waits for message {message_name!r} with business key {business_key!r}"
        )
    if len(matches) > 1:
        raise Conflict(
            f"{len(matches)} cases wait for message {message_name!r} with business key "
            f"{business_key!r}; a message must identify exactly one case",
            instances=matches,
        )
    unit = Unit.open(session, matches[0], actor=actor, clock=clock, load=True)
    unit.require_status(ACTIVE, f"deliver message {message_name}")
    unit.event("message.correlated", {"message": message_name, "payload": payload})
    try:
        unit.apply(lambda: spiff.deliver_message(unit.workflow, message_name, payload))
    except LookupError as exc:
        raise InvalidTransition(str(exc)) from exc
    unit.save()
    return instance_view(session, unit.instance)


def due_timer_instances(
    session: Session, *, now: datetime, limit: int = 100, exclude: Collection[int] = ()
) -> list[int]:
    """Instances whose next timer is due, oldest first.

    On PostgreSQL the rows are also claimed: locked with ``FOR UPDATE SKIP LOCKED`` until the
    caller's transaction ends, so that several workers each take different instances. The
    lock is the claim and lives exactly as long as the transaction: a worker that dies drops
    it with its connection, and its instances stay due for the next worker. On SQLite, which
    has one writer at a time, the revision check in ``Unit.save`` settles a race instead,
    and ``fire_timers`` does nothing for an instance that another worker already fired.
    """
    stmt = (
        select(ProcessInstance.id)
        .where(
            ProcessInstance.next_timer_at.is_not(None),
            ProcessInstance.next_timer_at <= now,
            ProcessInstance.status.in_(sorted(ACTIVE)),
        )
        .order_by(ProcessInstance.next_timer_at, ProcessInstance.id)
        .limit(limit)
    )
    if exclude:
        stmt = stmt.where(ProcessInstance.id.not_in(sorted(exclude)))
    if is_postgres(session):
        stmt = stmt.with_for_update(skip_locked=True)
    return list(session.scalars(stmt))


def claim_due_timer(session: Session, *, instance_id: int, now: datetime) -> bool:
    """Claim one instance whose timer is still due, for the rest of this transaction.

    On PostgreSQL ``FOR UPDATE SKIP LOCKED``: False when another worker holds it, or when it
    is no longer due (another worker fired it and committed).
    """
    stmt = select(ProcessInstance.id).where(
        ProcessInstance.id == instance_id,
        ProcessInstance.next_timer_at.is_not(None),
        ProcessInstance.next_timer_at <= now,
        ProcessInstance.status.in_(sorted(ACTIVE)),
    )
    if is_postgres(session):
        stmt = stmt.with_for_update(skip_locked=True)
    return session.scalar(stmt) is not None


# Catch-up bound: a cycle timer whose server was down fires its missed cycles one by one,
# at most this many in one command (the rest in the next round).
MAX_TIMER_ROUNDS = 100


def fire_timers(
    session: Session, *, instance_id: int, clock: Clock | None = None, actor: Actor = SYSTEM
) -> InstanceView:
    """Fire the due timers of one instance and run it to its next wait state.

    Nothing happens (no state change, no audit event) when no timer of the instance is due
    by ``clock``: another worker fired it first, or it was moved. A cycle timer that missed
    several cycles fires each of them, in order.
    """
    unit = Unit.open(session, instance_id, actor=actor, clock=clock, load=False)
    before = unit.instance.next_timer_at
    if unit.instance.status not in ACTIVE or before is None or before > unit.now:
        return instance_view(session, unit.instance)
    workflow = unit.load()
    fired = []
    due: datetime | None = before
    for _ in range(MAX_TIMER_ROUNDS):
        if due is None or due > unit.now:
            break
        fired.append(due)
        failure = unit.apply(lambda: spiff.run_engine(workflow))
        if failure is not None:
            break
        after = spiff.next_timer_at(workflow)
        if after == due:
            break  # nothing moved (a timer SpiffWorkflow will not fire): no busy loop
        due = after
    unit.event("timers.fired", {"due_at": before, "rounds": len(fired)})
    unit.save()
    return instance_view(session, unit.instance)
