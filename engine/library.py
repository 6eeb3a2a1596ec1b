"""The process library: deployed processes with their versions and cases, and the
differences between two versions of one process.

A diff compares the BPMN elements of the two versions by id (type, name, Qorgau's
properties, lane, flow ends, scripts and expressions) and the forms and deadline rules
pinned on each version.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lxml import etree
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from engine.errors import NotFound, ValidationFailed
from engine.models import Deployment, DeploymentFile, ProcessInstance, ProcessVersion, User
from engine.spiff.xmlsafe import parse_untrusted

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
# Elements whose text is Python run by the engine: scripts and expressions.
SCRIPT_TAGS = {f"{{{BPMN_NS}}}script", f"{{{SPIFF_NS}}}preScript", f"{{{SPIFF_NS}}}postScript"}
EXPRESSION_TAGS = {
    f"{{{BPMN_NS}}}{tag}"
    for tag in (
        "conditionExpression",
        "timeDate",
        "timeDuration",
        "timeCycle",
        "loopCardinality",
        "completionCondition",
        "loopCondition",
    )
}
_LIVE = ("running", "waiting", "suspended", "error")


@dataclass(frozen=True)
class LibraryVersion:
    id: int
    version: int
    name: str
    deployed_at: datetime
    deployed_by: str | None
    comment: str | None
    live_cases: int
    all_cases: int


@dataclass(frozen=True)
class LibraryProcess:
    process_key: str
    name: str
    versions: tuple[LibraryVersion, ...]


@dataclass(frozen=True)
class ElementChange:
    element_id: str
    kind: str  # the BPMN element type: userTask, sequenceFlow, lane...
    name: str | None
    # field -> (before, after), for changed elements only
    fields: dict[str, tuple[Any, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class VersionDiff:
    process_key: str
    from_version: int
    to_version: int
    added: tuple[ElementChange, ...]
    removed: tuple[ElementChange, ...]
    changed: tuple[ElementChange, ...]
    forms_added: tuple[str, ...]
    forms_removed: tuple[str, ...]
    forms_changed: tuple[str, ...]
    rules_added: tuple[str, ...]
    rules_removed: tuple[str, ...]
    rules_changed: tuple[str, ...]

    @property
    def empty(self) -> bool:
        return not any(
            (
                self.added,
                self.removed,
                self.changed,
                self.forms_added,
                self.forms_removed,
                self.forms_changed,
                self.rules_added,
                self.rules_removed,
                self.rules_changed,
            )
        )


# --- the library ------------------------------------------------------------------------


def list_library(session: Session) -> list[LibraryProcess]:
    """Every deployed process with its versions: who deployed each, when, and its cases."""
    counts: dict[int, tuple[int, int]] = {}
    live = func.sum(case((ProcessInstance.status.in_(_LIVE), 1), else_=0))
    for version_id, total, running in session.execute(
        select(ProcessInstance.process_version_id, func.count(), live).group_by(
            ProcessInstance.process_version_id
        )
    ):
        counts[version_id] = (int(running or 0), int(total))
    rows = session.execute(
        select(ProcessVersion, User.username, Deployment.comment)
        .join(Deployment, Deployment.id == ProcessVersion.deployment_id)
        .outerjoin(User, User.id == ProcessVersion.deployed_by_id)
        .order_by(ProcessVersion.process_key, ProcessVersion.version.desc())
    ).all()
    grouped: dict[str, list[LibraryVersion]] = {}
    names: dict[str, str] = {}
    for version, username, comment in rows:
        running, total = counts.get(version.id, (0, 0))
        names.setdefault(version.process_key, version.name)
        grouped.setdefault(version.process_key, []).append(
            LibraryVersion(
                id=version.id,
                version=version.version,
                name=version.name,
                deployed_at=version.deployed_at,
                deployed_by=username,
                comment=comment,
                live_cases=running,
                all_cases=total,
            )
        )
    return [LibraryProcess(key, names[key], tuple(v)) for key, v in grouped.items()]


def version_bpmn(session: Session, version: ProcessVersion) -> tuple[str, bytes]:
    """The BPMN file (name, bytes) of the deployment that defines ``version``'s process."""
    files = session.scalars(
        select(DeploymentFile)
        .where(DeploymentFile.deployment_id == version.deployment_id)
        .where(DeploymentFile.kind == "bpmn")
        .order_by(DeploymentFile.name)
    ).all()
    for row in files:
        if version.process_key in executable_ids(parse_tree(row.content, row.name)):
            return row.name, row.content
    raise NotFound(f"the BPMN file of {version.process_key}@{version.version} is not stored")


