"""SpiffWorkflow's script engine, backed by the restricted compiler and the worker pool.

SpiffWorkflow evaluates every expression field and runs every script through
``workflow.script_engine``; its default engine is plain ``eval``/``exec`` with full builtins.
Attach :func:`make_script_engine` to every workflow, including after each deserialize (the
engine is not serialized, and a restored workflow silently falls back to the default).

Errors: whatever the sandbox refuses or stops surfaces as a :class:`SandboxTaskException`,
a ``WorkflowTaskException`` (so SpiffWorkflow's own handlers and notes keep working) that
carries the original :class:`~engine.errors.ScriptError` as ``script_error`` and as its
``__cause__``, with the element id and the line number filled in. :func:`script_error_of`
digs it out of any exception SpiffWorkflow may have wrapped it in (DMN rules, for example,
wrap once more).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.script_engine.python_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment
from SpiffWorkflow.exceptions import SpiffWorkflowException

from engine.clock import Clock
from engine.errors import ScriptError
from engine.sandbox import inprocess
from engine.sandbox.compiler import (
    EXPRESSION_FILENAME,
    CompiledCode,
    compile_expression,
    compile_script,
)
from engine.sandbox.pool import SandboxPool, get_pool


class SandboxTaskException(WorkflowTaskException):
    """A task's script or expression failed in the sandbox; ``script_error`` says how."""

    def __init__(self, message: str, *, task: Any, script_error: ScriptError, source: str) -> None:
        line = script_error.line
        lines = source.splitlines()
        error_line = lines[line - 1] if line is not None and 0 < line <= len(lines) else ""
        super().__init__(
            message,
            task=task,
            exception=script_error,
            # 0, as SpiffWorkflow itself uses, when the line is unknown: its handlers compare it.
            line_number=line or 0,
            error_line=error_line,
        )
        self.script_error = script_error


def script_error_of(exc: BaseException | None) -> ScriptError | None:
    """Find the sandbox's ScriptError behind an exception SpiffWorkflow raised, if there is one.

    Args:
        exc: any exception caught around a workflow step.

    Returns:
        The ScriptError (kind, line, element id, message), or None when the failure was not
        the sandbox's.
    """
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, ScriptError):
            return exc
        found = getattr(exc, "script_error", None)
        if isinstance(found, ScriptError):
            return found
        # "raise ... from None" hides the context on purpose; honour that as tracebacks do.
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    return None


def evaluate_in_process(code: CompiledCode, variables: dict[str, Any], now: Any = None) -> object:
    """Evaluate an in-process-safe expression here (engine/sandbox/inprocess.py).

    Args:
        code: a compiled expression whose ``in_process_safe`` is True.
        variables: the names it reads.
        now: the clock time for ``now()``/``today()`` (None: the real time).

    Returns:
        The expression's value.

    Raises:
        NeedsPool: its inputs or a value it built passed the in-process limits.
        ScriptError: kind "error" (or "memory" when a guard refused), with the line.
    """
    if not code.in_process_safe:
        raise ValueError("only in-process-safe expressions may be evaluated in-process")
    return inprocess.evaluate(code, variables, now)


def _variables(
    code: CompiledCode, context: dict[str, Any], external: dict[str, Any] | None
) -> dict[str, Any]:
    # Task data shadows external context (data objects, DMN's input value), as in
    # SpiffWorkflow's own environment; only what the code reads is looked up or sent.
    variables: dict[str, Any] = {}
    for name in code.names_read:
        if name in context:
            variables[name] = context[name]
        elif external and name in external:
            variables[name] = external[name]
    return variables


