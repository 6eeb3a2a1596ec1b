"""Compile analysts' scripts and expressions with RestrictedPython's restricted compiler.

Every expression field in a process (script tasks, gateway conditions, timer expressions,
multi-instance expressions, message payloads, DMN cells) is Python written by someone who
uploads definitions, not by us. Substituting builtins is escapable (``().__class__.__base__
.__subclasses__()`` reaches ``os``), so the code is compiled by RestrictedPython's
transformer, which rewrites attribute, item, iteration and write access into calls to guards
(see ``helpers.GUARDS``) and refuses names and attributes that start with ``_``. Our policy
adds: no imports, no class definitions, no calls to introspection builtins, no
``format``/``format_map`` (format strings walk attributes), and it routes ``+``, ``*``,
``**`` and ``<<`` through guards so the obvious memory bombs fail with a clear message.

Compilation also decides whether code may run in the calling process (``in_process_safe``):
expressions and straight-line scripts (assignments and ``if``, no loops, comprehensions,
lambdas or definitions) that call only functions bounded by their arguments. Such code is
compiled a second time (``bounded``) with every call, operator and f-string result passed
through a size check; see engine/sandbox/inprocess.py for the limits that make the calling
process safe. Everything else runs in the worker pool, which has a time limit and a memory cap.
"""

from __future__ import annotations

import ast
import re
import types
from dataclasses import dataclass
from functools import lru_cache

from RestrictedPython import (
    RestrictingNodeTransformer,
    compile_restricted_eval,
    compile_restricted_exec,
)

from engine.errors import ScriptError

EXPRESSION_FILENAME = "<expression>"
SCRIPT_FILENAME = "<script>"

# Definitions are uploaded by analysts; a 100 KB script is already far beyond any real one, and
# compiling megabytes of source would itself stall the process that deploys it.
MAX_SOURCE_CHARS = 100_000
# Longer expressions go to the pool even when every node is harmless: the in-process path is
# for the short conditions and DMN cells that make up the bulk of evaluations.
MAX_IN_PROCESS_CHARS = 2_000

# Binary operators whose result can be far larger than their operands; they are compiled into
# calls to guards that check sizes first (helpers.guarded_add etc.).
# The in-process size check wrapped around every value bounded code builds (inprocess.py).
BOUND_GUARD = "_bound_"

GUARDED_OPERATORS: dict[type[ast.operator], str] = {
    ast.Add: "_add_",
    ast.Mult: "_mul_",
    ast.Pow: "_pow_",
    ast.LShift: "_lshift_",
}

# Calling these is refused at compile time. They are not in the sandbox's builtins either, so
# a call would fail anyway; refusing it up front gives the analyst the reason at deploy time.
# Only calls are refused: a form field may well be called ``type`` or ``input``.
FORBIDDEN_CALLS = frozenset(
    {
        "open",
        "getattr",
        "setattr",
        "delattr",
        "hasattr",
        "type",
        "vars",
        "globals",
        "locals",
        "dir",
        "eval",
        "exec",
        "compile",
        "input",
        "breakpoint",
        "help",
        "memoryview",
        "object",
        "super",
        "classmethod",
        "staticmethod",
        "property",
        "exit",
        "quit",
        "print",
        "format",
    }
)

# str.format and format_map resolve "{0.__class__}" inside the string, past the compiler.
FORBIDDEN_ATTRIBUTES = frozenset({"format", "format_map"})

# Functions whose cost is bounded by the size of their arguments, so an expression calling only
# these (and no loops, comprehensions or lambdas) cannot run away in the calling process.
# Helpers listed here are bounded by construction (see helpers.py); ``round`` is the guarded
# one (round(5, -10**9) would compute ten to the billionth). Not here: ``sorted``, whose
# comparisons of nested values cost far more than its arguments' size suggests.
CHEAP_FUNCTIONS = frozenset(
    {
        "len",
        "str",
        "int",
        "float",
        "bool",
        "abs",
        "min",
        "max",
        "round",
        "any",
        "all",
        "isinstance",
        "date",
        "datetime",
        "timedelta",
        "Decimal",
        "today",
        "now",
        "parse_date",
        "add_days",
        "add_working_days",
        "is_working_day",
        "age_on",
        "iin_is_valid",
        "iin_birth_date",
        "iin_sex",
    }
)

