"""Run bounded code in the calling process, falling back to the worker pool past small limits.

Most of what a process evaluates is tiny: a gateway condition such as ``decision ==
"approve"``, a script that sets ``order_template`` and ``order_subject``. Sending each to a
worker process costs a round trip that, measured on a two-core machine between engine steps,
takes 0.3 to 0.6 ms, more than the whole evaluation. So code the compiler marked
``in_process_safe`` (straight-line, calling only functions bounded by their arguments; see
compiler.py) runs here, in its ``bounded`` form, under three limits that together bound the
memory and time of any such run:

1. the values it reads are small: at most ``MAX_INPUT_UNITS`` characters, items and digits in
   all, nested at most ``MAX_INPUT_DEPTH`` deep, of the types task data may hold;
2. every value it builds, whether by a call, an operator or an f-string, is checked as it is
   built: at most ``MAX_ITEMS`` characters or items, integers of at most ``MAX_INT_BITS``
   bits, Decimals of at most ``MAX_INT_BITS`` digits of exponent; ``+`` and ``*`` check the
   size before building;
3. the code is at most ``compiler.MAX_IN_PROCESS_CHARS`` characters, so it builds at most a
   few hundred values, each bounded by (2) from inputs bounded by (1).

Straight-line code cannot loop, so its time is bounded the same way. Past any limit the code
raises nothing to its author: the run is dropped and the same code goes to the pool, which has
the full limits, the memory cap and the time limit. Nothing is lost by starting here, since a
run changes nothing outside its own namespace (inputs are never mutated: the policy allows no
item or attribute stores and no mutating method), and the result is the pool's result: a
script's new values come back through the same wire encoding the pool uses.

A note on what this closes: before these limits, an in-process condition such as nested
``str(x.split())`` grew about threefold per level, so a 200-character condition could take
gigabytes in the web process.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from engine.errors import ScriptError
from engine.sandbox.compiler import BOUND_GUARD, CompiledCode
from engine.sandbox.helpers import (
    SANDBOX_BUILTINS,
    SandboxLimitError,
    frozen_now,
    sandbox_globals,
)
from engine.sandbox.pool import (
    ScriptOutcome,
    WireError,
    _describe,
    _error_line,
    from_wire,
    to_wire,
)

# Characters, items and digits, in all, of the values one run may read.
MAX_INPUT_UNITS = 4096
MAX_INPUT_DEPTH = 32
# Characters or items of any one value a run builds.
MAX_ITEMS = 4096
MAX_INT_BITS = 4096

_SIZED = (str, bytes, list, tuple, dict, set, frozenset)
_SCALARS = (bool, float, date, datetime, timedelta)
_CONTAINERS = (list, tuple)


class NeedsPool(Exception):
    """A limit of in-process running was reached: run the same code in the pool."""


def _check(value: object) -> object:
    kind = type(value)
    if kind in _SIZED:
        if len(value) > MAX_ITEMS:  # type: ignore[arg-type]
            raise NeedsPool
    elif kind is int:
        if value.bit_length() > MAX_INT_BITS:  # type: ignore[attr-defined]
            raise NeedsPool
    elif kind is Decimal and _huge_decimal(value):  # type: ignore[arg-type]
        raise NeedsPool
    return value


def _huge_decimal(value: Decimal) -> bool:
    # int(Decimal("1e10000000")) would build a ten-million-digit integer.
    return value.is_finite() and abs(value.adjusted()) > MAX_INT_BITS


def _add(left: object, right: object) -> object:
    sequences = isinstance(left, _SIZED) and isinstance(right, _SIZED)
    if sequences and len(left) + len(right) > MAX_ITEMS:  # type: ignore[arg-type]
        raise NeedsPool
    return left + right  # type: ignore[operator]


def _mul(left: object, right: object) -> object:
    if isinstance(left, int) and isinstance(right, _SIZED):
        left, right = right, left
    if isinstance(left, _SIZED) and isinstance(right, int):
        too_big = len(left) * max(right, 0) > MAX_ITEMS
    elif isinstance(left, int) and isinstance(right, int):
        too_big = left.bit_length() + right.bit_length() > MAX_INT_BITS
    else:
        too_big = False
    if too_big:
        raise NeedsPool
    return left * right  # type: ignore[operator]


# The pool's builtins with the checks above; the names cannot be spelled by the code itself.
IN_PROCESS_BUILTINS: dict[str, object] = {
    **SANDBOX_BUILTINS,
    BOUND_GUARD: _check,
    "_add_": _add,
    "_mul_": _mul,
}


def small_enough(variables: dict[str, Any]) -> bool:
    """Whether the values a run reads are within ``MAX_INPUT_UNITS`` and of task data's types."""
    budget = MAX_INPUT_UNITS
    stack: list[tuple[object, int]] = [(v, 0) for v in variables.values()]
    while stack:
        value, depth = stack.pop()
        kind = type(value)
        if value is None or kind in _SCALARS:
            budget -= 1
        elif kind is str:
            budget -= 1 + len(value)  # type: ignore[arg-type]
        elif kind is int:
            budget -= 1 + value.bit_length() // 64  # type: ignore[attr-defined]
        elif kind is Decimal:
            if _huge_decimal(value):  # type: ignore[arg-type]
                return False
            budget -= 1 + len(value.as_tuple().digits)  # type: ignore[attr-defined]
        elif kind in _CONTAINERS or kind is dict:
            if depth >= MAX_INPUT_DEPTH:
                return False
            items = value.values() if kind is dict else value  # type: ignore[attr-defined]
            budget -= 1 + len(value)  # type: ignore[arg-type]
            if budget < 0:
                return False
            stack.extend((item, depth + 1) for item in items)  # type: ignore[union-attr]
        else:
            return False  # not task data: the pool says what is wrong with it
        if budget < 0:
            return False
    return True


