"""Services on the calendar's overrides: list, add, remove, and load the calendar in force.

An override declares one date a holiday or a working day, with its reason and its legal act
(the year's Government decree on transferring days off, Labour Code Art. 85 para 3; the
Spiritual Administration's announcement of Kurban Ait, Labour Code Art. 84). Only an
administrator changes them; every change is written to the audit log's system chain.

Changing an override changes the calendar's version (engine/calendar.py): due dates computed
before keep the version that produced them, so the inbox can still explain them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import audit
from engine.calendar import (
    KINDS,
    PACKAGE_CALENDAR,
    WorkingCalendar,
    activate,
    package_holiday_name,
)
from engine.errors import Conflict, FieldError, Forbidden, NotFound, ValidationFailed
from engine.identity import Actor
from engine.models import CalendarOverride

ADMIN_ROLES = frozenset({"admin"})
_MAX_TEXT = 500


@dataclass(frozen=True)
class OverrideView:
    id: int
    day: date
    kind: str
    reason: str
    legal_act: str
    created_at: datetime
    # What the ``holidays`` package alone says of that day, to show what the override changes.
    package_says: str


def _view(row: CalendarOverride) -> OverrideView:
    name = package_holiday_name(row.day)
    working = PACKAGE_CALENDAR.is_working_day(row.day)
    return OverrideView(
        id=row.id,
        day=row.day,
        kind=row.kind,
        reason=row.reason,
        legal_act=row.legal_act,
        created_at=row.created_at,
        package_says=name or ("working day" if working else "day off"),
    )


def _require_admin(actor: Actor) -> None:
    if not (actor.is_system or actor.roles & ADMIN_ROLES):
        raise Forbidden(f"{actor.username} may not change the calendar: it is the admin's")


def list_overrides(session: Session, *, year: int | None = None) -> list[OverrideView]:
    """Every override (of one year when given), by date."""
    stmt = select(CalendarOverride).order_by(CalendarOverride.day)
    if year is not None:
        stmt = stmt.where(
            CalendarOverride.day >= date(year, 1, 1), CalendarOverride.day <= date(year, 12, 31)
        )
    return [_view(r) for r in session.scalars(stmt)]


def load_calendar(session: Session) -> WorkingCalendar:
    """The calendar in force: the package's KZ calendar with every override.

    It also becomes the active calendar of this thread (for the sandbox helpers). One small
    query per call; the calendar object is cached by its content.
    """
    rows = session.execute(select(CalendarOverride.day, CalendarOverride.kind))
    pairs = tuple((day, kind) for day, kind in rows)
    calendar = _CACHE.get(pairs)
    if calendar is None:
        calendar = WorkingCalendar(pairs)
        if len(_CACHE) > 16:
            _CACHE.clear()
        _CACHE[pairs] = calendar
    activate(calendar)
    return calendar


_CACHE: dict[tuple[tuple[date, str], ...], WorkingCalendar] = {}


def add_override(
    session: Session,
    *,
    actor: Actor,
    day: date,
    kind: str,
    reason: str,
    legal_act: str,
    now: datetime,
) -> OverrideView:
    """Declare ``day`` a holiday or a working day.

    Raises:
        Forbidden: the actor is not an administrator.
        ValidationFailed: unknown kind, missing reason or legal act, or an override that
            changes nothing (the package already says the same).
        Conflict: the day already has an override (remove it first).
    """
    _require_admin(actor)
    errors = []
    if kind not in KINDS:
        errors.append(FieldError("kind", f"must be one of {', '.join(KINDS)}"))
    reason, legal_act = (reason or "").strip(), (legal_act or "").strip()
    if not reason:
        errors.append(FieldError("reason", "required"))
    if not legal_act:
        errors.append(FieldError("legal_act", "required: the decree or announcement"))
    for name, value in (("reason", reason), ("legal_act", legal_act)):
        if len(value) > _MAX_TEXT:
            errors.append(FieldError(name, f"at most {_MAX_TEXT} characters"))
    if not errors and PACKAGE_CALENDAR.is_working_day(day) == (kind == "working_day"):
        errors.append(
            FieldError("kind", f"{day.isoformat()} is already a {kind.replace('_', ' ')}")
        )
    if errors:
        raise ValidationFailed("the override was refused", errors)
    if session.scalars(select(CalendarOverride).where(CalendarOverride.day == day)).first():
        raise Conflict(f"{day.isoformat()} already has an override; remove it first")
    row = CalendarOverride(
        day=day,
        kind=kind,
        reason=reason,
        legal_act=legal_act,
        created_at=now,
        created_by_id=actor.user_id,
    )
    session.add(row)
    session.flush()
    audit.append_system_event(
        session,
        actor,
        "calendar.override_added",
        {"day": day.isoformat(), "kind": kind, "reason": reason, "legal_act": legal_act},
        now,
    )
    load_calendar(session)
    return _view(row)


def remove_override(session: Session, *, actor: Actor, day: date, now: datetime) -> OverrideView:
    """Remove the override of ``day``; the package's calendar applies again.

    Raises:
        Forbidden: the actor is not an administrator.
        NotFound: the day has no override.
    """
    _require_admin(actor)
    row = session.scalars(select(CalendarOverride).where(CalendarOverride.day == day)).first()
    if row is None:
        raise NotFound(f"{day.isoformat()} has no override")
    view = _view(row)
    session.delete(row)
    session.flush()
    audit.append_system_event(
        session,
        actor,
        "calendar.override_removed",
        {"day": day.isoformat(), "kind": view.kind, "reason": view.reason},
        now,
    )
    load_calendar(session)
    return view
