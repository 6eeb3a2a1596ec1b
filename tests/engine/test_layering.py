"""engine/ is plain Python: it never imports Flask, Werkzeug or the web package."""

from __future__ import annotations

import ast
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[2] / "engine"
FORBIDDEN = ("flask", "werkzeug", "web", "jinja2")


def test_engine_never_imports_the_web_layer():
    offenders = []
    for path in ENGINE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                if name.split(".")[0] in FORBIDDEN:
                    offenders.append(f"{path.relative_to(ENGINE.parent)}:{node.lineno} {name}")
    assert offenders == []


def test_only_the_spiff_package_touches_the_workflow_library():
    offenders = []
    for path in ENGINE.rglob("*.py"):
        rel = path.relative_to(ENGINE)
        if rel.parts[0] in {"spiff", "sandbox"}:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("SpiffWorkflow"):
                offenders.append(f"{rel}:{node.lineno}")
            if isinstance(node, ast.Import) and any(
                a.name.startswith("SpiffWorkflow") for a in node.names
            ):
                offenders.append(f"{rel}:{node.lineno}")
    assert offenders == []
