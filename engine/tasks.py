"""Services on human tasks: claim, release, assign, complete, and the reads around them.

A task moves only through these transitions (source state → target state, who may):

========== ================ ================== ============================================
service    from             to                 who
========== ================ ================== ============================================
claim      ready, unclaimed ready, claimed     a holder of the task's role (and district)
release    ready, claimed   ready, unclaimed   the claimant, or a lead
assign     ready            ready, claimed     a lead; the assignee must hold the role
complete   ready, claimed   completed          the claimant (an unclaimed task is claimed
                                               on the way by a holder of its role)
========== ================ ================== ============================================

``allowed_actions`` answers which of them a user may take on a task right now, so that pages
show exactly the actions the engine would accept.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, or_, select
from sqlalchemy.orm import Session

from engine import forms
from engine.clock import Clock
from engine.db import is_postgres
from engine.errors import (
    Conflict,
    FieldError,
    Forbidden,
    InvalidTransition,
    NotFound,
    ValidationFailed,
)
from engine.identity import Actor
from engine.models import TASK_IS_OPEN, HumanTask, ProcessInstance, ProcessVersion, User
from engine.runtime import ACTIVE, Unit, load_version
from engine.spiff import workflow as spiff
from engine.views import InstanceView, TaskView


def _task_row(session: Session, task_id: int) -> HumanTask:
    row = session.get(HumanTask, task_id, populate_existing=True)
    if row is None:
        raise NotFound(f"task {task_id} does not exist", task_id=task_id)
    return row


def _may_work_on(actor: Actor, row: HumanTask) -> bool:
    if not actor.has_role(row.role):
        return False
    # District-scoped staff see their district; regional staff (no district) see all.
    return (
        row.district_id is None
        or actor.district_id is None
        or (actor.district_id == row.district_id)
    )


def _describe_done(session: Session, row: HumanTask) -> str:
    who = session.get(User, row.completed_by_id) if row.completed_by_id else None
    when = row.completed_at.isoformat(timespec="minutes") if row.completed_at else "?"
    if row.status == "completed":
        by = who.full_name if who else "the system"
        return f"task {row.id} ({row.name}) was already completed by {by} at {when}"
    return f"task {row.id} ({row.name}) is {row.status} since {when}"


def _require_ready(session: Session, row: HumanTask) -> None:
    if row.status != "ready":
        raise InvalidTransition(
            _describe_done(session, row),
            task_id=row.id,
            status=row.status,
            completed_by_id=row.completed_by_id,
            completed_at=row.completed_at,
        )


def _open(
    session: Session,
    row: HumanTask,
    actor: Actor,
    clock: Clock | None,
    expected_revision: int | None,
    load: bool,
) -> Unit:
    unit = Unit.open(
        session,
        row.instance_id,
        actor=actor,
        clock=clock,
        expected_revision=expected_revision,
        load=load,
    )
    if is_postgres(session):
        # We may have waited for the row lock: re-read the task as the winner left it.
        # (SQLite takes no lock here; the revision check at save time catches a race.)
        session.refresh(row)
    _require_ready(session, row)
    unit.require_status(ACTIVE, f"work on task {row.id}")
    return unit


def claim_task(
    session: Session,
    *,
    task_id: int,
    actor: Actor,
    clock: Clock | None = None,
    expected_revision: int | None = None,
) -> TaskView:
    """Take an unclaimed task of one's role into one's own work."""
    row = _task_row(session, task_id)
    if not _may_work_on(actor, row):
        raise Forbidden(f"{actor.username} may not work on tasks of role {row.role}")
    unit = _open(session, row, actor, clock, expected_revision, load=False)
    if row.assignee_id == actor.user_id:
        return TaskView.of(row)
    if row.assignee_id is not None:
        holder = session.get(User, row.assignee_id)
        raise InvalidTransition(
            f"task {row.id} is already claimed by {holder.full_name if holder else '?'}",
            task_id=row.id,
        )
    row.assignee_id, row.claimed_at = actor.user_id, unit.now
    unit.event("task.claimed", {"bpmn_id": row.bpmn_id}, row.task_guid)
    unit.save()
    return TaskView.of(row)


def release_task(
    session: Session,
    *,
    task_id: int,
    actor: Actor,
    clock: Clock | None = None,
    expected_revision: int | None = None,
) -> TaskView:
    """Put a claimed task back in its role's queue."""
    row = _task_row(session, task_id)
    if row.assignee_id is None:
        raise InvalidTransition(f"task {row.id} is not claimed", task_id=row.id)
    if row.assignee_id != actor.user_id and not actor.is_lead:
        raise Forbidden(f"only the claimant or a lead may release task {row.id}")
    unit = _open(session, row, actor, clock, expected_revision, load=False)
    previous = row.assignee_id
    row.assignee_id, row.claimed_at = None, None
    unit.event("task.released", {"bpmn_id": row.bpmn_id, "from_user_id": previous}, row.task_guid)
    unit.save()
    return TaskView.of(row)


