"""The catalogue of procedures: which deployed processes a user may start, and their forms."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.identity import Actor
from engine.instances import latest_version, may_start
from engine.models import ProcessVersion


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
