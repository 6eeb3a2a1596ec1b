"""The head's delegation of signing to a deputy head (Reg 18, 19; who signs: Reg 18.9).

The head signs orders as themselves. In the head's absence a deputy head signs for the head,
but only under a written delegation for whole days, both ends included, in the Department's
time zone. The head grants it, and only the head who granted it revokes it; both are events
of the audit log. A revoked delegation, or one whose head is no longer active, gives no
power to sign.

``signing_principal`` is the one lookup of who may sign on whose behalf: ``engine.orders``
asks it before it shows the signing queue, returns a draft or signs, and records a deputy's
signature with ``on_behalf_of`` and the delegation it was made under.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import audit
from engine.calendar import local_day
from engine.errors import FieldError, Forbidden, NotFound, ValidationFailed
from engine.identity import Actor, actor_for
from engine.models import User, UserRole
from engine.models.orders import SigningDelegation


@dataclass(frozen=True)
class DelegationView:
    id: int
    head: str
    deputy: str
    starts_on: date
    ends_on: date
    reason: str | None
    revoked: bool
    deputy_name: str
    granted_at: datetime
    revoked_at: datetime | None

    def period(self, day: date) -> str:
        """ "current", "future" or "past" on ``day``; a revoked delegation is past."""
        if self.revoked or self.ends_on < day:
            return "past"
        return "future" if self.starts_on > day else "current"


def _delegation_view(session: Session, row: SigningDelegation) -> DelegationView:
    head = session.get(User, row.head_id)
    deputy = session.get(User, row.deputy_id)
    return DelegationView(
        id=row.id,
        head=head.username if head else "?",
        deputy=deputy.username if deputy else "?",
        starts_on=row.starts_on,
        ends_on=row.ends_on,
        reason=row.reason,
        revoked=row.revoked_at is not None,
        deputy_name=(deputy.full_name or deputy.username) if deputy else "?",
        granted_at=row.created_at,
        revoked_at=row.revoked_at,
    )


def deputy_heads(session: Session) -> list[tuple[str, str]]:
    """The active deputy heads a delegation may name: (username, full name), by name."""
    rows = session.execute(
        select(User.username, User.full_name)
        .join(UserRole, UserRole.user_id == User.id)
        .where(UserRole.role_code == "deputy_head", User.is_active.is_(True))
        .order_by(User.full_name, User.username)
    )
    return [(username, full_name or username) for username, full_name in rows]


def grant_delegation(
    session: Session,
    *,
    actor: Actor,
    deputy: str,
    starts_on: date,
    ends_on: date,
    now: datetime,
    reason: str | None = None,
) -> DelegationView:
    """The head delegates signing to a deputy head for whole days (both ends included).

    A start in the past is accepted: signing checks the day it happens, so an earlier start
    gives no power over what was signed before the grant, which the audit log dates.

    Raises:
        Forbidden: the actor is not the head acting as themselves.
        ValidationFailed: per field, with stable messages: ``deputy`` "no such active
            user" or "not a deputy head"; ``ends_on`` "ends before it starts";
            ``reason`` "maxLength 500".
    """
    if not actor.has_role("head") or actor.on_behalf_of:
        raise Forbidden("only the head delegates the signing of orders")
    target = session.scalar(select(User).where(User.username == deputy))
    errors = []
    if target is None or not target.is_active:
        errors.append(FieldError("deputy", "no such active user"))
    elif "deputy_head" not in actor_for(target).roles:
        errors.append(FieldError("deputy", "not a deputy head"))
    if ends_on < starts_on:
        errors.append(FieldError("ends_on", "ends before it starts"))
    if reason is not None and len(reason) > 500:
        errors.append(FieldError("reason", "maxLength 500"))
    if errors:
        raise ValidationFailed("the delegation cannot be granted", errors)
    assert target is not None and actor.user_id is not None
    row = SigningDelegation(
        head_id=actor.user_id,
        deputy_id=target.id,
        starts_on=starts_on,
        ends_on=ends_on,
        reason=reason,
        created_at=now,
    )
    session.add(row)
    session.flush()
    audit.append_system_event(
        session,
        actor,
        "order.delegation_granted",
        {
            "delegation_id": row.id,
            "deputy": deputy,
            "starts_on": starts_on.isoformat(),
            "ends_on": ends_on.isoformat(),
            "reason": reason,
        },
        now,
    )
    return _delegation_view(session, row)


def revoke_delegation(
    session: Session, *, actor: Actor, delegation_id: int, now: datetime
) -> DelegationView:
    """The head who granted a delegation ends it now (audited once; revoking twice is a
    no-op). Raises NotFound, or Forbidden for anyone but that head."""
    row = session.get(SigningDelegation, delegation_id)
    if row is None:
        raise NotFound(f"delegation {delegation_id} does not exist")
    if row.head_id != actor.user_id:
        raise Forbidden("only the head who granted a delegation revokes it")
    if row.revoked_at is None:
        row.revoked_at = now
        audit.append_system_event(
            session, actor, "order.delegation_revoked", {"delegation_id": row.id}, now
        )
        session.flush()
    return _delegation_view(session, row)


def list_delegations(session: Session) -> list[DelegationView]:
    """Every delegation ever granted, the newest first."""
    rows = session.scalars(select(SigningDelegation).order_by(SigningDelegation.id.desc()))
    return [_delegation_view(session, r) for r in rows]


def signing_principal(
    session: Session, *, actor: Actor, now: datetime
) -> tuple[Actor, SigningDelegation | None]:
    """Who signs: the head as themselves, or a deputy for the head under a delegation
    covering today. Raises Forbidden (naming an expired delegation) otherwise."""
    if actor.has_role("head") and actor.on_behalf_of is None:
        return actor, None
    if not actor.has_role("deputy_head") or actor.user_id is None:
        raise Forbidden(f"{actor.username} may not sign orders (Reg 18.9)")
    day = local_day(now)
    rows = list(
        session.scalars(
            select(SigningDelegation)
            .where(
                SigningDelegation.deputy_id == actor.user_id,
                SigningDelegation.revoked_at.is_(None),
            )
            .order_by(SigningDelegation.ends_on.desc())
        )
    )
    for row in rows:
        if row.starts_on <= day <= row.ends_on:
            head = session.get(User, row.head_id)
            if head is None or not head.is_active:
                continue
            return (
                Actor(
                    user_id=actor.user_id,
                    username=actor.username,
                    roles=actor_for(head).roles,
                    district_id=None,
                    on_behalf_of=head.username,
                ),
                row,
            )
    if rows and rows[0].ends_on < day:
        raise Forbidden(
            f"the delegation to sign ended on {rows[0].ends_on:%d.%m.%Y}; "
            "the head must grant a new one"
        )
    raise Forbidden(f"{actor.username} holds no delegation to sign today")