def assign_task(
    session: Session,
    *,
    task_id: int,
    actor: Actor,
    assignee: str,
    clock: Clock | None = None,
    expected_revision: int | None = None,
) -> TaskView:
    """A lead hands a task to a colleague who holds its role."""
    row = _task_row(session, task_id)
    if not actor.is_lead:
        raise Forbidden(f"{actor.username} is not a lead and may not assign tasks")
    target = session.scalar(select(User).where(User.username == assignee))
    if target is None or not target.is_active:
        raise ValidationFailed(
            "unknown assignee", [FieldError("assignee", f"no active user {assignee!r}")]
        )
    target_roles = {r.role_code for r in target.roles}
    if row.role not in target_roles:
        raise ValidationFailed(
            "the assignee cannot do this task",
            [FieldError("assignee", f"{assignee} does not hold the role {row.role}")],
        )
    if row.district_id and target.district_id and target.district_id != row.district_id:
        raise ValidationFailed(
            "the assignee cannot do this task",
            [FieldError("assignee", f"{assignee} works in another district")],
        )
    unit = _open(session, row, actor, clock, expected_revision, load=False)
    row.assignee_id, row.claimed_at = target.id, unit.now
    unit.event("task.assigned", {"bpmn_id": row.bpmn_id, "to": target.username}, row.task_guid)
    unit.save()
    return TaskView.of(row)


@dataclass(frozen=True)
class Completion:
    """A completed task and its case as the completion left it (next tasks, status)."""

    task: TaskView
    instance: InstanceView


def complete_task(
    session: Session,
    *,
    task_id: int,
    actor: Actor,
    data: dict[str, Any],
    clock: Clock | None = None,
    expected_revision: int | None = None,
) -> TaskView:
    """Complete a task with its form data and run the process on to its next wait state.

    Raises:
        NotFound, Forbidden: no such task / not this user's task.
        InvalidTransition: the task was completed or cancelled already (says by whom, when).
        ValidationFailed: the data fails the task's form (every bad field named).
        Conflict: someone changed the case at the same moment; nothing was written.
    """
    return complete(
        session,
        task_id=task_id,
        actor=actor,
        data=data,
        clock=clock,
        expected_revision=expected_revision,
    ).task


def complete(
    session: Session,
    *,
    task_id: int,
    actor: Actor,
    data: dict[str, Any],
    clock: Clock | None = None,
    expected_revision: int | None = None,
) -> Completion:
    """``complete_task``, also returning the case as it stands after the step, so that a
    caller showing the next task needs no second read."""
    unit, row = Unit.open_for_task(
        session, task_id, actor=actor, clock=clock, expected_revision=expected_revision
    )
    if row.status == "ready":
        if row.assignee_id is not None and row.assignee_id != actor.user_id:
            holder = session.get(User, row.assignee_id)
            raise Forbidden(
                f"task {row.id} is claimed by {holder.full_name if holder else '?'}; "
                "only the claimant may complete it"
            )
        if not _may_work_on(actor, row):
            raise Forbidden(f"{actor.username} may not work on tasks of role {row.role}")
    else:
        _require_ready(session, row)
    unit.require_status(ACTIVE, f"work on task {row.id}")
    schema = (unit.version.forms or {}).get(row.form_key) if row.form_key else None
    clean = forms.validate_submission(row.form_key, schema, data)
    unit.load()
    task = spiff.find_task(unit.workflow, row.task_guid)
    if task is None or not spiff.is_ready_manual(task):
        # The inbox row said ready but the case has moved on: another writer completed it
        # in the meantime (SQLite reads take no lock). Reload and look again.
        raise Conflict(
            f"task {row.id} was completed or changed by someone else meanwhile; reload it",
            task_id=row.id,
        )
    if row.assignee_id is None:
        row.assignee_id, row.claimed_at = actor.user_id, unit.now
        unit.event("task.claimed", {"bpmn_id": row.bpmn_id}, row.task_guid)
    unit.completed[row.task_guid] = actor.user_id
    unit.event("task.completed", {"bpmn_id": row.bpmn_id, "data": clean}, row.task_guid)
    unit.apply(lambda: spiff.run_task(unit.workflow, task, clean))
    unit.save()
    return Completion(task=TaskView.of(row), instance=unit.view())


# --- reads ------------------------------------------------------------------------------


