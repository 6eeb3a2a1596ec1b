"""What sandboxed code can see: a whitelist of helpers, a few safe builtins, and the guards.

Helpers are host code called with arguments an analyst controls, so each one is bounded in
time and memory for any argument: working-day arithmetic refuses more than
``MAX_WORKING_DAYS`` days, date parsing refuses long strings, and so on.

The guards are the run-time half of the compiler's policy (compiler.py): RestrictedPython
compiles ``a.b`` into ``_getattr_(a, "b")``, ``a[b]`` into ``_getitem_(a, b)``, ``for`` into
``_getiter_``, and our policy compiles ``+``, ``*``, ``**``, ``<<`` into size-checking calls.
They live in the builtins namespace of the sandboxed code, under names the code itself cannot
spell (names starting with ``_`` are refused at compile time).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

from RestrictedPython.Guards import (
    full_write_guard,
    guarded_iter_unpack_sequence,
    guarded_unpack_sequence,
    safer_getattr_raise,
)
from RestrictedPython.transformer import INSPECT_ATTRIBUTES

from engine import calendar as legal_calendar
from engine.errors import ValidationFailed
from engine.iin import IinInfo, is_valid_iin, validate_iin

# --- limits -----------------------------------------------------------------------------------

MAX_WORKING_DAYS = 3660
# A sequence built by + or * may hold at most this many items (characters for strings).
MAX_SEQUENCE_ITEMS = 10_000_000
# An integer built by ** or << may have at most this many bits (about 300,000 digits).
MAX_INT_BITS = 1_000_000
# range() refuses more items than this. A shorter range that still runs too long is stopped by
# the worker's time limit, and one materialised into a list by its memory cap; the bound is only
# there to answer the absurd (range(10**18)) with a message instead of an overflow.
MAX_RANGE_ITEMS = 10**10
_MAX_DATE_TEXT = 40

# Kazakhstan has one time zone, UTC+5, since 1 March 2024; "today" for deadlines is the date in
# Kostanay, not in UTC (between 19:00 and 24:00 UTC they differ).
KAZAKHSTAN_TZ = timezone(timedelta(hours=5), "Asia/Qostanay")


class SandboxLimitError(Exception):
    """A guard refused to build a value that would be too large (reported as kind "memory")."""


# --- time -------------------------------------------------------------------------------------

# The environment sets the engine's clock time for the duration of one evaluation, so that
# today()/now() follow the injected clock (tests skip time instead of sleeping) and agree
# between in-process evaluation and the worker pool.
_NOW: ContextVar[datetime | None] = ContextVar("sandbox_now", default=None)


@contextmanager
def frozen_now(moment: datetime | None) -> Iterator[None]:
    """Make ``now()`` and ``today()`` return ``moment`` inside the block (None: the real time)."""
    token = _NOW.set(moment)
    try:
        yield
    finally:
        _NOW.reset(token)


def now() -> datetime:
    """The current time, timezone-aware, in UTC."""
    moment = _NOW.get()
    return moment.astimezone(UTC) if moment is not None else datetime.now(UTC)


def today() -> date:
    """Today's date in Kazakhstan (UTC+5)."""
    return now().astimezone(KAZAKHSTAN_TZ).date()


# --- dates and the working-day calendar ---------------------------------------------------------


def _as_date(value: object, what: str = "date") -> date:
    # Form fields arrive as ISO strings; accept them wherever a date is expected.
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        return parse_date(value)
    raise TypeError(f"{what} must be a date or a date string, not {type(value).__name__}")


def _as_int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be a whole number, not {type(value).__name__}")
    return value


def parse_date(text: str) -> date:
    """Parse a date written as ``YYYY-MM-DD`` (ISO, as forms send it) or ``DD.MM.YYYY``.

    Args:
        text: the date; an ISO date-time is cut to its date.

    Returns:
        The date.

    Raises:
        ValueError: when the text is not one of those forms or not a real date.
    """
    if not isinstance(text, str):
        raise TypeError(f"parse_date expects text, not {type(text).__name__}")
    value = text.strip()
    if len(value) > _MAX_DATE_TEXT:
        raise ValueError("parse_date: the text is too long to be a date")
    try:
        if len(value) == 10 and value[2] == "." and value[5] == ".":
            return date(int(value[6:]), int(value[3:5]), int(value[:2]))
        if len(value) > 10 and value[10] in "T ":
            return datetime.fromisoformat(value).date()
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"parse_date: {value!r} is not a date (YYYY-MM-DD or DD.MM.YYYY)"
        ) from None


