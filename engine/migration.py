"""Moving running cases to a newer version of their process: one audited admin action.

Deploying never touches running cases: each keeps the version it started on. When the law
changes mid-case, an administrator may move selected cases to a newer version of the same
process. A case moves only when every task its state holds (every active task, READY or
WAITING, also inside subprocesses, and the few finished tasks compaction keeps) exists in the
target version; otherwise the answer names the tasks that do not, and the case stays.

``migrate_instances(..., dry_run=True)`` changes nothing and says what would move and what
is blocked; the real run moves the movable cases in the caller's transaction, appends a
``process.migrated`` event to each case's audit chain and one ``instances.migrated`` event to
the system chain. Open inbox rows keep their task (same guid) and take the target's form,
role and deadline rule names; their due dates stay, because a term already running is
counted under the rule it started with (as a deployment pins rules for a running case).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import audit
from engine.clock import SYSTEM_CLOCK, Clock
from engine.errors import Forbidden, NotFound, ValidationFailed
from engine.identity import Actor
from engine.models import TASK_IS_OPEN, HumanTask, ProcessInstance, ProcessVersion
from engine.runtime import Unit, load_version, role_of, specs_of
from engine.spiff import migration as spiff_migration
from engine.spiff import workflow as spiff

MIGRATABLE = frozenset({"running", "waiting", "suspended"})
MIGRATING_ROLES = frozenset({"admin"})


@dataclass(frozen=True)
class MigrationItem:
    """What happens (or would happen) to one case."""

    instance_id: int
    business_key: str | None
    from_version: int | None
    to_version: int
    movable: bool
    # Why it cannot move: each task missing from the target, or the case's state.
    reasons: tuple[str, ...] = ()
    # BPMN ids of its active tasks.
    active: tuple[str, ...] = ()


@dataclass(frozen=True)
class MigrationResult:
    process_key: str
    target_version: int
    dry_run: bool
    moved: tuple[MigrationItem, ...] = field(default_factory=tuple)
    blocked: tuple[MigrationItem, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class CaseChoice:
    """A case an administrator may choose to migrate."""

    instance_id: int
    business_key: str | None
    version: int
    status: str


@dataclass(frozen=True)
class VersionChoice:
    id: int
    version: int


def migration_choices(
    session: Session, *, process_key: str
) -> tuple[list[VersionChoice], list[CaseChoice]]:
    """The versions of a process (newest first) and its cases that could be moved.

    Raises:
        NotFound: no version of ``process_key`` is deployed.
    """
    versions = session.execute(
        select(ProcessVersion.id, ProcessVersion.version)
        .where(ProcessVersion.process_key == process_key)
        .order_by(ProcessVersion.version.desc())
    ).all()
    if not versions:
        raise NotFound(f"no process {process_key!r} is deployed", process_key=process_key)
    number = {row.id: row.version for row in versions}
    cases = session.execute(
        select(
            ProcessInstance.id,
            ProcessInstance.business_key,
            ProcessInstance.process_version_id,
            ProcessInstance.status,
        )
        .where(
            ProcessInstance.process_key == process_key,
            ProcessInstance.status.in_(sorted(MIGRATABLE)),
        )
        .order_by(ProcessInstance.id)
    ).all()
    return (
        [VersionChoice(row.id, row.version) for row in versions],
        [CaseChoice(c.id, c.business_key, number[c.process_version_id], c.status) for c in cases],
    )


def _require_migrator(actor: Actor) -> None:
    if not (actor.is_system or actor.roles & MIGRATING_ROLES):
        raise Forbidden(f"{actor.username} may not migrate cases: it is an administrator's action")


def migrate_instances(
    session: Session,
    *,
    instance_ids: Iterable[int],
    target_version_id: int,
    actor: Actor,
    dry_run: bool,
    clock: Clock | None = None,
) -> MigrationResult:
    """Move the cases ``instance_ids`` to the process version ``target_version_id``.

    Args:
        session: The caller's unit of work (nothing is committed here).
        instance_ids: The cases chosen by the administrator.
        target_version_id: A newer version of the cases' own process.
        actor: An administrator (or the system).
        dry_run: Only say what would move and what is blocked; change nothing.
        clock: Time of the audit events.

    Returns:
        The moved (or movable, in a dry run) and the blocked cases, each with its reasons.

    Raises:
        Forbidden: the actor is not an administrator.
        NotFound: the target version or a case does not exist.
        ValidationFailed: a case belongs to another process, or no case was chosen.
    """
    _require_migrator(actor)
    clock = clock or SYSTEM_CLOCK
    ids = sorted(set(instance_ids))
    if not ids:
        raise ValidationFailed("choose at least one case to migrate")
    target = load_version(session, target_version_id)
    target_spec, target_subprocesses = specs_of(target)

    moved: list[MigrationItem] = []
    blocked: list[MigrationItem] = []
    for instance_id in ids:
        item = _plan(session, instance_id, target, target_spec, target_subprocesses)
        if not item.movable:
            blocked.append(item)
            continue
        if not dry_run:
            _move(session, instance_id, target, actor, clock)
        moved.append(item)

    if not dry_run and moved:
        audit.append_system_event(
            session,
            actor,
            "instances.migrated",
            {
                "process_key": target.process_key,
                "to_version": target.version,
                "moved": [i.instance_id for i in moved],
                "blocked": {str(i.instance_id): list(i.reasons) for i in blocked},
            },
            clock.now(),
        )
    return MigrationResult(
        process_key=target.process_key,
        target_version=target.version,
        dry_run=dry_run,
        moved=tuple(moved),
        blocked=tuple(blocked),
    )


def _plan(
    session: Session,
    instance_id: int,
    target: ProcessVersion,
    target_spec: object,
    target_subprocesses: dict[str, object],
) -> MigrationItem:
    instance = session.get(ProcessInstance, instance_id)
    if instance is None:
        raise NotFound(f"process instance {instance_id} does not exist")
    if instance.process_key != target.process_key:
        raise ValidationFailed(
            f"case {instance_id} runs {instance.process_key}, not {target.process_key}"
        )
    source = load_version(session, instance.process_version_id)

    def item(movable: bool, reasons: list[str], active: tuple[str, ...] = ()) -> MigrationItem:
        return MigrationItem(
            instance_id=instance_id,
            business_key=instance.business_key,
            from_version=source.version,
            to_version=target.version,
            movable=movable,
            reasons=tuple(reasons),
            active=active,
        )

    if instance.status not in MIGRATABLE:
        return item(False, [f"the case is {instance.status}"])
    if source.version >= target.version:
        return item(False, [f"the case is already on version {source.version}"])
    spec, subprocesses = specs_of(source)
    tasks = spiff_migration.state_tasks(instance.state_json, spec, subprocesses)
    active = tuple(sorted({t.bpmn_id or t.spec_name for t in tasks if t.active}))
    missing = spiff_migration.missing_in(tasks, target_spec, target_subprocesses)
    return item(not missing, [str(m) for m in missing], active)


def _move(
    session: Session, instance_id: int, target: ProcessVersion, actor: Actor, clock: Clock
) -> None:
    # Through the runtime's Unit: row lock on PostgreSQL, the revision check and the audit
    # chain of the case work exactly as for any other command.
    unit = Unit.open(session, instance_id, actor=actor, clock=clock, load=False)
    source = unit.version
    target_spec, target_subprocesses = specs_of(target)
    state = spiff_migration.rebase_state(
        unit.instance.state_json, *specs_of(source), target_spec, target_subprocesses
    )
    unit.instance.process_version_id = target.id
    unit.version = target
    # Restored with the engine's own loader (restricted script engine attached), so the save
    # below writes, compacts and re-derives timers exactly as after any command.
    unit.workflow = spiff.load_workflow(state, target_spec, target_subprocesses, clock=clock)
    _retarget_inbox(session, unit)
    unit.event(
        "process.migrated",
        {
            "process_key": target.process_key,
            "from_version": source.version,
            "to_version": target.version,
            "from_version_id": source.id,
            "to_version_id": target.id,
        },
    )
    unit.save()


def _retarget_inbox(session: Session, unit: Unit) -> None:
    """Open inbox rows take the target's form, role and deadline rule of their task."""
    infos = {t.guid: t for t in spiff.ready_manual_tasks(unit.workflow)}
    rows = session.scalars(
        select(HumanTask).where(HumanTask.instance_id == unit.instance.id, TASK_IS_OPEN)
    ).all()
    for row in rows:
        info = infos.get(row.task_guid)
        if info is None:
            continue
        row.name = info.name
        row.role = role_of(info, unit.version)
        row.form_key = info.properties.get("formKey") or None
        row.deadline_rule = info.properties.get("deadlineRule") or None
