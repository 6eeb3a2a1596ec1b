"""Kazakhstan's working-day calendar and legal deadlines.

Holidays come from the pinned ``holidays`` package (its KZ calendar moves a holiday that
falls on a weekend and knows the Government's past transfers of working days).

Counting follows the legal convention: a term starts the day after the event; a term of N
working days ends at the close of the Nth working day after the event day; a term of N
calendar days ending on a non-working day moves to the next working day; a term in hours
runs from the event itself. Days are the Department's days (Asia/Qostanay); stored times are
UTC.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays

DEPARTMENT_TZ = ZoneInfo("Asia/Qostanay")
MAX_TERM_DAYS = 3660  # ten years: anything longer is a mistake in a rule, not a term

_lock = threading.Lock()
_calendar = holidays.country_holidays("KZ")


def is_working_day(day: date) -> bool:
    with _lock:  # the holidays object fills its years lazily and is not thread-safe
        return bool(_calendar.is_working_day(day))


def add_working_days(start: date, days: int) -> date:
    """The ``days``-th working day after ``start`` (before it when negative)."""
    if abs(days) > MAX_TERM_DAYS:
        raise ValueError(f"a term of {days} working days is out of range")
    step = 1 if days >= 0 else -1
    current, left = start, abs(days)
    while left:
        current += timedelta(days=step)
        if is_working_day(current):
            left -= 1
    return current


def next_working_day(day: date) -> date:
    """``day`` itself when it is a working day, else the first working day after it."""
    for _ in range(MAX_TERM_DAYS):
        if is_working_day(day):
            return day
        day += timedelta(days=1)
    raise ValueError("no working day found")


UNITS = ("working_days", "calendar_days", "hours")


@dataclass(frozen=True)
class Term:
    value: int
    unit: str  # working_days | calendar_days | hours


def local_day(moment: datetime) -> date:
    return moment.astimezone(DEPARTMENT_TZ).date()


def end_of_day(day: date) -> datetime:
    """The last moment of ``day`` in the Department's time zone, as UTC."""
    closing = datetime.combine(day, time(23, 59, 59), tzinfo=DEPARTMENT_TZ)
    return closing.astimezone(UTC)


def due_at(event: datetime, term: Term) -> datetime:
    """When a term that starts with ``event`` runs out (UTC)."""
    if term.unit == "hours":
        return (event + timedelta(hours=term.value)).astimezone(UTC)
    if term.unit == "working_days":
        return end_of_day(add_working_days(local_day(event), term.value))
    if term.unit == "calendar_days":
        if abs(term.value) > MAX_TERM_DAYS:
            raise ValueError(f"a term of {term.value} days is out of range")
        last = local_day(event) + timedelta(days=term.value)
        return end_of_day(next_working_day(last))
    raise ValueError(f"unknown unit {term.unit!r}; use one of {', '.join(UNITS)}")
