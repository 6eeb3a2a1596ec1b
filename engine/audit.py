"""The audit log: append-only, hash-chained events.

Every event carries the hash of the one before it in its chain and a hash of itself over a
canonical JSON form, so a changed or deleted row breaks the chain at that point. Chains are
per process instance, plus one ``system`` chain for everything else (deployments, users):
a single global chain would make every writer in the system wait for one row. An
instance's chain head lives on its row, under the same revision check as its state, so a
command and its audit events commit together or not at all.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.identity import Actor
from engine.models import AuditEvent, ProcessInstance

SYSTEM_CHAIN = "system"
GENESIS = "0" * 64


def instance_chain(instance_id: int) -> str:
    return f"instance:{instance_id}"


def _canonical(value: Any) -> Any:
    """Make ``value`` JSON-native so that its hash survives a round trip through the DB.

    Most details already are (form data, ids, names): those are kept as they are; anything
    else (dates, tuples, decimals) goes through JSON once, dates as text.
    """
    if _json_native(value, 0):
        return value
    return json.loads(json.dumps(value, default=str, ensure_ascii=False))


_SCALARS = frozenset({str, int, bool, type(None)})


def _json_native(value: Any, depth: int) -> bool:
    """Whether ``value`` comes back from JSON as an equal value of the same types."""
    kind = type(value)
    if kind in _SCALARS:
        return True
    if kind is float:
        return math.isfinite(value)
    if depth > 32:
        return False
    if kind is dict:
        return all(type(k) is str and _json_native(v, depth + 1) for k, v in value.items())
    if kind is list:
        return all(_json_native(v, depth + 1) for v in value)
    return False


# The hash's JSON form; json.dumps with these options would build an encoder every call.
_HASH_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@lru_cache(maxsize=64)
def _stamp(at: datetime) -> str:
    """An event's time as hashed (the events of one command share it)."""
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def event_hash(
    *,
    chain: str,
    seq: int,
    at: datetime,
    actor: str,
    on_behalf_of: str | None,
    action: str,
    instance_id: int | None,
    task_guid: str | None,
    detail: dict[str, Any],
    prev_hash: str,
) -> str:
    body = {
        "chain": chain,
        "seq": seq,
        "at": _stamp(at),
        "actor": actor,
        "on_behalf_of": on_behalf_of,
        "action": action,
        "instance_id": instance_id,
        "task_guid": task_guid,
        "detail": detail,
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(_HASH_JSON.encode(body).encode("utf-8")).hexdigest()


# The columns of one event row, as ``_build`` gives them.
EVENT_COLUMNS = (
    "chain",
    "seq",
    "at",
    "actor_id",
    "actor",
    "on_behalf_of",
    "action",
    "instance_id",
    "task_guid",
    "detail",
    "prev_hash",
    "hash",
)


@dataclass(frozen=True)
class PendingEvent:
    action: str
    detail: dict[str, Any]
    task_guid: str | None = None


def _build(
    chain: str,
    seq: int,
    prev: str,
    at: datetime,
    actor: Actor,
    event: PendingEvent,
    instance_id: int | None,
) -> dict[str, Any]:
    """The column values of one event, its hash computed over them."""
    detail = _canonical(event.detail)
    digest = event_hash(
        chain=chain,
        seq=seq,
        at=at,
        actor=actor.username,
        on_behalf_of=actor.on_behalf_of,
        action=event.action,
        instance_id=instance_id,
        task_guid=event.task_guid,
        detail=detail,
        prev_hash=prev,
    )
    return {
        "chain": chain,
        "seq": seq,
        "at": at,
        "actor_id": actor.user_id,
        "actor": actor.username,
        "on_behalf_of": actor.on_behalf_of,
        "action": event.action,
        "instance_id": instance_id,
        "task_guid": event.task_guid,
        "detail": detail,
        "prev_hash": prev,
        "hash": digest,
    }


class ChainHead(Protocol):
    """What appending to an instance's chain reads and moves: an instance row (ORM or Core)."""

    id: int
    audit_seq: int
    audit_head: str


def instance_event_rows(
    instance: ChainHead,
    actor: Actor,
    events: list[PendingEvent],
    at: datetime,
) -> list[dict[str, Any]]:
    """The rows that append ``events`` to the instance's chain; moves the chain head.

    The caller inserts them in the same transaction as the instance's revision-checked
    update, so the chain and the case move together or not at all.
    """
    chain = instance_chain(instance.id)
    seq, prev = instance.audit_seq, instance.audit_head or GENESIS
    rows = []
    for event in events:
        seq += 1
        row = _build(chain, seq, prev, at, actor, event, instance.id)
        rows.append(row)
        prev = row["hash"]
    instance.audit_seq, instance.audit_head = seq, prev
    return rows


def append_system_event(
    session: Session, actor: Actor, action: str, detail: dict[str, Any], at: datetime
) -> AuditEvent:
    """Append to the system chain. The unique (chain, seq) key refuses a fork when two
    writers race; the loser's transaction fails and is retried by its caller."""
    last = session.execute(
        select(AuditEvent.seq, AuditEvent.hash)
        .where(AuditEvent.chain == SYSTEM_CHAIN)
        .order_by(AuditEvent.seq.desc())
        .limit(1)
    ).first()
    seq, prev = (last[0], last[1]) if last else (0, GENESIS)
    row = AuditEvent(
        **_build(SYSTEM_CHAIN, seq + 1, prev, at, actor, PendingEvent(action, detail), None)
    )
    session.add(row)
    session.flush()
    return row


# --- verification -----------------------------------------------------------------------


@dataclass(frozen=True)
class BadEvent:
    chain: str
    seq: int
    event_id: int | None
    reason: str

    def __str__(self) -> str:
        ident = f"event {self.event_id}" if self.event_id is not None else "a missing event"
        return f"{self.chain} #{self.seq} ({ident}): {self.reason}"


def verify_chain(session: Session, chain: str) -> BadEvent | None:
    """The first event of ``chain`` that was altered, removed or inserted, if any."""
    stmt = select(AuditEvent).where(AuditEvent.chain == chain).order_by(AuditEvent.seq)
    # Streamed, so that a long chain is not held in memory; closed even when we stop early.
    rows = session.scalars(stmt.execution_options(yield_per=1000))
    try:
        return _walk(session, chain, rows)
    finally:
        rows.close()


def _walk(session: Session, chain: str, rows: Iterable[AuditEvent]) -> BadEvent | None:
    expected_seq, prev = 1, GENESIS
    for row in rows:
        if row.seq != expected_seq:
            return BadEvent(chain, expected_seq, None, f"missing (the next event is #{row.seq})")
        if row.prev_hash != prev:
            return BadEvent(chain, row.seq, row.id, "does not link to the event before it")
        digest = event_hash(
            chain=row.chain,
            seq=row.seq,
            at=row.at,
            actor=row.actor,
            on_behalf_of=row.on_behalf_of,
            action=row.action,
            instance_id=row.instance_id,
            task_guid=row.task_guid,
            detail=row.detail,
            prev_hash=row.prev_hash,
        )
        if digest != row.hash:
            return BadEvent(chain, row.seq, row.id, "content was changed after it was written")
        prev = row.hash
        expected_seq += 1
    if chain.startswith("instance:"):
        instance = session.get(ProcessInstance, int(chain.split(":", 1)[1]))
        if instance is not None and instance.audit_seq >= expected_seq:
            return BadEvent(chain, expected_seq, None, "missing (the instance has more events)")
        if instance is not None and instance.audit_seq and instance.audit_head != prev:
            return BadEvent(chain, instance.audit_seq, None, "the chain head does not match")
    return None


def verify_all(session: Session) -> list[BadEvent]:
    """Verify every chain, including instances whose events were all deleted."""
    chains = set(session.scalars(select(AuditEvent.chain).distinct()))
    with_events = select(ProcessInstance.id).where(ProcessInstance.audit_seq > 0)
    chains.update(instance_chain(i) for i in session.scalars(with_events))
    bad = []
    for chain in sorted(chains, key=_chain_order):
        found = verify_chain(session, chain)
        if found is not None:
            bad.append(found)
    return bad


def _chain_order(chain: str) -> tuple[int, int]:
    if chain == SYSTEM_CHAIN:
        return (0, 0)
    kind, _, number = chain.partition(":")
    return (1, int(number)) if number.isdigit() else (2, 0)


def count_events(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(AuditEvent)) or 0
