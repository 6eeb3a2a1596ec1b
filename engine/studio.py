"""The analysts' studio: drafts of process definitions, validated and deployed.

The library of deployed versions and the diff between two of them are in ``engine/library.py``.

An analyst edits a *draft*: one BPMN document, the DMN documents it uses, its forms and its
deadline rules, stored as edited. A draft is never executed. A diagram drawn in bpmn.io or
Camunda Modeler is kept as a draft even when it cannot run yet, with the list of what it
lacks (the problems ``engine.definitions.check`` finds: no executable process, a user task
without a role or form, a missing rule...). Deploying a draft goes through
``engine.definitions.deploy`` with the draft's content, so it is checked exactly as the
``qorgau deploy`` command checks files, and creates a new immutable version.

What is never stored, not even as a draft: a file that fails the safe XML parse (a DOCTYPE,
entities, malformed or oversized XML) or holds code the sandbox refuses (an import, a dunder
attribute...). Such an upload is refused with its problems and nothing is written.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml
from lxml import etree
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import definitions, library
from engine.deadlines import parse_rules
from engine.errors import (
    Conflict,
    DeployError,
    FieldError,
    Forbidden,
    NotFound,
    Problem,
    ScriptError,
    ValidationFailed,
)
from engine.forms import check_form_schema
from engine.identity import Actor
from engine.models import DeploymentFile
from engine.models.studio import StudioDraft
from engine.sandbox import compile_expression, compile_script
from engine.spiff.parsing import SourceFile
from engine.views import ProcessVersionView

EDITOR_ROLES = frozenset({"analyst"})
RULES_FILE = "deadlines.yaml"
BPMN_NS = library.BPMN_NS
_FORM_KEY = re.compile(r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")
_FILE_NAME = re.compile(r"^[A-Za-z0-9_.-]+\.(bpmn|dmn)$")


# --- views ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DraftView:
    id: int
    title: str
    process_key: str | None
    base_version_id: int | None
    bpmn_name: str
    bpmn_xml: str
    dmn_files: dict[str, str]
    forms: dict[str, Any]
    rules_yaml: str
    lacks: tuple[Problem, ...]
    status: str
    deployed_version_id: int | None
    revision: int
    updated_at: datetime

    @property
    def executable(self) -> bool:
        """Whether the last check found nothing missing: it can be deployed."""
        return not self.lacks

    @classmethod
    def of(cls, row: StudioDraft) -> DraftView:
        return cls(
            id=row.id,
            title=row.title,
            process_key=row.process_key,
            base_version_id=row.base_version_id,
            bpmn_name=row.bpmn_name,
            bpmn_xml=row.bpmn_xml,
            dmn_files=dict(row.dmn_files or {}),
            forms=dict(row.forms or {}),
            rules_yaml=row.rules_yaml or "",
            lacks=tuple(Problem(**p) for p in row.lacks or ()),
            status=row.status,
            deployed_version_id=row.deployed_version_id,
            revision=row.revision,
            updated_at=row.updated_at,
        )


# --- who may ----------------------------------------------------------------------------


def require_editor(actor: Actor) -> None:
    """Only analysts edit and deploy definitions (DESIGN.md, Users and roles)."""
    if not (actor.is_system or actor.roles & EDITOR_ROLES):
        raise Forbidden(f"{actor.username} may not edit process definitions")


# --- drafts -----------------------------------------------------------------------------


def list_drafts(session: Session) -> list[DraftView]:
    rows = session.scalars(
        select(StudioDraft).where(StudioDraft.status == "draft").order_by(StudioDraft.id.desc())
    )
    return [DraftView.of(r) for r in rows]


def _draft(session: Session, draft_id: int) -> StudioDraft:
    row = session.get(StudioDraft, draft_id)
    if row is None:
        raise NotFound(f"draft {draft_id} does not exist")
    return row


def get_draft(session: Session, *, draft_id: int) -> DraftView:
    return DraftView.of(_draft(session, draft_id))


def draft_from_version(
    session: Session,
    *,
    version_id: int,
    actor: Actor,
    now: datetime,
    forms_dir: Path | None = None,
) -> DraftView:
    """A new draft holding a deployed version's BPMN, the DMN files it calls, its forms and
    its deadline rules, ready to be changed into the next version."""
    require_editor(actor)
    version = library.get_version(session, version_id)
    name, content = library.version_bpmn(session, version)
    xml = content.decode("utf-8")
    dmn = {}
    for row in session.scalars(
        select(DeploymentFile).where(
            DeploymentFile.deployment_id == version.deployment_id, DeploymentFile.kind == "dmn"
        )
    ):
        ids = [
            d.get("id") for d in library.parse_tree(row.content, row.name).iter() if _is_decision(d)
        ]
        if any(f'"{i}"' in xml or f">{i}<" in xml for i in ids if i):
            dmn[row.name] = row.content.decode("utf-8")
    row = StudioDraft(
        title=version.name,
        process_key=version.process_key,
        base_version_id=version.id,
        bpmn_name=name,
        bpmn_xml=xml,
        dmn_files=dmn,
        forms=dict(version.forms or {}),
        rules_yaml=rules_to_yaml(version.deadline_rules or {}),
        lacks=[],
        status="draft",
        created_by_id=actor.user_id,
        created_at=now,
        updated_by_id=actor.user_id,
        updated_at=now,
    )
    session.add(row)
    _recheck(session, row, forms_dir)
    session.flush()
    return DraftView.of(row)


def _is_decision(element: Any) -> bool:
    return isinstance(element.tag, str) and etree.QName(element).localname == "decision"


def rules_to_yaml(rules: dict[str, Any]) -> str:
    """Deadline rules as pinned on a version, written back as a rules file."""
    out: dict[str, list[dict[str, Any]]] = {}
    for key, versions in sorted(rules.items()):
        out[key] = []
        for rule in versions if isinstance(versions, list) else [versions]:
            rule = dict(rule)
            # Stored normalised (ISO strings); a rules file wants YAML dates.
            for bound in ("effective_from", "effective_to"):
                if isinstance(rule.get(bound), str):
                    rule[bound] = date.fromisoformat(rule[bound])
            out[key].append(rule)
    if not out:
        return "rules: {}\n"
    return yaml.safe_dump({"rules": out}, allow_unicode=True, sort_keys=False)


def import_draft(
    session: Session,
    *,
    file_name: str,
    content: bytes,
    actor: Actor,
    now: datetime,
    forms_dir: Path | None = None,
) -> DraftView:
    """Keep an uploaded BPMN diagram (from bpmn.io, Camunda Modeler...) as a new draft.

    Raises:
        DeployError: the file is unsafe XML or holds code the sandbox refuses; nothing is
            stored.
        ValidationFailed: the file name is not a plain ``*.bpmn`` name.
    """
    require_editor(actor)
    _check_file_name(file_name, "bpmn")
    refuse_hostile(file_name, content)
    xml = content.decode("utf-8")
    root = library.parse_tree(content, file_name)
    ids = library.executable_ids(root) or [
        p.get("id") for p in root.iter(f"{{{BPMN_NS}}}process") if p.get("id")
    ]
    process = next((p for p in root.iter(f"{{{BPMN_NS}}}process") if p.get("id") in ids), None)
    row = StudioDraft(
        title=(process.get("name") if process is not None else None) or file_name,
        process_key=ids[0] if ids else None,
        base_version_id=None,
        bpmn_name=file_name,
        bpmn_xml=xml,
        dmn_files={},
        forms={},
        rules_yaml="rules: {}\n",
        lacks=[],
        status="draft",
        created_by_id=actor.user_id,
        created_at=now,
        updated_by_id=actor.user_id,
        updated_at=now,
    )
    session.add(row)
    _recheck(session, row, forms_dir)
    session.flush()
    return DraftView.of(row)


def save_draft(
    session: Session,
    *,
    draft_id: int,
    actor: Actor,
    now: datetime,
    bpmn_xml: str | None = None,
    dmn_files: dict[str, str] | None = None,
    forms: dict[str, Any] | None = None,
    rules_yaml: str | None = None,
    expected_revision: int | None = None,
    forms_dir: Path | None = None,
) -> DraftView:
    """Store edited content in a draft and recheck what it lacks.

    Raises:
        DeployError: unsafe XML or refused code in the new content; nothing is stored.
        ValidationFailed: a bad form key or DMN file name, or the draft was deployed.
        Conflict: (at flush) someone else saved the draft since ``expected_revision``.
    """
    require_editor(actor)
    row = _draft(session, draft_id)
    if row.status != "draft":
        raise ValidationFailed(f"draft {draft_id} was deployed; open the version again")
    if expected_revision is not None and row.revision != expected_revision:
        raise Conflict(f"draft {draft_id} was saved by someone else since you opened it")
    if bpmn_xml is not None:
        refuse_hostile(row.bpmn_name, bpmn_xml.encode("utf-8"))
        row.bpmn_xml = bpmn_xml
        root = library.parse_tree(bpmn_xml.encode("utf-8"), row.bpmn_name)
        ids = library.executable_ids(root)
        if ids:
            row.process_key = ids[0]
    if dmn_files is not None:
        for name, xml in dmn_files.items():
            _check_file_name(name, "dmn")
            refuse_hostile(name, xml.encode("utf-8"))
        row.dmn_files = dict(dmn_files)
    if forms is not None:
        for key in forms:
            _check_form_key(key)
        row.forms = dict(forms)
    if rules_yaml is not None:
        row.rules_yaml = rules_yaml
    row.updated_by_id = actor.user_id
    row.updated_at = now
    _recheck(session, row, forms_dir)
    session.flush()
    return DraftView.of(row)


def put_form(
    session: Session,
    *,
    draft_id: int,
    key: str,
    schema_text: str,
    actor: Actor,
    now: datetime,
    forms_dir: Path | None = None,
) -> DraftView:
    """Add or replace one form of a draft after checking the schema itself.

    Raises:
        ValidationFailed: the key is not a plain path, the text is not JSON, or the schema
            is not a valid form schema (JSON Schema 2020-12, an object with properties).
    """
    _check_form_key(key)
    schema = parse_form(key, schema_text)
    forms = dict(_draft(session, draft_id).forms or {})
    forms[key] = schema
    return save_draft(
        session, draft_id=draft_id, actor=actor, now=now, forms=forms, forms_dir=forms_dir
    )


def parse_form(key: str, schema_text: str) -> dict[str, Any]:
    """The form schema in ``schema_text``, or ValidationFailed naming each defect."""
    try:
        schema = json.loads(schema_text)
    except json.JSONDecodeError as exc:
        raise ValidationFailed(
            "the form is not valid JSON", [FieldError("schema", f"line {exc.lineno}: {exc.msg}")]
        ) from exc
    problems = check_form_schema(f"{key}.json", schema)
    if problems:
        raise ValidationFailed(
            "the form schema is not valid", [FieldError("schema", p.message) for p in problems]
        )
    return schema


def put_rule(
    session: Session,
    *,
    draft_id: int,
    key: str,
    basis: str,
    value: int,
    unit: str,
    effective_from: date | None,
    effective_to: date | None,
    actor: Actor,
    now: datetime,
    forms_dir: Path | None = None,
) -> DraftView:
    """Add a deadline rule, or a new period of one (the law changed from a date).

    A version with the same ``effective_from`` is replaced; otherwise the new one is added
    and the periods are kept in date order.

    Raises:
        ValidationFailed: the rule is incomplete or wrong (checked as the rules file is).
    """
    rule: dict[str, Any] = {"basis": basis.strip(), "value": value, "unit": unit}
    if effective_from:
        rule["effective_from"] = effective_from
    if effective_to:
        rule["effective_to"] = effective_to
    key = key.strip()
    if not key or not re.fullmatch(r"[A-Za-z0-9_.-]+", key):
        raise ValidationFailed("bad rule key", [FieldError("key", "letters, digits, . _ -")])
    row = _draft(session, draft_id)
    try:
        doc = yaml.safe_load(row.rules_yaml or "") or {}
    except yaml.YAMLError as exc:
        raise ValidationFailed(
            "the draft's rules file is not valid YAML; fix it in the text first"
        ) from exc
    rules = doc.setdefault("rules", {}) if isinstance(doc, dict) else None
    if not isinstance(rules, dict):
        raise ValidationFailed('the draft\'s rules file needs a top-level "rules:" mapping')
    versions = rules.get(key) or []
    versions = versions if isinstance(versions, list) else [versions]
    versions = [v for v in versions if v.get("effective_from") != rule.get("effective_from")]
    versions.append(rule)
    versions.sort(key=lambda v: v.get("effective_from") or date.min)
    rules[key] = versions
    text = yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)
    _found, problems = parse_rules(RULES_FILE, text.encode("utf-8"))
    mine = [p for p in problems if p.element_id == key]
    if mine:
        raise ValidationFailed(
            f"rule {key} is not valid", [FieldError(key, p.message) for p in mine]
        )
    return save_draft(
        session, draft_id=draft_id, actor=actor, now=now, rules_yaml=text, forms_dir=forms_dir
    )


def _check_form_key(key: str) -> None:
    if not _FORM_KEY.fullmatch(key):
        raise ValidationFailed(
            "bad form key", [FieldError("key", "letters, digits, _ and -, parts joined by /")]
        )


def _check_file_name(name: str, kind: str) -> None:
    if not _FILE_NAME.fullmatch(name) or not name.endswith(f".{kind}"):
        raise ValidationFailed(
            "bad file name", [FieldError("file", f"a plain name ending in .{kind}")]
        )


# --- checking ---------------------------------------------------------------------------


def refuse_hostile(file_name: str, content: bytes) -> None:
    """Refuse a file that must never be stored: unsafe XML or code the sandbox refuses.

    The XML goes through the same safe parse as every deployment. Code is compiled here
    for every process, executable or not, because a draft keeps processes that the deploy
    checks would skip.

    Raises:
        DeployError: with one problem per defect (file, line, element id).
    """
    root = library.parse_tree(content, file_name)
    problems = []
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        text = (element.text or "").strip()
        if not text:
            continue
        local = etree.QName(element).localname
        if element.tag in library.SCRIPT_TAGS:
            compile_code = compile_script
        elif element.tag in library.EXPRESSION_TAGS or (local == "text" and _in_dmn(element)):
            compile_code = compile_expression
        else:
            continue
        try:
            compile_code(text)
        except ScriptError as exc:
            if exc.kind == "refused":
                problems.append(
                    Problem(
                        file_name,
                        element.sourceline,
                        _owner_id(element),
                        f"refused by the sandbox: {exc.message}",
                    )
                )
    if problems:
        raise DeployError(problems)


def _in_dmn(element: Any) -> bool:
    # DMN cells and input expressions are <text> elements; BPMN's <text> is an annotation.
    return etree.QName(element).namespace != BPMN_NS


def _owner_id(element: Any) -> str | None:
    while element is not None:
        if element.get("id"):
            return str(element.get("id"))
        element = element.getparent()
    return None


@contextmanager
def draft_bundle(row: StudioDraft, forms_dir: Path | None) -> Iterator[definitions.Bundle]:
    """A deployment bundle of the draft's content, with its forms in a temporary folder
    (over a copy of ``forms_dir``, so that forms already in the repository resolve too)."""
    with tempfile.TemporaryDirectory(prefix="qorgau-draft-") as tmp:
        folder = Path(tmp) / "forms"
        if forms_dir is not None and forms_dir.is_dir():
            shutil.copytree(forms_dir, folder)
        folder.mkdir(exist_ok=True)
        for key, schema in (row.forms or {}).items():
            _check_form_key(key)
            path = folder / f"{key}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(schema, ensure_ascii=False, indent=2), encoding="utf-8")
        sources = [SourceFile(row.bpmn_name, row.bpmn_xml.encode("utf-8"))]
        sources += [SourceFile(n, x.encode("utf-8")) for n, x in sorted(row.dmn_files.items())]
        rules = [(RULES_FILE, (row.rules_yaml or "rules: {}\n").encode("utf-8"))]
        yield definitions.Bundle(sources=sources, rules_files=rules, forms_dir=folder)


def _recheck(session: Session, row: StudioDraft, forms_dir: Path | None) -> list[Problem]:
    with draft_bundle(row, forms_dir) as bundle:
        problems = definitions.validate(bundle, session)
    row.lacks = [
        {"file": p.file, "line": p.line, "element_id": p.element_id, "message": p.message}
        for p in problems
    ]
    return problems


def validate_draft(
    session: Session, *, draft_id: int, actor: Actor, forms_dir: Path | None = None
) -> list[Problem]:
    """Everything ``qorgau validate`` checks, on the draft's content; records what it lacks."""
    require_editor(actor)
    row = _draft(session, draft_id)
    problems = _recheck(session, row, forms_dir)
    session.flush()
    return problems


def deploy_draft(
    session: Session,
    *,
    draft_id: int,
    actor: Actor,
    now: datetime,
    comment: str | None = None,
    forms_dir: Path | None = None,
) -> list[ProcessVersionView]:
    """Deploy the draft as new immutable versions (running cases keep theirs).

    Raises:
        DeployError: every problem found; nothing is deployed (the draft stays a draft).
        ValidationFailed: the draft was already deployed, or its content equals the latest
            version (deploying it would create nothing).
    """
    require_editor(actor)
    row = _draft(session, draft_id)
    if row.status != "draft":
        raise ValidationFailed(f"draft {draft_id} was already deployed")
    with draft_bundle(row, forms_dir) as bundle:
        created = definitions.deploy(session, bundle, actor=actor, now=now, comment=comment)
    if not created:
        raise ValidationFailed("nothing changed since the deployed version: nothing to deploy")
    mine = next((v for v in created if v.process_key == row.process_key), created[0])
    row.status = "deployed"
    row.deployed_version_id = mine.id
    row.lacks = []
    row.updated_by_id = actor.user_id
    row.updated_at = now
    session.flush()
    return created