def add_days(day: date | str, days: int) -> date:
    """Add calendar days (negative to go back).

    Args:
        day: the start date.
        days: how many calendar days to add.

    Returns:
        The resulting date.
    """
    start = _as_date(day)
    try:
        return start + timedelta(days=_as_int(days, "days"))
    except OverflowError:
        raise ValueError("add_days: the result is outside the calendar") from None


# The working-day calendar is engine/calendar.py's, one implementation for due dates and for
# scripts: the package's KZ calendar with the administrator's overrides (transfer decrees,
# Kurban Ait). Scripts count with the *active* calendar. In the web or scheduler process that is
# the calendar the process loaded last from the database. A sandbox worker process has no
# database: the pool sends the active calendar's overrides with every call (a few dozen dates,
# well under a kilobyte) and the worker activates them for that call only (``using_calendar``).
# Sending them each time, rather than pushing versions to long-lived workers, means a worker
# can never count with a calendar older than its caller's, and a replaced worker needs no
# state to catch up on.
_WIRE_CACHE: dict[tuple[tuple[str, str], ...], legal_calendar.WorkingCalendar] = {}


def calendar_wire() -> list[list[str]]:
    """The active calendar's overrides, as the pool sends them to a worker."""
    return legal_calendar.active().to_wire()


@contextmanager
def using_calendar(wire: list[list[str]] | None) -> Iterator[None]:
    """Inside a worker: count working days with the caller's overrides during one call."""
    if wire is None:
        yield
        return
    key = tuple((str(day), str(kind)) for day, kind in wire)
    calendar = _WIRE_CACHE.get(key)
    if calendar is None:
        calendar = legal_calendar.WorkingCalendar.from_wire(key)
        if len(_WIRE_CACHE) > 8:
            _WIRE_CACHE.clear()
        _WIRE_CACHE[key] = calendar
    with legal_calendar.using(calendar):
        yield


def is_working_day(day: date | str) -> bool:
    """Tell whether a date is a working day in Kazakhstan.

    Weekends and public holidays (with their moved days off) are not working days; a Saturday or
    Sunday that a government transfer decree made a working day is one; the administrator's
    overrides come first.

    Args:
        day: the date.

    Returns:
        True for a working day.
    """
    return legal_calendar.active().is_working_day(_as_date(day))


def add_working_days(day: date | str, days: int) -> date:
    """Move a number of working days from a date, not counting the date itself.

    ``add_working_days(d, 10)`` is the tenth working day after ``d``: the usual reading of a
    term "within 10 working days" counted from the day after registration. Negative values go
    back; 0 returns the date unchanged.

    Args:
        day: the start date.
        days: working days to move, at most 3660 either way.

    Returns:
        The resulting date.

    Raises:
        ValueError: when ``days`` is beyond the bound or the result leaves the calendar.
    """
    current = _as_date(day)
    remaining = _as_int(days, "days")
    if abs(remaining) > MAX_WORKING_DAYS:
        raise ValueError(f"add_working_days: at most {MAX_WORKING_DAYS} days either way")
    try:
        return legal_calendar.active().add_working_days(current, remaining)
    except OverflowError:
        raise ValueError("add_working_days: the result is outside the calendar") from None


def age_on(birth_date: date | str, on_date: date | str) -> int:
    """Full years of age on a date (a person born on 29 February turns a year older on 1 March).

    Args:
        birth_date: the date of birth.
        on_date: the date to compute the age on.

    Returns:
        The age in whole years (negative if ``on_date`` is before the birth).
    """
    born = _as_date(birth_date, "birth_date")
    on = _as_date(on_date, "on_date")
    years = on.year - born.year
    if (on.month, on.day) < (born.month, born.day):
        years -= 1
    return years


def iin_is_valid(value: object) -> bool:
    """Tell whether a value is a valid IIN (check digit, birth date and century digit)."""
    return is_valid_iin(value)


def iin_birth_date(value: str) -> date:
    """The birth date an IIN encodes; ValueError when the IIN is invalid."""
    return _iin_info(value).birth_date


def iin_sex(value: str) -> str:
    """The sex an IIN encodes, "male" or "female"; ValueError when the IIN is invalid."""
    return _iin_info(value).sex


def _iin_info(value: object) -> IinInfo:
    if not isinstance(value, str):
        raise ValueError("invalid IIN: must be exactly 12 digits")
    try:
        return validate_iin(value)
    except ValidationFailed as exc:
        # Scripts see plain ValueErrors; the message says which check failed.
        raise ValueError(str(exc)) from None