# Methods with output no larger than their receiver and cost linear in it. Not here on purpose:
# join/replace/ljust/center/zfill/expandtabs (output can be the product of two inputs or of an
# argument), and every mutating method (in-process evaluation must leave task data untouched).
CHEAP_METHODS = frozenset(
    {
        "get",
        "keys",
        "values",
        "items",
        "count",
        "index",
        "startswith",
        "endswith",
        "lower",
        "upper",
        "strip",
        "lstrip",
        "rstrip",
        "split",
        "isdigit",
        "isalpha",
        "isoformat",
        "weekday",
        "isoweekday",
        "date",
    }
)

# Nodes an in-process expression may contain; calls, f-strings and binary operators get a
# closer look in _node_bounded.
_IN_PROCESS_NODES = (
    ast.Expression,
    ast.operator,  # which operators, visit_BinOp decides
    ast.Constant,
    ast.Name,
    ast.Load,
    ast.Attribute,
    ast.Subscript,
    ast.Slice,
    ast.Tuple,
    ast.List,
    ast.Dict,
    ast.Set,
    ast.BoolOp,
    ast.boolop,
    ast.Compare,
    ast.cmpop,
    ast.UnaryOp,
    ast.unaryop,
    ast.BinOp,
    ast.IfExp,
    ast.JoinedStr,
    ast.FormattedValue,
    ast.Call,
    ast.keyword,
)

# ``%`` on a string is printf formatting: "%999999999d" % 1 allocates a gigabyte; ``**`` and
# ``<<`` grow numbers exponentially. The others stay within a small multiple of their operands,
# ``*`` because in-process code gets a guard that checks the product's size before building it.
_IN_PROCESS_OPERATORS = (
    ast.Add,
    ast.Mult,
    ast.Sub,
    ast.Div,
    ast.FloorDiv,
    ast.BitAnd,
    ast.BitOr,
    ast.BitXor,
    ast.RShift,
)

_LINE_PREFIX = re.compile(r"^Line (\d+|None): ")


@dataclass(frozen=True)
class CompiledCode:
    """A script or expression that passed the restricted compiler.

    Attributes:
        kind: "expression" or "script".
        source: the text as written by the analyst.
        code: the restricted bytecode; run it only with the sandbox's globals.
        names_read: names the code loads: the variables worth sending to it.
        names_assigned: names the code binds or deletes at any level.
        in_process_safe: True for code that may run in the calling process (see module
            docstring).
        bounded: when it may, the code compiled with the size check around every value it
            builds; run it only through engine/sandbox/inprocess.py.
    """

    kind: str
    source: str
    code: types.CodeType
    names_read: frozenset[str]
    names_assigned: frozenset[str]
    in_process_safe: bool
    bounded: types.CodeType | None = None


class _QorgauPolicy(RestrictingNodeTransformer):
    """RestrictedPython's policy plus the refusals and guards described in the module docstring."""

    def visit_Import(self, node: ast.Import) -> ast.AST:  # noqa: N802 - ast visitor protocol
        self.error(node, "import is not allowed: scripts can use only the built-in helpers")
        return node

    def visit_ImportFrom(self, node: ast.ImportFrom) -> ast.AST:  # noqa: N802
        self.error(node, "import is not allowed: scripts can use only the built-in helpers")
        return node

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:  # noqa: N802
        self.error(node, f'class definitions are not allowed ("{node.name}")')
        return node

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:  # noqa: N802
        if node.attr in FORBIDDEN_ATTRIBUTES:
            self.error(
                node,
                f'"{node.attr}" is not allowed: format strings can read attributes; '
                "use an f-string",
            )
        return super().visit_Attribute(node)

    def visit_Call(self, node: ast.Call) -> ast.AST:  # noqa: N802
        if isinstance(node.func, ast.Name) and node.func.id in FORBIDDEN_CALLS:
            self.error(node, f'calling "{node.func.id}" is not allowed in scripts')
        return super().visit_Call(node)

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:  # noqa: N802
        node = self.node_contents_visit(node)
        guard = GUARDED_OPERATORS.get(type(node.op))
        if guard is None:
            return node
        call = ast.Call(func=ast.Name(guard, ast.Load()), args=[node.left, node.right], keywords=[])
        ast.copy_location(call, node)
        ast.copy_location(call.func, node)
        return call