def _may_see(actor: Actor, row: HumanTask) -> bool:
    return (
        _may_work_on(actor, row)
        or actor.is_lead
        or row.assignee_id == actor.user_id
        or row.completed_by_id == actor.user_id
        or "auditor" in actor.roles
    )


def _visible_row(session: Session, task_id: int, actor: Actor) -> HumanTask:
    row = _task_row(session, task_id)
    if not _may_see(actor, row):
        raise Forbidden(f"{actor.username} may not see task {task_id}")
    return row


def actions_for(actor: Actor, row: HumanTask) -> frozenset[str]:
    """The actions ``actor`` may take now on the task ``row`` (see ``allowed_actions``)."""
    if row.status != "ready":
        return frozenset()
    actions = set()
    mine = row.assignee_id == actor.user_id
    if row.assignee_id is None and _may_work_on(actor, row):
        actions.update({"claim", "complete"})
    if mine:
        actions.add("release")
        # complete_task also requires the role: a claimant who lost it may only release.
        if _may_work_on(actor, row):
            actions.add("complete")
    if row.assignee_id is not None and not mine and actor.is_lead:
        actions.add("release")
    if actor.is_lead:
        actions.add("assign")
    return frozenset(actions)


_CASE_OF_TASK = select(
    ProcessInstance.process_version_id,
    ProcessInstance.revision,
    ProcessInstance.business_key,
    ProcessVersion.content_hash,
).join(ProcessVersion, ProcessVersion.id == ProcessInstance.process_version_id)


def _case_of(session: Session, row: HumanTask) -> Row[Any]:
    """The case's version id (with its content hash, so the version comes from the cache),
    revision and business key: one small select instead of loading the whole case."""
    found = session.execute(_CASE_OF_TASK.where(ProcessInstance.id == row.instance_id)).first()
    if found is None:
        raise NotFound(f"the case of task {row.id} does not exist")
    return found


def _form_of(session: Session, row: HumanTask, case: Row[Any]) -> dict[str, Any] | None:
    if not row.form_key:
        return None
    version = load_version(session, case.process_version_id, case.content_hash)
    return (version.forms or {}).get(row.form_key)


@dataclass(frozen=True)
class TaskDetail:
    """What a task's page shows, read at once: the task, its form as pinned to the case's
    process version, the actions the reader may take now, and the case's revision (to send
    back with a command) and business key."""

    task: TaskView
    form: dict[str, Any] | None
    actions: frozenset[str]
    revision: int
    business_key: str | None


def task_detail(session: Session, *, task_id: int, actor: Actor) -> TaskDetail:
    """A task with its form, ``actor``'s allowed actions and its case's revision, reading
    the task once and the case with one small select.

    Raises:
        NotFound: no such task.
        Forbidden: ``actor`` may not see the task (the rule of ``get_task``).
    """
    row = _visible_row(session, task_id, actor)
    case = _case_of(session, row)
    return TaskDetail(
        task=TaskView.of(row),
        form=_form_of(session, row, case),
        actions=actions_for(actor, row),
        revision=case.revision,
        business_key=case.business_key,
    )


def get_task(session: Session, *, task_id: int, actor: Actor) -> TaskView:
    return TaskView.of(_visible_row(session, task_id, actor))


def task_form(session: Session, *, task_id: int) -> dict[str, Any] | None:
    """The JSON Schema of a task's form, as pinned to its process version."""
    row = _task_row(session, task_id)
    return _form_of(session, row, _case_of(session, row))


def allowed_actions(session: Session, *, task_id: int, actor: Actor) -> frozenset[str]:
    """The actions ``actor`` may take on the task now: a subset of claim, release, assign,
    complete."""
    return actions_for(actor, _task_row(session, task_id))


def inbox(
    session: Session, *, actor: Actor, limit: int = 50, before_due: datetime | None = None
) -> list[TaskView]:
    """Open tasks claimed by ``actor`` or offered to one of their roles (and district).

    Reads only the indexed ``human_task`` table: listing never loads a workflow.
    """
    offered = (HumanTask.assignee_id.is_(None)) & HumanTask.role.in_(sorted(actor.roles))
    if actor.district_id is not None:
        offered &= or_(HumanTask.district_id.is_(None), HumanTask.district_id == actor.district_id)
    stmt = (
        select(HumanTask)
        .where(TASK_IS_OPEN, or_(HumanTask.assignee_id == actor.user_id, offered))
        .order_by(HumanTask.due_at.is_(None), HumanTask.due_at, HumanTask.id)
        .limit(limit)
    )
    if before_due is not None:
        stmt = stmt.where(HumanTask.due_at < before_due)
    return [TaskView.of(r) for r in session.scalars(stmt)]
