"""The sandbox for analysts' scripts and expressions.

``compiler`` compiles with RestrictedPython under our policy; ``helpers`` is everything the
code can see; ``pool`` runs code in worker processes with a time limit and a memory cap;
``inprocess`` runs straight-line code in the calling process, size-checked value by value,
and hands it to the pool past its limits; ``environment`` plugs all of it into SpiffWorkflow.

The SpiffWorkflow-facing names are imported on first use: worker processes import this
package and have no use for SpiffWorkflow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.sandbox.compiler import CompiledCode, compile_expression, compile_script
from engine.sandbox.helpers import HELPERS
from engine.sandbox.pool import SandboxPool, ScriptOutcome, get_pool

if TYPE_CHECKING:
    from engine.sandbox.environment import (
        QorgauScriptEngine,
        RestrictedEnvironment,
        SandboxTaskException,
        make_script_engine,
        script_error_of,
    )

_ENVIRONMENT_NAMES = frozenset(
    {
        "QorgauScriptEngine",
        "RestrictedEnvironment",
        "SandboxTaskException",
        "make_script_engine",
        "script_error_of",
    }
)

__all__ = [
    "HELPERS",
    "CompiledCode",
    "QorgauScriptEngine",
    "RestrictedEnvironment",
    "SandboxPool",
    "SandboxTaskException",
    "ScriptOutcome",
    "compile_expression",
    "compile_script",
    "get_pool",
    "make_script_engine",
    "script_error_of",
]


def __getattr__(name: str) -> Any:
    if name in _ENVIRONMENT_NAMES:
        from engine.sandbox import environment

        return getattr(environment, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