def _checked(node: ast.AST) -> ast.Call:
    call = ast.Call(func=ast.Name(BOUND_GUARD, ast.Load()), args=[node], keywords=[])
    ast.copy_location(call, node)
    ast.copy_location(call.func, node)
    return call


class _InProcessPolicy(_QorgauPolicy):
    """The same policy, with the value of every call, operator and f-string passed through
    the in-process size check: nothing the code builds can exceed it unnoticed."""

    def visit_Call(self, node: ast.Call) -> ast.AST:  # noqa: N802
        return _checked(super().visit_Call(node))

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:  # noqa: N802
        return _checked(super().visit_BinOp(node))

    def visit_JoinedStr(self, node: ast.JoinedStr) -> ast.AST:  # noqa: N802
        return _checked(self.node_contents_visit(node))


def _node_bounded(node: ast.AST) -> bool:
    if not isinstance(node, _IN_PROCESS_NODES):
        return False
    if isinstance(node, ast.BinOp):
        return isinstance(node.op, _IN_PROCESS_OPERATORS)
    if isinstance(node, ast.FormattedValue):
        # A format spec carries a width ("{x:>999999999}"), which allocates.
        return node.format_spec is None
    if isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Name):
            cheap = func.id in CHEAP_FUNCTIONS
        elif isinstance(func, ast.Attribute):
            cheap = func.attr in CHEAP_METHODS
        else:
            cheap = False
        unpacked = any(isinstance(a, ast.Starred) for a in node.args) or any(
            k.arg is None for k in node.keywords
        )
        return cheap and not unpacked
    return True


def _bounded(tree: ast.AST) -> bool:
    """Whether an expression is bounded in time and memory by its inputs (every node is)."""
    # Each node's check is local, so a flat walk does it without recursion.
    return all(_node_bounded(node) for node in ast.walk(tree))


# Statements of a straight-line script: each runs at most once.
_SCRIPT_STATEMENTS = (ast.Module, ast.Assign, ast.If, ast.Pass, ast.Store)


def _script_node_bounded(node: ast.AST) -> bool:
    if isinstance(node, ast.Assign):
        # Plain names only: no item or attribute stores, no unpacking.
        return all(isinstance(target, ast.Name) for target in node.targets)
    if isinstance(node, ast.Expr):
        return isinstance(node.value, ast.Constant)  # a string used as a comment
    if isinstance(node, _SCRIPT_STATEMENTS):
        return True
    return not isinstance(node, ast.Expression) and _node_bounded(node)


def _bounded_script(tree: ast.AST) -> bool:
    """Whether a script is straight-line code over bounded expressions."""
    return all(_script_node_bounded(node) for node in ast.walk(tree))


def _names(tree: ast.AST) -> tuple[frozenset[str], frozenset[str]]:
    read: set[str] = set()
    assigned: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            # A name being deleted must be sent to be deleted; a Store is a pure write.
            if not isinstance(node.ctx, ast.Store):
                read.add(node.id)
            if not isinstance(node.ctx, ast.Load):
                assigned.add(node.id)
        elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            # "n += 1" reads n, although its target is a Store.
            read.add(node.target.id)
        elif isinstance(node, (ast.FunctionDef, ast.ExceptHandler)) and node.name:
            assigned.add(node.name)
    return frozenset(read), frozenset(assigned)


