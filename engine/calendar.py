"""Kazakhstan's working-day calendar and legal deadlines.

Holidays come from the pinned ``holidays`` package: its KZ calendar moves a holiday that
falls on a weekend to the next working day and knows the Government's past transfers of
working days (e.g. Sunday 5 January 2025 was a working day). Each year's new transfer
decree and the official date of Kurban Ait (announced yearly, lunar) are entered by an
administrator as *overrides* (table ``calendar_override``, ``engine/calendar_overrides.py``):
a date declared a holiday, or a weekend date declared a working day, with its reason and
legal act.

**Calendar version.** A calendar is the package's KZ calendar plus a set of overrides. Its
``version`` names both (``holidays-0.109+2:3f9a0c1b7d2e``: package version, number of
overrides, hash of their dates and kinds), so every due date stored on a task says which
calendar produced it, and a later change of the overrides never silently rewrites the
explanation of a past due date.

**The legal convention** for counting terms (Civil Code of the Republic of Kazakhstan,
General Part, Art. 170-172 on the start and end of terms; article numbers to be confirmed by
the Department's lawyer; holidays on a weekend move by Art. 5 of the Law "On holidays"
No. 267-II, transfers of days off by the Government under Labour Code Art. 85 para 3):

* a term starts on the day after the event that starts it;
* a term of N working days ends at the close of the Nth working day after the event day;
* a term of N calendar days ends at the close of day ``event + N``; when that day is not a
  working day, it ends at the close of the next working day;
* a term in hours runs from the event itself, to the minute.

Days are the Department's days (Asia/Qostanay, UTC+5); stored times are UTC. "The close of
a day" is 23:59:59 local time.

**Active calendar.** Code that cannot be handed a calendar (the sandboxed helpers
``is_working_day``/``add_working_days`` that scripts call) uses the *active* one, a context
variable that each command sets when it loads the overrides (``activate``). The sandbox's
worker processes have no database: the active calendar's overrides travel with every call
(see ``engine/sandbox/helpers.py``).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays

DEPARTMENT_TZ = ZoneInfo("Asia/Qostanay")
MAX_TERM_DAYS = 3660  # ten years: anything longer is a mistake in a rule, not a term
HOLIDAY, WORKING_DAY = "holiday", "working_day"
KINDS = (HOLIDAY, WORKING_DAY)

_lock = threading.Lock()
_package_calendar = holidays.country_holidays("KZ")


def package_is_working_day(day: date) -> bool:
    """Whether ``day`` is a working day by the ``holidays`` package alone (no overrides)."""
    with _lock:  # the holidays object fills its years lazily and is not thread-safe
        return bool(_package_calendar.is_working_day(day))


def package_holiday_name(day: date) -> str | None:
    with _lock:
        return _package_calendar.get(day)


UNITS = ("working_days", "calendar_days", "hours")


@dataclass(frozen=True)
class Term:
    value: int
    unit: str  # working_days | calendar_days | hours


class WorkingCalendar:
    """The KZ calendar of the ``holidays`` package with a set of overrides on top.

    Args:
        overrides: pairs of (date, kind) where kind is ``holiday`` or ``working_day``.
    """

    def __init__(self, overrides: Iterable[tuple[date, str]] = ()) -> None:
        days: dict[date, bool] = {}
        for day, kind in overrides:
            if kind not in KINDS:
                raise ValueError(f"unknown override kind {kind!r}; use one of {', '.join(KINDS)}")
            days[day] = kind == WORKING_DAY
        self._days = days
        self.version = _version(days)
        # Sent with every sandbox call (engine/sandbox/helpers.py): computed once.
        self._wire = [
            [day.isoformat(), WORKING_DAY if working else HOLIDAY]
            for day, working in sorted(days.items())
        ]

    @property
    def overrides(self) -> tuple[tuple[date, str], ...]:
        """The overrides, sorted by date."""
        return tuple(
            (day, WORKING_DAY if working else HOLIDAY)
            for day, working in sorted(self._days.items())
        )

    def is_working_day(self, day: date) -> bool:
        """Whether ``day`` is a working day: the overrides first, else the package."""
        override = self._days.get(day)
        if override is not None:
            return override
        return package_is_working_day(day)

    def add_working_days(self, start: date, days: int) -> date:
        """The ``days``-th working day after ``start`` (before it when negative; 0: start)."""
        if abs(days) > MAX_TERM_DAYS:
            raise ValueError(f"a term of {days} working days is out of range")
        step = 1 if days >= 0 else -1
        current, left = start, abs(days)
        while left:
            current += timedelta(days=step)
            if self.is_working_day(current):
                left -= 1
        return current

    def next_working_day(self, day: date) -> date:
        """``day`` itself when it is a working day, else the first working day after it."""
        for _ in range(MAX_TERM_DAYS):
            if self.is_working_day(day):
                return day
            day += timedelta(days=1)
        raise ValueError("no working day found")

    def due_at(self, event: datetime, term: Term) -> datetime:
        """When a term that starts with ``event`` runs out (UTC), by the legal convention."""
        if event.tzinfo is None:
            raise ValueError("due_at needs a timezone-aware event time")
        if term.unit == "hours":
            if abs(term.value) > MAX_TERM_DAYS * 24:
                raise ValueError(f"a term of {term.value} hours is out of range")
            return (event + timedelta(hours=term.value)).astimezone(UTC)
        if term.unit == "working_days":
            return end_of_day(self.add_working_days(local_day(event), term.value))
        if term.unit == "calendar_days":
            if abs(term.value) > MAX_TERM_DAYS:
                raise ValueError(f"a term of {term.value} days is out of range")
            last = local_day(event) + timedelta(days=term.value)
            return end_of_day(self.next_working_day(last))
        raise ValueError(f"unknown unit {term.unit!r}; use one of {', '.join(UNITS)}")

    def to_wire(self) -> list[list[str]]:
        """The overrides as JSON-ready pairs, for the sandbox's worker processes."""
        return [list(pair) for pair in self._wire]

    @classmethod
    def from_wire(cls, pairs: Iterable[Iterable[str]] | None) -> WorkingCalendar:
        out = []
        for pair in pairs or ():
            day, kind = list(pair)
            out.append((date.fromisoformat(day), kind))
        return cls(out)


