"""The inbox: my claimed tasks and the queues of my roles, with filters, search, saved
filters and (for leads) bulk claim and assign."""

from __future__ import annotations

from datetime import datetime, time
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from engine import absence, tasks, worklist
from engine.errors import EngineError
from engine.models import District, ProcessVersion, Role
from web.auth import current_actor, login_required, users_by_id
from web.db import clock, commit, get_session, rollback
from web.templating import LOCAL_ZONE, role_names

bp = Blueprint("inbox", __name__)

FILTER_PARAMS = ("scope", "process", "district", "overdue", "due_before", "q", "sort")


def _query_from(args: Any) -> worklist.InboxQuery:
    district = args.get("district", "")
    due_before = None
    if args.get("due_before"):
        try:
            day = datetime.strptime(args["due_before"], "%Y-%m-%d").date()
        except ValueError:
            abort(400)
        due_before = datetime.combine(day, time.min, LOCAL_ZONE)
    scope = args.get("scope") or "all"
    sort = args.get("sort") or "due"
    if scope not in worklist.SCOPES or sort not in worklist.SORTS:
        abort(400)
    return worklist.InboxQuery(
        scope=scope,
        process_key=args.get("process") or None,
        district_id=int(district) if district.isdigit() else None,
        overdue=args.get("overdue") == "1",
        due_before=due_before,
        search=(args.get("q") or "").strip()[:100] or None,
        sort=sort,
    )


@bp.get("/inbox")
@login_required
def index() -> Any:
    actor = current_actor()
    assert actor is not None
    db = get_session()
    args = request.args.to_dict()
    saved = worklist.list_filters(db, actor=actor)
    if args.get("filter", "").isdigit():
        chosen = next((f for f in saved if f.id == int(args["filter"])), None)
        if chosen is not None:
            args = {**chosen.params, **{k: v for k, v in args.items() if k == "cursor"}}
    query = _query_from(args)
    now = clock().now()
    page = worklist.search_inbox(
        db, actor=actor, now=now, query=query, cursor=args.get("cursor") or None
    )
    people = users_by_id({i.task.assignee_id for i in page.items if i.task.assignee_id})
    processes = sorted(set(db.scalars(select(ProcessVersion.process_key))))
    districts = list(db.scalars(select(District).order_by(District.code)))
    current = {k: args[k] for k in FILTER_PARAMS if args.get(k)}
    next_url = None
    if page.next_cursor:
        next_url = url_for("inbox.index") + "?" + urlencode({**current, "cursor": page.next_cursor})
    return render_template(
        "inbox/index.html",
        page=page,
        people=people,
        processes=processes,
        districts={d.id: d for d in districts},
        args=current,
        saved=saved,
        next_url=next_url,
        roles=role_names(),
        all_roles=list(db.scalars(select(Role.code).order_by(Role.code))),
        actor=actor,
        now=now,
    )


@bp.post("/inbox/filters")
@login_required
def save_filter() -> Any:
    actor = current_actor()
    assert actor is not None
    params = {k: request.form.get(k, "") for k in FILTER_PARAMS}
    try:
        saved = worklist.save_filter(
            get_session(),
            actor=actor,
            name=request.form.get("name", ""),
            params=params,
            shared_role=request.form.get("shared_role") or None,
            now=clock().now(),
        )
    except EngineError as exc:
        rollback()
        flash(_("The filter was not saved: %(why)s", why=str(exc)), "error")
        return redirect(url_for("inbox.index"))
    commit()
    flash(_("Filter saved."), "info")
    return redirect(url_for("inbox.index", filter=saved.id))


@bp.post("/inbox/filters/<int:filter_id>/delete")
@login_required
def delete_filter(filter_id: int) -> Any:
    actor = current_actor()
    assert actor is not None
    worklist.delete_filter(get_session(), actor=actor, filter_id=filter_id)
    commit()
    flash(_("Filter deleted."), "info")
    return redirect(url_for("inbox.index"))


@bp.post("/inbox/bulk")
@login_required
def bulk() -> Any:
    """Claim or assign several tasks at once (leads). Each task is its own unit of work, so
    one refused task does not undo the others; the page says which were refused."""
    actor = current_actor()
    assert actor is not None
    if not actor.is_lead:
        abort(403)
    action = request.form.get("action")
    assignee = request.form.get("assignee", "").strip()
    if action not in ("claim", "assign") or (action == "assign" and not assignee):
        flash(_("Choose an action (and a colleague to assign to)."), "error")
        return redirect(url_for("inbox.index"))
    ids = [int(v) for v in request.form.getlist("task") if v.isdigit()][:200]
    done, refused = 0, []
    db = get_session()
    for task_id in ids:
        try:
            if action == "claim":
                tasks.claim_task(db, task_id=task_id, actor=actor, clock=clock())
            else:
                tasks.assign_task(
                    db, task_id=task_id, actor=actor, assignee=assignee, clock=clock()
                )
            commit()
            done += 1
        except EngineError as exc:
            rollback()
            refused.append(f"#{task_id}: {exc}")
    if done:
        flash(_("%(n)s task(s) done.", n=done), "info")
    for line in refused:
        flash(_("Refused: %(why)s", why=line), "error")
    return redirect(url_for("inbox.index"))


def principal_for(task_id: int) -> Any:
    """The actor to act as on a task (oneself, or for an absent colleague)."""
    actor = current_actor()
    assert actor is not None
    return absence.acting_as(get_session(), actor=actor, task_id=task_id, now=clock().now())