def _namespace(variables: dict[str, Any]) -> dict[str, Any]:
    namespace = sandbox_globals(variables)
    namespace["__builtins__"] = IN_PROCESS_BUILTINS
    return namespace


def _sent(code: CompiledCode, variables: dict[str, Any]) -> dict[str, Any]:
    """What the pool would be sent: only the names the code reads."""
    return {
        name: variables[name]
        for name in code.names_read
        if name in variables and not name.startswith("_")
    }


def _run(
    code: CompiledCode, variables: dict[str, Any], now: datetime | None
) -> tuple[dict[str, Any], object]:
    """Run bounded code on the variables it reads (``_sent``); its namespace afterwards and
    (for an expression) its value."""
    if code.bounded is None:
        raise ValueError("only in-process-safe code may run in-process")
    if not small_enough(variables):
        raise NeedsPool
    namespace = _namespace(variables)
    value = None
    with frozen_now(now):
        try:
            if code.kind == "expression":
                value = eval(code.bounded, namespace)  # noqa: S307 - restricted, bounded
            else:
                exec(code.bounded, namespace)  # noqa: S102 - restricted bytecode, bounded
        except NeedsPool:
            raise
        except (SandboxLimitError, MemoryError) as exc:
            message = str(exc) if isinstance(exc, SandboxLimitError) else "out of memory"
            raise ScriptError(message, line=_error_line(exc) or 1, kind="memory") from exc
        except Exception as exc:
            raise ScriptError(_describe(exc), line=_error_line(exc) or 1, kind="error") from exc
    return namespace, value


def evaluate(code: CompiledCode, variables: dict[str, Any], now: datetime | None = None) -> object:
    """Evaluate an in-process-safe expression here.

    Raises:
        NeedsPool: a limit was reached; evaluate it in the pool instead.
        ScriptError: kind "error" (or "memory" when a guard refused), with the line.
    """
    if code.kind != "expression":
        raise ValueError("evaluate takes an expression")
    return _run(code, _sent(code, variables), now)[1]


def execute(
    code: CompiledCode, variables: dict[str, Any], now: datetime | None = None
) -> ScriptOutcome:
    """Run an in-process-safe script here; what it changed, as the pool would report it.

    Raises:
        NeedsPool: a limit was reached; run it in the pool instead.
        ScriptError: as from the pool (a value scripts cannot exchange is kind "error").
    """
    if code.kind != "script":
        raise ValueError("execute takes a script")
    variables = _sent(code, variables)
    namespace, _ = _run(code, variables, now)
    changed: dict[str, Any] = {}
    deleted = []
    for name in code.names_assigned:
        if name not in namespace:
            continue  # assigned only in a branch not taken
        value = namespace[name]
        if callable(value):
            # A helper aliased to a variable is not data: as in the pool, a variable
            # replaced by one is gone.
            if name in variables:
                deleted.append(name)
            continue
        if name in variables and value is variables[name]:
            continue
        try:
            # Through the wire form, as from the pool: the same types refused, and a copy,
            # so task data never shares a list or dict with another variable.
            changed[name] = from_wire(to_wire(value, f"variable {name!r}"))
        except WireError as exc:
            raise ScriptError(_describe(exc), kind="error") from None
    return ScriptOutcome(changed=changed, deleted=frozenset(deleted))