def _version(days: dict[date, bool]) -> str:
    text = ";".join(f"{d.isoformat()}={'W' if w else 'H'}" for d, w in sorted(days.items()))
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    base = f"holidays-{holidays.__version__}"
    return f"{base}+{len(days)}:{digest}" if days else f"{base}+0"


PACKAGE_CALENDAR = WorkingCalendar()

_active: ContextVar[WorkingCalendar | None] = ContextVar("qorgau_calendar", default=None)
_latest = PACKAGE_CALENDAR  # the one this process loaded last: the default for new threads


def activate(calendar: WorkingCalendar) -> None:
    """Make ``calendar`` the one that code without an explicit calendar uses, here and in
    threads started afterwards."""
    global _latest
    _active.set(calendar)
    _latest = calendar


def active() -> WorkingCalendar:
    """The calendar in force for the current command (see the module docstring)."""
    return _active.get() or _latest


@contextmanager
def using(calendar: WorkingCalendar) -> Iterator[None]:
    """Make ``calendar`` the active one inside the block only (sandbox worker calls)."""
    token = _active.set(calendar)
    try:
        yield
    finally:
        _active.reset(token)


# --- the active calendar, as plain functions --------------------------------------------


def is_working_day(day: date) -> bool:
    return active().is_working_day(day)


def add_working_days(start: date, days: int) -> date:
    """The ``days``-th working day after ``start`` (before it when negative)."""
    return active().add_working_days(start, days)


def next_working_day(day: date) -> date:
    """``day`` itself when it is a working day, else the first working day after it."""
    return active().next_working_day(day)


def local_day(moment: datetime) -> date:
    return moment.astimezone(DEPARTMENT_TZ).date()


def end_of_day(day: date) -> datetime:
    """The last moment of ``day`` in the Department's time zone, as UTC."""
    closing = datetime.combine(day, time(23, 59, 59), tzinfo=DEPARTMENT_TZ)
    return closing.astimezone(UTC)


def due_at(event: datetime, term: Term, calendar: WorkingCalendar | None = None) -> datetime:
    """When a term that starts with ``event`` runs out (UTC), by the legal convention.

    Args:
        event: the moment the term starts from (timezone-aware).
        term: value and unit.
        calendar: the calendar to count in (default: the active one).

    Returns:
        The due moment, UTC.
    """
    return (calendar or active()).due_at(event, term)
