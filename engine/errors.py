"""The engine's errors: one root, each with a stable code and a retry hint.

The web layer maps them to HTTP statuses in one table; anything else reaching it is a bug.
"""

from __future__ import annotations

from dataclasses import dataclass


class EngineError(Exception):
    """Root of every error the engine raises on purpose."""

    code = "engine_error"
    retryable = False

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def __str__(self) -> str:
        return self.message


class NotFound(EngineError):
    code = "not_found"


class Forbidden(EngineError):
    code = "forbidden"


class Conflict(EngineError):
    """Another writer changed the same thing first; reload and try again."""

    code = "conflict"
    retryable = True


class InvalidTransition(EngineError):
    """The object is not in a state that allows this action (e.g. a task already completed)."""

    code = "invalid_transition"


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class ValidationFailed(EngineError):
    """Input failed validation; ``errors`` names every field and why."""

    code = "validation_failed"

    def __init__(self, message: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(message)
        self.errors = list(errors or [])

    def __str__(self) -> str:
        if not self.errors:
            return self.message
        return f"{self.message}: " + "; ".join(str(e) for e in self.errors)


class ScriptError(EngineError):
    """A script or expression failed, was refused by the sandbox, or ran away."""

    code = "script_error"

    def __init__(
        self,
        message: str,
        *,
        element_id: str | None = None,
        line: int | None = None,
        kind: str = "error",
    ) -> None:
        super().__init__(message)
        self.element_id = element_id
        self.line = line
        self.kind = kind  # error | refused | timeout | memory


@dataclass(frozen=True)
class Problem:
    """One problem found in a definition file."""

    file: str
    line: int | None
    element_id: str | None
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        element = f" [{self.element_id}]" if self.element_id else ""
        return f"{where}:{element} {self.message}"


class DeployError(EngineError):
    """Definitions were refused; nothing was deployed. ``problems`` lists each one."""

    code = "deploy_error"

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the definitions")
        self.problems = list(problems)

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)