class RestrictedEnvironment(BasePythonScriptEngineEnvironment):
    """Evaluate and execute with the restricted compiler; runaway-capable code in the pool.

    Args:
        pool: the pool to use, or a function returning it (default: :func:`get_pool`).
        clock: the engine clock behind ``now()``/``today()`` (default: the real time).
    """

    def __init__(
        self,
        *,
        pool: SandboxPool | Callable[[], SandboxPool] | None = None,
        clock: Clock | None = None,
    ) -> None:
        # The base class's globals are for eval-based environments; ours live in helpers.py.
        super().__init__({})
        self._pool = pool
        self.clock = clock

    def pool(self) -> SandboxPool:
        """The worker pool this environment sends code to."""
        if self._pool is None:
            return get_pool()
        if isinstance(self._pool, SandboxPool):
            return self._pool
        return self._pool()

    def _now(self) -> Any:
        return self.clock.now() if self.clock is not None else None

    def evaluate(
        self,
        expression: str,
        context: dict[str, Any],
        external_context: dict[str, Any] | None = None,
    ) -> object:
        """Evaluate an expression against task data (and SpiffWorkflow's external context).

        Raises:
            ScriptError: refused, syntax, error, timeout or memory.
        """
        code = compile_expression(expression)
        variables = _variables(code, context, external_context)
        if code.in_process_safe:
            with contextlib.suppress(inprocess.NeedsPool):
                return inprocess.evaluate(code, variables, self._now())
        return self.pool().evaluate(code, variables, now=self._now())

    def execute(
        self,
        script: str,
        context: dict[str, Any],
        external_context: dict[str, Any] | None = None,
    ) -> bool:
        """Run a script and apply what it changed to ``context`` (the task data): here when
        it is straight-line code within the in-process limits, else in the pool.

        Assigned and mutated variables are replaced with their new values and deleted ones are
        removed. Names that came only from the external context are not copied into task data,
        as SpiffWorkflow's own environment drops them after the script.

        Raises:
            ScriptError: refused, syntax, error, timeout or memory.
        """
        external = external_context or {}
        code = compile_script(script)
        variables = _variables(code, context, external)
        outcome = None
        if code.in_process_safe:
            with contextlib.suppress(inprocess.NeedsPool):
                outcome = inprocess.execute(code, variables, self._now())
        if outcome is None:
            outcome = self.pool().execute(code, variables, now=self._now())
        for name, value in outcome.changed.items():
            if name in external and name not in context:
                continue
            context[name] = value
        for name in outcome.deleted:
            context.pop(name, None)
        return True

    def call_service(self, context: dict[str, Any], **kwargs: Any) -> object:
        raise NotImplementedError("service tasks are not available in this engine")


class QorgauScriptEngine(PythonScriptEngine):
    """SpiffWorkflow's script engine with the sandbox behind it (see the module docstring)."""

    def __init__(
        self,
        environment: RestrictedEnvironment | None = None,
        *,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(environment=environment or RestrictedEnvironment(clock=clock))

    def validate(self, expression: str) -> None:
        """Compile an expression; SpiffWorkflow's DMN engine relies on SyntaxError here.

        Raises:
            SyntaxError: for invalid Python, with its line number (the ScriptError as cause).
            ScriptError: kind "refused" for what the policy forbids.
        """
        try:
            compile_expression(expression)
        except ScriptError as err:
            if err.kind != "syntax":
                raise
            line = err.line or 1
            raise SyntaxError(err.message, (EXPRESSION_FILENAME, line, 1, expression)) from err

    def evaluate(
        self, task: Any, expression: str, external_context: dict[str, Any] | None = None
    ) -> object:
        try:
            return self.environment.evaluate(expression, task.data, external_context)
        except ScriptError as err:
            raise _task_exception(
                task, err, expression, f"Error evaluating expression '{expression}'"
            ) from err
        except SpiffWorkflowException as exc:
            exc.add_note(f"Error evaluating expression '{expression}'")
            raise
        except Exception as exc:
            raise WorkflowTaskException(
                f"Error evaluating expression '{expression}'", task=task, exception=exc
            ) from exc

    def execute(
        self, task: Any, script: str, external_context: dict[str, Any] | None = None
    ) -> bool:
        try:
            return bool(self.environment.execute(script, task.data, external_context or {}))
        except ScriptError as err:
            raise _task_exception(task, err, script, "Error executing script") from err
        except Exception as exc:
            raise self.create_task_exec_exception(task, script, exc) from exc

    def call_service(self, task: Any, **kwargs: Any) -> object:
        raise WorkflowTaskException(
            "service tasks are not available in this engine",
            task=task,
            exception=NotImplementedError("call_service"),
        )


def _task_exception(task: Any, err: ScriptError, source: str, prefix: str) -> SandboxTaskException:
    if err.element_id is None:
        err.element_id = getattr(task.task_spec, "bpmn_id", None)
    return SandboxTaskException(f"{prefix}: {err}", task=task, script_error=err, source=source)


def make_script_engine(
    *, clock: Clock | None = None, pool: SandboxPool | None = None
) -> QorgauScriptEngine:
    """The script engine to set on every workflow (again after every deserialize).

    Args:
        clock: the engine clock behind ``now()``/``today()`` in scripts.
        pool: a specific worker pool (tests); default: the process's shared pool.

    Returns:
        A new engine; cheap to create, compiled code and workers are shared.
    """
    return QorgauScriptEngine(RestrictedEnvironment(pool=pool, clock=clock))