def _refusal(errors: tuple[str, ...] | list[str]) -> ScriptError:
    line: int | None = None
    parts = []
    for error in errors:
        match = _LINE_PREFIX.match(error)
        if match is None:
            parts.append(error)
            continue
        number = int(match.group(1)) if match.group(1) != "None" else None
        if line is None:
            line = number
        text = error[match.end() :].rstrip(".")
        parts.append(f"line {number}: {text}" if number is not None else text)
    return ScriptError("; ".join(parts), line=line, kind="refused")


def _compile(source: str, kind: str) -> CompiledCode:
    if not isinstance(source, str):
        raise ScriptError(f"the {kind} must be text", kind="syntax")
    if len(source) > MAX_SOURCE_CHARS:
        raise ScriptError(
            f"the {kind} is {len(source)} characters long; the limit is {MAX_SOURCE_CHARS}",
            kind="refused",
        )
    mode = "eval" if kind == "expression" else "exec"
    filename = EXPRESSION_FILENAME if kind == "expression" else SCRIPT_FILENAME
    # Expressions come from XML attributes and DMN cells, often with surrounding whitespace
    # or newlines that eval mode would reject as an indentation error.
    text = source.strip() if kind == "expression" else source
    try:
        tree = ast.parse(text, filename, mode)
    except SyntaxError as exc:
        line = exc.lineno
        where = f"line {line}: " if line is not None else ""
        raise ScriptError(f"{where}{exc.msg}", line=line, kind="syntax") from None
    except (ValueError, MemoryError, RecursionError) as exc:
        # ValueError: NUL bytes; the others: pathologically nested source.
        raise ScriptError(f"the {kind} cannot be parsed: {exc}", kind="syntax") from None
    names_read, names_assigned = _names(tree)
    in_process_safe = False
    bounded = None
    compile_restricted = compile_restricted_eval if mode == "eval" else compile_restricted_exec
    try:
        if len(text) <= MAX_IN_PROCESS_CHARS:
            in_process_safe = _bounded(tree) if kind == "expression" else _bounded_script(tree)
        if in_process_safe:
            # The transformer rewrites the tree it is given: the second compile parses anew.
            checked = compile_restricted(
                ast.parse(text, filename, mode), filename, policy=_InProcessPolicy
            )
            bounded = checked.code if not checked.errors else None
            in_process_safe = bounded is not None
        result = compile_restricted(tree, filename, policy=_QorgauPolicy)
    except RecursionError:
        # RestrictedPython's transformer recurses a few frames per nesting level, so about 200
        # levels ("a+a+...+a" with 200 terms) is the practical limit; no real expression nests
        # that deep.
        raise ScriptError(f"the {kind} is nested too deeply", kind="refused") from None
    if result.errors or result.code is None:
        raise _refusal(tuple(result.errors) or ("the code was refused",))
    return CompiledCode(
        kind=kind,
        source=source,
        code=result.code,
        names_read=names_read,
        names_assigned=names_assigned,
        in_process_safe=in_process_safe,
        bounded=bounded,
    )


@lru_cache(maxsize=4096)
def compile_expression(source: str) -> CompiledCode:
    """Compile an expression (a condition, a timer value, a DMN cell) under the sandbox policy.

    Args:
        source: the expression text; surrounding whitespace is ignored.

    Returns:
        The compiled expression, cached by source.

    Raises:
        ScriptError: kind "syntax" for invalid Python, kind "refused" for what the policy
            forbids; both with the line number and a message saying what and why.
    """
    return _compile(source, "expression")


@lru_cache(maxsize=1024)
def compile_script(source: str) -> CompiledCode:
    """Compile a script (a script task's body) under the sandbox policy.

    Args:
        source: the script text.

    Returns:
        The compiled script, cached by source.

    Raises:
        ScriptError: kind "syntax" or "refused", as for :func:`compile_expression`.
    """
    return _compile(source, "script")