HELPERS: dict[str, object] = {
    "date": date,
    "datetime": datetime,
    "timedelta": timedelta,
    "Decimal": Decimal,
    "today": today,
    "now": now,
    "parse_date": parse_date,
    "add_days": add_days,
    "add_working_days": add_working_days,
    "is_working_day": is_working_day,
    "age_on": age_on,
    "iin_is_valid": iin_is_valid,
    "iin_birth_date": iin_birth_date,
    "iin_sex": iin_sex,
}


# --- guards -----------------------------------------------------------------------------------

_SEQUENCES = (str, bytes, list, tuple)
_SUBSCRIPTABLE = (dict, list, tuple, str, bytes, range)


def guarded_getattr(obj: object, name: str) -> object:
    """``obj.name`` for sandboxed code: no private names, no format strings, no frames."""
    if type(name) is not str:
        raise TypeError("attribute names must be text")
    if name.startswith("_"):
        raise AttributeError(f'"{name}" is an invalid attribute name because it starts with "_"')
    if name in ("format", "format_map"):
        raise AttributeError(f'"{name}" is not allowed: format strings can read attributes')
    if name in INSPECT_ATTRIBUTES:
        raise AttributeError(f'"{name}" is a restricted name')
    # RestrictedPython's own check refuses string.Formatter and the same names again.
    return safer_getattr_raise(obj, name)


def guarded_getitem(obj: object, key: object) -> object:
    """``obj[key]`` for sandboxed code: only on plain containers."""
    if not isinstance(obj, _SUBSCRIPTABLE):
        raise TypeError(f"'{type(obj).__name__}' object is not subscriptable in scripts")
    return obj[key]  # type: ignore[index]


def _sequence_limit(op: str, items: int) -> None:
    if items > MAX_SEQUENCE_ITEMS:
        raise SandboxLimitError(
            f"'{op}' would build a sequence of {items} items; the limit is {MAX_SEQUENCE_ITEMS}"
        )


def guarded_add(left: object, right: object) -> object:
    """``left + right``, refusing sequences beyond ``MAX_SEQUENCE_ITEMS``."""
    if isinstance(left, _SEQUENCES) and isinstance(right, _SEQUENCES):
        _sequence_limit("+", len(left) + len(right))
    return left + right  # type: ignore[operator]


def guarded_mul(left: object, right: object) -> object:
    """``left * right``, refusing repeated sequences and integers that would be huge."""
    if isinstance(left, int) and isinstance(right, _SEQUENCES):
        left, right = right, left
    if isinstance(left, _SEQUENCES) and isinstance(right, int):
        _sequence_limit("*", len(left) * max(right, 0))
    elif isinstance(left, int) and isinstance(right, int):
        bits = left.bit_length() + right.bit_length()
        if bits > MAX_INT_BITS:
            raise SandboxLimitError(f"'*' would build a {bits}-bit number")
    return left * right  # type: ignore[operator]


def _int_limit(op: str, bits: float) -> None:
    if bits > MAX_INT_BITS:
        raise SandboxLimitError(
            f"'{op}' would build a number of about {int(bits)} bits; the limit is {MAX_INT_BITS}"
        )


def guarded_pow(base: object, exponent: object, modulus: object = None) -> object:
    """``base ** exponent`` (and three-argument pow), refusing integers that would be huge."""
    if modulus is not None:
        # Modular exponentiation stays below the modulus.
        return pow(base, exponent, modulus)  # type: ignore[call-overload]
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0 and abs(base) > 1:
        _int_limit("**", exponent * math.log2(abs(base)))
    return base**exponent  # type: ignore[operator]


def guarded_lshift(value: object, shift: object) -> object:
    """``value << shift``, refusing integers that would be huge."""
    if isinstance(value, int) and isinstance(shift, int) and value:
        _int_limit("<<", value.bit_length() + shift)
    return value << shift  # type: ignore[operator]


_INPLACE: dict[str, Callable[[object, object], object]] = {
    "+=": guarded_add,
    "-=": operator.isub,
    "*=": guarded_mul,
    "/=": operator.itruediv,
    "//=": operator.ifloordiv,
    "%=": operator.imod,
    "**=": guarded_pow,
    "<<=": guarded_lshift,
    ">>=": operator.irshift,
    "|=": operator.ior,
    "^=": operator.ixor,
    "&=": operator.iand,
}


