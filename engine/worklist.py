"""The inbox as a searchable work list, form drafts and saved inbox filters.

Listing reads only ``human_task`` (never a workflow) and pages by keyset, not by offset:
each page is a few index range scans that start where the last page ended, so the hundredth
page costs what the first does, with a hundred or a hundred thousand open tasks. The visible
set is a union of *queues* (claimed by me; offered to one of my roles in my district; the
same for each absent colleague I stand in for; every open task for a lead), each served in
due order by one index (see ``engine/models/workspace.py``); the page is the
merge of the queues' first rows.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, or_, select, tuple_
from sqlalchemy.orm import Session

from engine import absence
from engine.errors import FieldError, Forbidden, NotFound, ValidationFailed
from engine.identity import Actor
from engine.iin import mask_iin
from engine.models import TASK_IS_OPEN, HumanTask
from engine.models.workspace import SavedFilter, TaskDraft
from engine.views import TaskView

SCOPES = ("all", "mine", "queue", "everyone")
SORTS = ("due", "-due")
MAX_PAGE = 200
# A search matching more open tasks than this shows the first of them: refine the search.
MAX_MATCHES = 1000


@dataclass(frozen=True)
class InboxQuery:
    """What the inbox shows. ``scope``: all (mine and my queues), mine, queue, or everyone
    (leads only: every open task)."""

    scope: str = "all"
    process_key: str | None = None
    district_id: int | None = None
    overdue: bool = False
    due_before: datetime | None = None
    search: str | None = None
    sort: str = "due"


@dataclass(frozen=True)
class InboxItem:
    task: TaskView
    # The absent colleague this task is offered for, when it comes through an absence.
    on_behalf_of: str | None
    overdue: bool
    case_number: str | None = None
    child_name: str | None = None
    # Masked here, in the engine: the full IIN never reaches a list page.
    child_iin_masked: str | None = None


@dataclass(frozen=True)
class InboxPage:
    items: tuple[InboxItem, ...]
    next_cursor: str | None


@dataclass(frozen=True)
class _Queue:
    where: ColumnElement[bool]
    on_behalf_of: str | None = None
    # Columns that are constant within the queue, put before (due_at, id) in ORDER BY. The
    # order is the same, but only the queue's own index yields it without sorting, so the
    # planners pick that index. (Measured with 100,000 open tasks: without it PostgreSQL
    # walked the every-open-task index for a queue it misjudged as large: 90 ms a query.)
    prefix: tuple[Any, ...] = ()


def _queues(session: Session, actor: Actor, principals: list[Actor], scope: str) -> list[_Queue]:
    ready = TASK_IS_OPEN
    if scope == "everyone":
        if not actor.is_lead:
            raise Forbidden(f"{actor.username} is not a lead and may not list every task")
        return [_Queue(ready)]
    queues: list[_Queue] = []
    for who in [actor, *principals]:
        label = who.on_behalf_of
        owner_id = actor.user_id if label is None else absence.absent_user_id(session, who)
        if scope in ("all", "mine") and owner_id is not None:
            queues.append(
                _Queue(
                    and_(ready, HumanTask.assignee_id == owner_id),
                    label,
                    (HumanTask.assignee_id,),
                )
            )
        if scope in ("all", "queue"):
            for role in sorted(who.roles):
                offered = and_(ready, HumanTask.assignee_id.is_(None), HumanTask.role == role)
                if who.district_id is None:
                    # Regional staff: every district, one range of the role's own index.
                    queues.append(_Queue(offered, label, (HumanTask.role, HumanTask.assignee_id)))
                    continue
                # Two ranges rather than an OR, so that each is one index range scan.
                prefix = (HumanTask.role, HumanTask.district_id, HumanTask.assignee_id)
                for district in (
                    HumanTask.district_id == who.district_id,
                    HumanTask.district_id.is_(None),
                ):
                    queues.append(_Queue(and_(offered, district), label, prefix))
    return queues


def _search(session: Session, text: str) -> ColumnElement[bool] | None:
    """The open tasks a search matches, as ``id IN (…)``; ``None`` when nothing matches.

    The matches are looked up first, on their own indexes (IIN; case number; a prefix of
    the child's name as written and with a capital first letter), and the queues are then
    walked among them only: a search finds its few rows without reading a queue. A range,
    not LIKE: LIKE uses an index on neither database as they are set up.
    """
    if text.isdigit() and len(text) == 12:
        match: ColumnElement[bool] = HumanTask.child_iin == text
    else:
        names = {text, text[:1].upper() + text[1:]}
        match = or_(
            HumanTask.case_number == text,
            *[
                and_(HumanTask.child_name >= n, HumanTask.child_name < n + "\U0010ffff")
                for n in names
            ],
        )
    ids = list(session.scalars(select(HumanTask.id).where(match, TASK_IS_OPEN).limit(MAX_MATCHES)))
    return HumanTask.id.in_(ids) if ids else None


def _filters(query: InboxQuery, now: datetime) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if query.process_key:
        where.append(HumanTask.process_key == query.process_key)
    if query.district_id is not None:
        where.append(HumanTask.district_id == query.district_id)
    if query.overdue:
        where.append(HumanTask.due_at < now)
    if query.due_before is not None:
        where.append(HumanTask.due_at < query.due_before)
    return where


def _parse_cursor(cursor: str | None) -> tuple[str, datetime | None, int] | None:
    if not cursor:
        return None
    try:
        phase, due, ident = cursor.split("~")
        return phase, (datetime.fromisoformat(due) if due else None), int(ident)
    except ValueError as exc:
        raise ValidationFailed("bad page cursor", [FieldError("cursor", "not valid")]) from exc


def _cursor(row: tuple[datetime | None, int]) -> str:
    due, ident = row
    return f"{'d' if due is not None else 'n'}~{due.isoformat() if due else ''}~{ident}"


def search_inbox(
    session: Session,
    *,
    actor: Actor,
    now: datetime,
    query: InboxQuery | None = None,
    cursor: str | None = None,
    limit: int = 50,
    principals: list[Actor] | None = None,
) -> InboxPage:
    """One page of the inbox, in due order (tasks without a due date last).

    Args:
        principals: absent colleagues the actor stands in for (``absence.principals``);
            looked up when not given.
        cursor: ``next_cursor`` of the previous page.
    """
    query = query or InboxQuery()
    if query.scope not in SCOPES or query.sort not in SORTS:
        raise ValidationFailed("bad inbox query", [FieldError("scope", "unknown scope or sort")])
    limit = max(1, min(limit, MAX_PAGE))
    if principals is None:
        principals = absence.principals(session, deputy=actor, now=now)
    queues = _queues(session, actor, principals, query.scope)
    common = _filters(query, now)
    text = (query.search or "").strip()
    if text:
        matches = _search(session, text)
        if matches is None:
            return InboxPage((), None)
        common.append(matches)
    after = _parse_cursor(cursor)
    descending = query.sort == "-due"
    # A due-date filter excludes undated tasks: skip that phase rather than ask for nothing.
    dated_only = query.overdue or query.due_before is not None

    found: dict[int, tuple[datetime | None, int, str | None]] = {}
    for queue in queues:
        rows = _scan(session, queue, common, after, descending, limit + 1, dated_only)
        for due, ident in rows:
            found.setdefault(ident, (due, ident, queue.on_behalf_of))

    def order(item: tuple[datetime | None, int, str | None]) -> tuple[int, float, int]:
        due, ident, _ = item
        if due is None:
            return (1, 0.0, ident if not descending else -ident)
        stamp = due.timestamp()
        return (0, -stamp if descending else stamp, -ident if descending else ident)

    ordered = heapq.nsmallest(limit + 1, found.values(), key=order)
    page, more = ordered[:limit], len(ordered) > limit
    rows = {
        r.id: r
        for r in session.scalars(select(HumanTask).where(HumanTask.id.in_([i for _, i, _ in page])))
    }
    items = tuple(
        InboxItem(
            task=TaskView.of(rows[ident]),
            on_behalf_of=label,
            overdue=due is not None and due < now,
            case_number=rows[ident].case_number,
            child_name=rows[ident].child_name,
            child_iin_masked=mask_iin(rows[ident].child_iin) if rows[ident].child_iin else None,
        )
        for due, ident, label in page
        if ident in rows
    )
    next_cursor = _cursor((page[-1][0], page[-1][1])) if more and page else None
    return InboxPage(items, next_cursor)


def _scan(
    session: Session,
    queue: _Queue,
    common: list[ColumnElement[bool]],
    after: tuple[str, datetime | None, int] | None,
    descending: bool,
    limit: int,
    dated_only: bool = False,
) -> list[tuple[datetime | None, int]]:
    """Up to ``limit`` (due_at, id) of one queue after the cursor: dated tasks first, then
    undated ones. Each phase is a single index range, walked in index order."""
    due, ident = HumanTask.due_at, HumanTask.id
    columns = (*queue.prefix, due, ident)
    order = [c.desc() for c in columns] if descending else list(columns)
    result: list[tuple[datetime | None, int]] = []
    if after is None or after[0] == "d":
        stmt = select(due, ident).where(queue.where, due.is_not(None), *common)
        if after is not None:
            # A row-value comparison is one index range; the equivalent OR is two.
            key, cursor = tuple_(due, ident), tuple_(after[1], after[2])
            stmt = stmt.where(key < cursor if descending else key > cursor)
        result.extend((r[0], r[1]) for r in session.execute(stmt.order_by(*order).limit(limit)))
    if len(result) < limit and not dated_only:
        stmt = select(due, ident).where(queue.where, due.is_(None), *common)
        if after is not None and after[0] == "n":
            stmt = stmt.where(ident < after[2] if descending else ident > after[2])
        rows = session.execute(stmt.order_by(*order).limit(limit - len(result)))
        result.extend((r[0], r[1]) for r in rows)
    return result


# --- drafts -----------------------------------------------------------------------------


def save_draft(
    session: Session, *, task_id: int, actor: Actor, data: dict[str, Any], now: datetime
) -> None:
    """Keep what the user typed (raw strings, possibly incomplete) for this task."""
    if actor.user_id is None:
        raise Forbidden("only a user keeps drafts")
    if session.get(HumanTask, task_id) is None:
        raise NotFound(f"task {task_id} does not exist")
    clean = {str(k)[:200]: str(v)[:5000] for k, v in data.items()}
    row = session.get(TaskDraft, (task_id, actor.user_id))
    if row is None:
        session.add(TaskDraft(task_id=task_id, user_id=actor.user_id, data=clean, saved_at=now))
    else:
        row.data, row.saved_at = clean, now
    session.flush()


def get_draft(session: Session, *, task_id: int, actor: Actor) -> dict[str, Any] | None:
    if actor.user_id is None:
        return None
    row = session.get(TaskDraft, (task_id, actor.user_id))
    return dict(row.data) if row is not None else None


def drop_drafts(session: Session, *, task_id: int) -> None:
    """A completed task needs no drafts any more (anyone's)."""
    session.execute(delete(TaskDraft).where(TaskDraft.task_id == task_id))


# --- saved filters ----------------------------------------------------------------------


@dataclass(frozen=True)
class SavedFilterView:
    id: int
    name: str
    params: dict[str, Any] = field(hash=False)
    shared_role: str | None
    mine: bool


def save_filter(
    session: Session,
    *,
    actor: Actor,
    name: str,
    params: dict[str, str],
    now: datetime,
    shared_role: str | None = None,
) -> SavedFilterView:
    """Save an inbox query by name, private or shared with a role the actor holds (a lead
    may share with any role)."""
    if actor.user_id is None:
        raise Forbidden("only a user saves filters")
    name = name.strip()
    if not name:
        raise ValidationFailed("a filter needs a name", [FieldError("name", "required")])
    if shared_role and not (actor.has_role(shared_role) or actor.is_lead):
        raise Forbidden(f"{actor.username} may not share with role {shared_role}")
    row = SavedFilter(
        owner_id=actor.user_id,
        name=name[:100],
        params={str(k): str(v) for k, v in params.items() if v not in (None, "")},
        shared_role=shared_role or None,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return SavedFilterView(row.id, row.name, dict(row.params), row.shared_role, True)


def list_filters(session: Session, *, actor: Actor) -> list[SavedFilterView]:
    """The actor's own filters and those shared with one of their roles."""
    stmt = (
        select(SavedFilter)
        .where(
            or_(
                SavedFilter.owner_id == actor.user_id,
                SavedFilter.shared_role.in_(sorted(actor.roles)),
            )
        )
        .order_by(SavedFilter.name, SavedFilter.id)
    )
    return [
        SavedFilterView(r.id, r.name, dict(r.params), r.shared_role, r.owner_id == actor.user_id)
        for r in session.scalars(stmt)
    ]


def delete_filter(session: Session, *, actor: Actor, filter_id: int) -> None:
    row = session.get(SavedFilter, filter_id)
    if row is None:
        raise NotFound(f"filter {filter_id} does not exist")
    if row.owner_id != actor.user_id and "admin" not in actor.roles:
        raise Forbidden("only its owner may delete a filter")
    session.delete(row)
    session.flush()
