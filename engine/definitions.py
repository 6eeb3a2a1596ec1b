"""Validate and deploy process definitions: BPMN/DMN files, their forms and deadline rules.

Deployment is all or nothing: every file is safely parsed, schema-checked, built and every
expression compiled in the sandbox; forms and deadline rules that tasks reference must exist
and be valid. Any problem refuses the whole deployment with one ``Problem`` per defect (file,
line, element id). Accepted, each executable process whose content changed becomes a new
immutable ``ProcessVersion``; deploying the same content again creates nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine import audit
from engine.deadlines import parse_rules
from engine.errors import DeployError, Problem
from engine.forms import check_form_schema
from engine.identity import Actor
from engine.models import Deployment, DeploymentFile, ProcessVersion
from engine.spiff.parsing import ParsedProcess, SourceFile, parse_definitions
from engine.spiff.workflow import dump_spec_bundle
from engine.spiff.xmlsafe import MAX_BYTES
from engine.views import ProcessVersionView

DEFINITION_SUFFIXES = (".bpmn", ".dmn")


@dataclass
class Bundle:
    """What a deployment is made of, as read from disk or an upload."""

    sources: list[SourceFile] = field(default_factory=list)
    # (file name, content) of each deadline-rules file; a key may appear in only one.
    rules_files: list[tuple[str, bytes]] = field(default_factory=list)
    forms_dir: Path | None = None


def read_paths(paths: Iterable[Path], forms_dir: Path | None = None) -> Bundle:
    """Collect BPMN/DMN files (a folder means every such file below it) and the rules file.

    A folder's ``deadlines.yaml`` and ``deadlines-*.yaml`` files are taken as the rules; so
    is a ``.yaml`` file named directly.
    """
    bundle = Bundle(forms_dir=forms_dir)
    for path in paths:
        if path.is_dir():
            for found in sorted(path.rglob("*")):
                if found.suffix in DEFINITION_SUFFIXES and found.is_file():
                    bundle.sources.append(_source(found, path))
            for rules in sorted(path.glob("deadlines*.yaml")):
                bundle.rules_files.append((rules.name, _read(rules)))
        elif path.suffix in (".yaml", ".yml"):
            bundle.rules_files.append((path.name, _read(path)))
        else:
            bundle.sources.append(_source(path, path.parent))
    return bundle


def _read(path: Path) -> bytes:
    # Read at most one byte past the cap so that the size check can refuse it by name.
    with path.open("rb") as handle:
        return handle.read(MAX_BYTES + 1)


def _source(path: Path, root: Path) -> SourceFile:
    try:
        name = str(path.relative_to(root))
    except ValueError:
        name = path.name
    return SourceFile(name=name, content=_read(path))


@dataclass
class Checked:
    processes: dict[str, ParsedProcess]
    forms: dict[str, tuple[str, bytes, dict[str, Any]]]  # key -> (file name, bytes, schema)
    rules: dict[str, list[dict[str, Any]]]
    problems: list[Problem]


def check(bundle: Bundle, library: list[SourceFile] | None = None) -> Checked:
    """Everything ``qorgau validate`` checks; deploys nothing."""
    problems: list[Problem] = []
    if not bundle.sources:
        problems.append(Problem("(input)", None, None, "no .bpmn or .dmn files given"))
    for source in bundle.sources:
        if not source.name.endswith(DEFINITION_SUFFIXES):
            problems.append(Problem(source.name, None, None, "only .bpmn and .dmn files deploy"))
    parsed = parse_definitions(
        [s for s in bundle.sources if s.name.endswith(DEFINITION_SUFFIXES)], library or []
    )
    problems.extend(parsed.problems)

    rules: dict[str, list[dict[str, Any]]] = {}
    origin: dict[str, str] = {}
    for rules_name, rules_content in bundle.rules_files:
        found, rule_problems = parse_rules(rules_name, rules_content)
        problems.extend(rule_problems)
        for key, versions in found.items():
            if key in origin:
                problems.append(
                    Problem(rules_name, None, key, f"rule {key!r} is also in {origin[key]}")
                )
                continue
            origin[key] = rules_name
            rules[key] = versions

    forms: dict[str, tuple[str, bytes, dict[str, Any]]] = {}
    for process in parsed.processes.values():
        keys = [(t.bpmn_id, t.form_key) for t in process.user_tasks if t.form_key]
        start_form = process.properties.get("startForm")
        if start_form:
            keys.append((process.process_id, start_form))
        for element_id, key in keys:
            if key in forms:
                continue
            found, form_problems = _load_form(bundle.forms_dir, key, process.file, element_id)
            problems.extend(form_problems)
            if found is not None:
                forms[key] = found
        for task in process.user_tasks:
            if task.deadline_rule and task.deadline_rule not in rules:
                problems.append(
                    Problem(
                        process.file,
                        None,
                        task.bpmn_id,
                        f"deadline rule {task.deadline_rule!r} is not in the rules files",
                    )
                )
    return Checked(parsed.processes, forms, rules, _unique(problems))


def _load_form(
    forms_dir: Path | None, key: str, file: str, element_id: str
) -> tuple[tuple[str, bytes, dict[str, Any]] | None, list[Problem]]:
    if forms_dir is None:
        return None, [Problem(file, None, element_id, f"form {key!r}: no forms folder given")]
    base = forms_dir.resolve()
    path = (base / f"{key}.json").resolve()
    if base not in path.parents:
        return None, [Problem(file, None, element_id, f"form key {key!r} leaves the forms folder")]
    if not path.is_file():
        return None, [Problem(file, None, element_id, f"form {key!r} not found ({key}.json)")]
    content = _read(path)
    name = f"{key}.json"
    if len(content) > MAX_BYTES:
        return None, [Problem(name, None, None, "the form file is too large")]
    try:
        schema = json.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, [Problem(name, getattr(exc, "lineno", None), None, f"not valid JSON: {exc}")]
    problems = check_form_schema(name, schema)
    return (None if problems else (name, content, schema)), problems


def _unique(problems: list[Problem]) -> list[Problem]:
    seen, out = set(), []
    for problem in problems:
        if problem not in seen:
            seen.add(problem)
            out.append(problem)
    return out


def library_files(session: Session) -> list[SourceFile]:
    """The files of the latest version of every deployed process, to resolve calls."""
    latest = (
        select(ProcessVersion.process_key, func.max(ProcessVersion.version).label("v"))
        .group_by(ProcessVersion.process_key)
        .subquery()
    )
    deployment_ids = session.scalars(
        select(ProcessVersion.deployment_id).join(
            latest,
            (ProcessVersion.process_key == latest.c.process_key)
            & (ProcessVersion.version == latest.c.v),
        )
    ).all()
    files: dict[str, SourceFile] = {}
    for deployment_id in sorted(set(deployment_ids)):
        for row in session.scalars(
            select(DeploymentFile).where(
                DeploymentFile.deployment_id == deployment_id,
                DeploymentFile.kind.in_(["bpmn", "dmn"]),
            )
        ):
            files[row.name] = SourceFile(name=row.name, content=row.content)
    return list(files.values())


def validate(bundle: Bundle, session: Session | None = None) -> list[Problem]:
    library = library_files(session) if session is not None else []
    return check(bundle, library).problems


def deploy(
    session: Session,
    bundle: Bundle,
    *,
    actor: Actor,
    now: datetime,
    comment: str | None = None,
) -> list[ProcessVersionView]:
    """Deploy ``bundle``: new versions for processes whose content changed.

    Raises:
        DeployError: with every problem found; nothing is stored.
    """
    library = library_files(session)
    checked = check(bundle, library)
    if checked.problems:
        raise DeployError(checked.problems)

    by_name = {s.name: s for s in [*library, *bundle.sources]}
    plans = []
    for process in sorted(checked.processes.values(), key=lambda p: p.process_id):
        forms = _forms_of(process, checked)
        rules = _rules_of(process, checked)
        content_hash = _content_hash(process, by_name, forms, rules)
        latest = session.scalars(
            select(ProcessVersion)
            .where(ProcessVersion.process_key == process.process_id)
            .order_by(ProcessVersion.version.desc())
            .limit(1)
        ).first()
        if latest is not None and latest.content_hash == content_hash:
            continue
        plans.append((process, forms, rules, content_hash, (latest.version if latest else 0) + 1))
    if not plans:
        return []

    deployment = Deployment(deployed_at=now, deployed_by_id=actor.user_id, comment=comment)
    stored: set[str] = set()
    for process, *_ in plans:
        for name in process.files:
            if name not in stored:
                stored.add(name)
                _add_file(deployment, name, _kind(name), by_name[name].content)
    for name, content, _schema in sorted(checked.forms.values(), key=lambda f: f[0]):
        _add_file(deployment, f"forms/{name}", "form", content)
    for rules_name, rules_content in bundle.rules_files:
        _add_file(deployment, rules_name, "rules", rules_content)
    session.add(deployment)
    session.flush()

    created = []
    for process, forms, rules, content_hash, number in plans:
        version = ProcessVersion(
            process_key=process.process_id,
            version=number,
            name=process.name or process.process_id,
            content_hash=content_hash,
            deployment_id=deployment.id,
            spec_json=dump_spec_bundle(process.spec, process.subprocess_specs),
            forms=forms,
            deadline_rules=rules,
            starter_roles=sorted(_starter_roles(process)),
            properties=dict(process.properties),
            deployed_at=now,
            deployed_by_id=actor.user_id,
        )
        session.add(version)
        created.append(version)
    session.flush()
    audit.append_system_event(
        session,
        actor,
        "definitions.deployed",
        {
            "deployment_id": deployment.id,
            "versions": [f"{v.process_key}@{v.version}" for v in created],
            "files": sorted(f.name for f in deployment.files),
        },
        now,
    )
    return [ProcessVersionView.of(v) for v in created]


def _add_file(deployment: Deployment, name: str, kind: str, content: bytes) -> None:
    deployment.files.append(
        DeploymentFile(
            name=name, kind=kind, sha256=hashlib.sha256(content).hexdigest(), content=content
        )
    )


def _kind(name: str) -> str:
    return "dmn" if name.endswith(".dmn") else "bpmn"


def _forms_of(process: ParsedProcess, checked: Checked) -> dict[str, Any]:
    keys = {t.form_key for t in process.user_tasks if t.form_key}
    if process.properties.get("startForm"):
        keys.add(process.properties["startForm"])
    return {k: checked.forms[k][2] for k in sorted(keys)}


def _rules_of(process: ParsedProcess, checked: Checked) -> dict[str, Any]:
    keys = {t.deadline_rule for t in process.user_tasks if t.deadline_rule}
    keys.update(v for k, v in process.properties.items() if k.startswith("deadline") and v)
    return {k: checked.rules[k] for k in sorted(keys) if k in checked.rules}


def _starter_roles(process: ParsedProcess) -> set[str]:
    roles = set()
    for lane in process.starter_lanes:
        roles.add(process.properties.get(f"role.{lane}") or lane)
    return roles


def _content_hash(
    process: ParsedProcess,
    by_name: dict[str, SourceFile],
    forms: dict[str, Any],
    rules: dict[str, Any],
) -> str:
    digest = hashlib.sha256(process.process_id.encode() + b"\0")
    for name in sorted(process.files):
        digest.update(name.encode() + b"\0" + by_name[name].content + b"\0")
    digest.update(json.dumps([forms, rules], sort_keys=True, default=str).encode())
    return digest.hexdigest()


def list_versions(session: Session, process_key: str | None = None) -> list[ProcessVersionView]:
    stmt = select(ProcessVersion).order_by(ProcessVersion.process_key, ProcessVersion.version)
    if process_key:
        stmt = stmt.where(ProcessVersion.process_key == process_key)
    return [ProcessVersionView.of(v) for v in session.scalars(stmt)]