def guarded_inplacevar(op: str, target: object, value: object) -> object:
    """``target op= value`` for plain names, through the same guards as the binary operators."""
    try:
        function = _INPLACE[op]
    except KeyError:
        raise SyntaxError(f"the operator {op} is not supported in scripts") from None
    return function(target, value)


# round(x, n) with n far from zero computes 10 ** abs(n); no real rounding needs more digits.
MAX_ROUND_DIGITS = 400


def guarded_round(number: object, ndigits: object = None) -> object:
    """``round()`` refusing a number of digits beyond ``MAX_ROUND_DIGITS`` either way."""
    if ndigits is None:
        return round(number)  # type: ignore[call-overload]
    if isinstance(ndigits, int) and abs(ndigits) > MAX_ROUND_DIGITS:
        raise SandboxLimitError(
            f"round() to {ndigits} digits; the limit is {MAX_ROUND_DIGITS} either way"
        )
    return round(number, ndigits)  # type: ignore[call-overload]


def guarded_range(*args: int) -> range:
    """``range()`` refusing more than ``MAX_RANGE_ITEMS`` items."""
    result = range(*args)
    try:
        size = len(result)
    except OverflowError:
        size = MAX_RANGE_ITEMS + 1
    if size > MAX_RANGE_ITEMS:
        raise SandboxLimitError(f"range() of {size} items; the limit is {MAX_RANGE_ITEMS}")
    return result


def _apply(function: Callable[..., object], *args: object, **kwargs: object) -> object:
    # Calls with *args/**kwargs are compiled into _apply_(f, ...); nothing more to check here,
    # the callee is whatever the code could already reach.
    return function(*args, **kwargs)


GUARDS: dict[str, object] = {
    "_getattr_": guarded_getattr,
    "_getitem_": guarded_getitem,
    "_getiter_": iter,
    "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
    "_unpack_sequence_": guarded_unpack_sequence,
    "_write_": full_write_guard,
    "_inplacevar_": guarded_inplacevar,
    "_apply_": _apply,
    "_add_": guarded_add,
    "_mul_": guarded_mul,
    "_pow_": guarded_pow,
    "_lshift_": guarded_lshift,
}

# A chosen subset of Python's builtins: nothing that reaches types, frames, modules, files or
# the interpreter (no getattr, setattr, type, vars, globals, eval, exec, open, __import__).
_SAFE_BUILTINS: dict[str, object] = {
    "abs": abs,
    "all": all,
    "any": any,
    "bool": bool,
    "chr": chr,
    "dict": dict,
    "divmod": divmod,
    "enumerate": enumerate,
    "filter": filter,
    "float": float,
    "frozenset": frozenset,
    "hex": hex,
    "int": int,
    "isinstance": isinstance,
    "iter": iter,
    "len": len,
    "list": list,
    "map": map,
    "max": max,
    "min": min,
    "next": next,
    "oct": oct,
    "ord": ord,
    "pow": guarded_pow,
    "range": guarded_range,
    "repr": repr,
    "reversed": reversed,
    "round": guarded_round,
    "set": set,
    "slice": slice,
    "sorted": sorted,
    "str": str,
    "sum": sum,
    "tuple": tuple,
    "zip": zip,
    "None": None,
    "True": True,
    "False": False,
    "ArithmeticError": ArithmeticError,
    "AssertionError": AssertionError,
    "AttributeError": AttributeError,
    "Exception": Exception,
    "IndexError": IndexError,
    "KeyError": KeyError,
    "LookupError": LookupError,
    "NameError": NameError,
    "OverflowError": OverflowError,
    "RuntimeError": RuntimeError,
    "StopIteration": StopIteration,
    "TypeError": TypeError,
    "ValueError": ValueError,
    "ZeroDivisionError": ZeroDivisionError,
}

# The namespace sandboxed code falls back to after its globals (the task data it reads).
# Shared and never handed to the code itself: it cannot name "__builtins__".
SANDBOX_BUILTINS: dict[str, object] = {**_SAFE_BUILTINS, **HELPERS, **GUARDS}


def sandbox_globals(variables: dict[str, object]) -> dict[str, object]:
    """The globals for one run: the variables, with the sandbox's builtins behind them."""
    namespace: dict[str, object] = {"__builtins__": SANDBOX_BUILTINS}
    # Globals shadow builtins, so a variable called "_getattr_" would replace a guard; the
    # compiler never lets code read such names, and they are never passed either.
    for name, value in variables.items():
        if not name.startswith("_") or name == "_":
            namespace[name] = value
    return namespace
