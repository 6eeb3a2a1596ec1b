"""Absences: while a user is away, a named deputy does their work, and the audit log says so.

An absence covers whole days in Kostanay's calendar, both ends included. While it lasts, the
deputy's inbox also offers the absent user's queue and claimed tasks; the deputy acts with an
``Actor`` that holds the absent user's roles and district and carries ``on_behalf_of``, so
every audit event of that work names both people. A task the absent user had claimed is
first *taken over* (an audited reassignment to the deputy), because only a task's claimant
may complete it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.calendar import local_day
from engine.clock import Clock
from engine.errors import FieldError, Forbidden, InvalidTransition, NotFound, ValidationFailed
from engine.identity import Actor, actor_for
from engine.models import HumanTask, User
from engine.models.workspace import Absence
from engine.runtime import Unit
from engine.views import TaskView


@dataclass(frozen=True)
class AbsenceView:
    id: int
    user_id: int
    username: str
    deputy_id: int
    deputy_username: str
    starts_on: date
    ends_on: date
    reason: str | None
    cancelled: bool

    def covers(self, day: date) -> bool:
        return not self.cancelled and self.starts_on <= day <= self.ends_on


def _view(session: Session, row: Absence) -> AbsenceView:
    user, deputy = session.get(User, row.user_id), session.get(User, row.deputy_id)
    return AbsenceView(
        id=row.id,
        user_id=row.user_id,
        username=user.username if user else "?",
        deputy_id=row.deputy_id,
        deputy_username=deputy.username if deputy else "?",
        starts_on=row.starts_on,
        ends_on=row.ends_on,
        reason=row.reason,
        cancelled=row.cancelled_at is not None,
    )


def record_absence(
    session: Session,
    *,
    actor: Actor,
    username: str,
    deputy: str,
    starts_on: date,
    ends_on: date,
    now: datetime,
    reason: str | None = None,
) -> AbsenceView:
    """Record that ``username`` is away with ``deputy`` acting for them.

    A user records their own absence; a lead may record anyone's.
    """
    if username != actor.username and not actor.is_lead:
        raise Forbidden(f"{actor.username} may record only their own absence")
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"no user named {username!r}")
    errors = []
    target = session.scalar(select(User).where(User.username == deputy))
    if target is None or not target.is_active:
        errors.append(FieldError("deputy", f"no active user {deputy!r}"))
    elif target.id == user.id:
        errors.append(FieldError("deputy", "the deputy must be someone else"))
    if ends_on < starts_on:
        errors.append(FieldError("ends_on", "the absence ends before it starts"))
    if errors:
        raise ValidationFailed("the absence cannot be recorded", errors)
    assert target is not None
    row = Absence(
        user_id=user.id,
        deputy_id=target.id,
        starts_on=starts_on,
        ends_on=ends_on,
        reason=(reason or None),
        created_by_id=actor.user_id or user.id,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return _view(session, row)


def cancel_absence(
    session: Session, *, actor: Actor, absence_id: int, now: datetime
) -> AbsenceView:
    row = session.get(Absence, absence_id)
    if row is None:
        raise NotFound(f"absence {absence_id} does not exist")
    if row.user_id != actor.user_id and not actor.is_lead:
        raise Forbidden(f"{actor.username} may not cancel this absence")
    if row.cancelled_at is None:
        row.cancelled_at = now
        session.flush()
    return _view(session, row)


def list_absences(session: Session, *, user_id: int) -> list[AbsenceView]:
    """Absences of the user and those where the user is the deputy, newest first."""
    rows = session.scalars(
        select(Absence)
        .where((Absence.user_id == user_id) | (Absence.deputy_id == user_id))
        .order_by(Absence.starts_on.desc(), Absence.id.desc())
    )
    return [_view(session, r) for r in rows]


def principals(session: Session, *, deputy: Actor, now: datetime) -> list[Actor]:
    """The actors a deputy may act as today: one per absent user they stand in for."""
    if deputy.user_id is None:
        return []
    day = local_day(now)
    rows = session.scalars(
        select(Absence).where(
            Absence.deputy_id == deputy.user_id,
            Absence.starts_on <= day,
            Absence.ends_on >= day,
            Absence.cancelled_at.is_(None),
        )
    )
    result = []
    for row in rows:
        absent = session.get(User, row.user_id)
        if absent is None or not absent.is_active:
            continue
        result.append(on_behalf(deputy, absent))
    return result


def on_behalf(deputy: Actor, absent: User) -> Actor:
    """The deputy, holding the absent user's roles and district, acting for them."""
    theirs = actor_for(absent)
    return Actor(
        user_id=deputy.user_id,
        username=deputy.username,
        roles=theirs.roles,
        district_id=theirs.district_id,
        on_behalf_of=absent.username,
    )


def absent_user_id(session: Session, principal: Actor) -> int | None:
    if principal.on_behalf_of is None:
        return None
    return session.scalar(select(User.id).where(User.username == principal.on_behalf_of))


def take_over_task(
    session: Session,
    *,
    task_id: int,
    deputy: Actor,
    clock: Clock,
    expected_revision: int | None = None,
) -> TaskView:
    """Move a task the absent user had claimed to their deputy (audited, on their behalf)."""
    row = session.get(HumanTask, task_id, populate_existing=True)
    if row is None:
        raise NotFound(f"task {task_id} does not exist", task_id=task_id)
    if row.status != "ready":
        raise InvalidTransition(f"task {row.id} is {row.status}", task_id=row.id)
    for principal in principals(session, deputy=deputy, now=clock.now()):
        if row.assignee_id is not None and row.assignee_id == absent_user_id(session, principal):
            unit = Unit.open(
                session,
                row.instance_id,
                actor=principal,
                clock=clock,
                expected_revision=expected_revision,
                load=False,
            )
            session.refresh(row)
            previous = row.assignee_id
            row.assignee_id, row.claimed_at = deputy.user_id, unit.now
            unit.event(
                "task.taken_over",
                {"bpmn_id": row.bpmn_id, "from_user_id": previous, "to": deputy.username},
                row.task_guid,
            )
            unit.save()
            return TaskView.of(row)
    raise Forbidden(f"{deputy.username} does not stand in for the holder of task {task_id}")


def acting_as(session: Session, *, actor: Actor, task_id: int, now: datetime) -> Actor:
    """Whom ``actor`` acts as on a task: themselves, or, when the task is an absent
    colleague's (claimed by them or offered to their roles) and ``actor`` stands in for
    them, the deputy acting on their behalf."""
    from engine import tasks  # tasks imports runtime; keep this module importable alone

    row = session.get(HumanTask, task_id, populate_existing=True)
    if row is None:
        raise NotFound(f"task {task_id} does not exist", task_id=task_id)
    # One read of the task serves every person asked about below.
    own = tasks.actions_for(actor, row) - {"assign"}
    # A task the deputy took over is theirs, but they hold its role only as the deputy.
    if own and (row.role is None or actor.has_role(row.role)):
        return actor
    for principal in principals(session, deputy=actor, now=now):
        if tasks.actions_for(principal, row) - {"assign"}:
            return principal
        if row.assignee_id == absent_user_id(session, principal):
            return principal
    return actor