def parse_tree(content: bytes, name: str) -> etree._Element:
    """The root of an XML file, parsed as every upload is (no DOCTYPE, no entities)."""
    return parse_untrusted(content, name).getroot()


def executable_ids(root: etree._Element) -> list[str]:
    """Ids of the processes marked executable in a BPMN document."""
    return [
        p.get("id")
        for p in root.iter(f"{{{BPMN_NS}}}process")
        if p.get("isExecutable", "false") == "true" and p.get("id")
    ]


# --- diff -------------------------------------------------------------------------------


def version_diff(session: Session, *, from_version_id: int, to_version_id: int) -> VersionDiff:
    """Elements added, removed and changed between two versions of one process (by id,
    comparing type, name, Qorgau properties, lane, flow ends, code), and the forms and
    deadline rules that changed."""
    before = get_version(session, from_version_id)
    after = get_version(session, to_version_id)
    if before.process_key != after.process_key:
        raise ValidationFailed(
            f"{before.process_key} and {after.process_key} are different processes"
        )
    old = _elements(*version_bpmn(session, before), before.process_key)
    new = _elements(*version_bpmn(session, after), after.process_key)
    added = [_change(i, new[i]) for i in sorted(new.keys() - old.keys())]
    removed = [_change(i, old[i]) for i in sorted(old.keys() - new.keys())]
    changed = []
    for element_id in sorted(old.keys() & new.keys()):
        a, b = old[element_id], new[element_id]
        fields = {
            k: (a.get(k), b.get(k)) for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k)
        }
        if fields:
            changed.append(_change(element_id, b, fields))
    forms = _keyed_diff(before.forms or {}, after.forms or {})
    rules = _keyed_diff(before.deadline_rules or {}, after.deadline_rules or {})
    return VersionDiff(
        before.process_key,
        before.version,
        after.version,
        tuple(added),
        tuple(removed),
        tuple(changed),
        *forms,
        *rules,
    )


def get_version(session: Session, version_id: int) -> ProcessVersion:
    """The version row, or NotFound."""
    version = session.get(ProcessVersion, version_id)
    if version is None:
        raise NotFound(f"process version {version_id} does not exist")
    return version


def _change(element_id: str, info: dict[str, Any], fields: dict | None = None) -> ElementChange:
    return ElementChange(element_id, info["type"], info.get("name"), dict(fields or {}))


def _keyed_diff(a: dict[str, Any], b: dict[str, Any]) -> tuple[tuple[str, ...], ...]:
    same = a.keys() & b.keys()
    return (
        tuple(sorted(b.keys() - a.keys())),
        tuple(sorted(a.keys() - b.keys())),
        tuple(sorted(k for k in same if _canon(a[k]) != _canon(b[k]))),
    )


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _elements(name: str, content: bytes, process_key: str) -> dict[str, dict[str, Any]]:
    """Every element with an id inside the process, described by what matters to a case."""
    root = parse_tree(content, name)
    process = next(
        (p for p in root.iter(f"{{{BPMN_NS}}}process") if p.get("id") == process_key), None
    )
    if process is None:
        return {}
    lanes: dict[str, str] = {}
    for lane in process.iter(f"{{{BPMN_NS}}}lane"):
        for ref in lane.findall(f"{{{BPMN_NS}}}flowNodeRef"):
            lanes[(ref.text or "").strip()] = lane.get("name") or lane.get("id") or ""
    found: dict[str, dict[str, Any]] = {}
    for element in process.iter():
        if not isinstance(element.tag, str) or not element.tag.startswith(f"{{{BPMN_NS}}}"):
            continue
        element_id = element.get("id")
        if not element_id or element is process:
            continue
        kind = etree.QName(element).localname
        info: dict[str, Any] = {"type": kind, "name": element.get("name")}
        for prop in element.iterfind(
            f"{{{BPMN_NS}}}extensionElements/{{{SPIFF_NS}}}properties/{{{SPIFF_NS}}}property"
        ):
            info[f"property {prop.get('name')}"] = prop.get("value")
        for attr in ("sourceRef", "targetRef", "attachedToRef", "calledElement", "default"):
            if element.get(attr) is not None:
                info[attr] = element.get(attr)
        for child in element:
            if child.tag in SCRIPT_TAGS | EXPRESSION_TAGS:
                info[etree.QName(child).localname] = (child.text or "").strip()
        if element_id in lanes:
            info["lane"] = lanes[element_id]
        found[element_id] = info
    return found
