"""The catalogue of procedures: which deployed processes a user may start, their forms, and
the names of procedures and their tasks in Kazakh and Russian."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.identity import Actor
from engine.instances import latest_version, may_start
from engine.models import ProcessVersion
from engine.runtime import load_version


@dataclass(frozen=True)
class ProcedureView:
    process_key: str
    name: str
    version: int
    start_form_key: str | None
    start_form: dict[str, Any] | None


def _view(row: ProcessVersion) -> ProcedureView:
    key = (row.properties or {}).get("startForm") or None
    return ProcedureView(
        process_key=row.process_key,
        name=row.name,
        version=row.version,
        start_form_key=key,
        start_form=(row.forms or {}).get(key) if key else None,
    )


def startable(session: Session, *, actor: Actor) -> list[ProcedureView]:
    """The latest version of every process ``actor`` may start, by name."""
    latest = (
        select(ProcessVersion.process_key, func.max(ProcessVersion.version).label("v"))
        .group_by(ProcessVersion.process_key)
        .subquery()
    )
    rows = session.scalars(
        select(ProcessVersion).join(
            latest,
            (ProcessVersion.process_key == latest.c.process_key)
            & (ProcessVersion.version == latest.c.v),
        )
    )
    found = [_view(r) for r in rows if may_start(actor, r)]
    return sorted(found, key=lambda p: (p.name.lower(), p.process_key))


def procedure(session: Session, *, process_key: str) -> ProcedureView:
    """The latest version of one process (NotFound when none is deployed)."""
    return _view(latest_version(session, process_key))


# --- names in the user's language --------------------------------------------------------

LANGUAGES = ("kk", "ru")


@dataclass(frozen=True)
class Names:
    """What the Department's staff read for procedures and their tasks: the ``name.kk`` and
    ``name.ru`` properties of each process and user task of the latest deployed versions,
    and their BPMN ``name`` (the analyst's, in English) as ``en``. Without a name in the
    language asked for, the caller's default (the name stored on a row) is shown.
    """

    processes: Mapping[str, Mapping[str, str]]
    tasks: Mapping[tuple[str, str], Mapping[str, str]]

    def process(self, process_key: str, language: str, default: str | None = None) -> str:
        return self.processes.get(process_key, {}).get(language) or default or process_key

    def task(self, process_key: str, bpmn_id: str, language: str, default: str) -> str:
        return self.tasks.get((process_key, bpmn_id), {}).get(language) or default


def _localized(properties: Mapping[str, Any] | None) -> dict[str, str]:
    properties = properties or {}
    found = {lang: str(properties.get(f"name.{lang}") or "").strip() for lang in LANGUAGES}
    return {lang: name for lang, name in found.items() if name}


_NAMES: dict[frozenset[tuple[int, str]], Names] = {}
_NAMES_LOCK = threading.Lock()


def names(session: Session) -> Names:
    """The names of every deployed procedure's latest version: one small query, the rest
    from memory until a new version is deployed."""
    newest = (
        select(ProcessVersion.process_key, func.max(ProcessVersion.version).label("v"))
        .group_by(ProcessVersion.process_key)
        .subquery()
    )
    latest = session.execute(
        select(ProcessVersion.process_key, ProcessVersion.id, ProcessVersion.content_hash).join(
            newest,
            (ProcessVersion.process_key == newest.c.process_key)
            & (ProcessVersion.version == newest.c.v),
        )
    ).all()
    key = frozenset((row.id, row.content_hash) for row in latest)
    found = _NAMES.get(key)
    if found is not None:
        return found
    processes: dict[str, dict[str, str]] = {}
    tasks: dict[tuple[str, str], dict[str, str]] = {}
    for row in latest:
        version = load_version(session, row.id, row.content_hash)
        processes[row.process_key] = {"en": version.name, **_localized(version.properties)}
        spec, subprocess_specs = version.specs
        for each in (spec, *subprocess_specs.values()):
            for task_spec in each.task_specs.values():
                if getattr(task_spec, "manual", False) and task_spec.bpmn_id:
                    extensions = getattr(task_spec, "extensions", None) or {}
                    named = _localized(extensions.get("properties"))
                    if task_spec.bpmn_name:
                        named["en"] = task_spec.bpmn_name
                    tasks.setdefault((row.process_key, task_spec.bpmn_id), named)
    found = Names(processes=processes, tasks=tasks)
    with _NAMES_LOCK:
        if len(_NAMES) > 16:
            _NAMES.clear()
        _NAMES[key] = found
    return found
