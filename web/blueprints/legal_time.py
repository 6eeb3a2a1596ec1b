"""Legal time on the web: the calendar's overrides (admin) and the notifications bell.

``/admin/calendar`` lists, adds and removes the overrides of the working-day calendar (the
year's Government transfer decree, the official Kurban Ait date); only the admin role may.
``/notifications`` is the signed-in user's unread notifications as JSON (for the bell in the
inbox), and ``POST /notifications/read`` marks one (``id``) or all of them read. Every POST
carries the session's CSRF token (web/csrf.py checks it before the view runs).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _

from engine import calendar_overrides, notifications
from engine.calendar import DEPARTMENT_TZ, KINDS
from engine.errors import ValidationFailed
from web.auth import current_actor, login_required, roles_required
from web.db import clock, commit, get_session, rollback

bp = Blueprint("legal_time", __name__)


def _page(errors: list[str] | None = None, status: int = 200) -> Any:
    session = get_session()
    overrides = calendar_overrides.list_overrides(session)
    version = calendar_overrides.load_calendar(session).version
    return (
        render_template(
            "calendar/overrides.html",
            overrides=overrides,
            version=version,
            kinds=KINDS,
            errors=errors or [],
            form=request.form,
        ),
        status,
    )


@bp.get("/admin/calendar")
@roles_required("admin")
def overrides() -> Any:
    return _page()


@bp.post("/admin/calendar")
@roles_required("admin")
def add_override() -> Any:
    form = request.form
    try:
        day = date.fromisoformat(form.get("day", ""))
    except ValueError:
        return _page([_("day: a date is required (YYYY-MM-DD)")], 422)
    try:
        calendar_overrides.add_override(
            get_session(),
            actor=current_actor(),
            day=day,
            kind=form.get("kind", ""),
            reason=form.get("reason", ""),
            legal_act=form.get("legal_act", ""),
            now=clock().now(),
        )
    except ValidationFailed as exc:
        rollback()
        return _page([str(e) for e in exc.errors] or [exc.message], 422)
    commit()
    flash(_("The calendar was changed."))
    return redirect(url_for("legal_time.overrides"))


@bp.post("/admin/calendar/<day>/remove")
@roles_required("admin")
def remove_override(day: str) -> Any:
    try:
        which = date.fromisoformat(day)
    except ValueError:
        abort(404)
    calendar_overrides.remove_override(
        get_session(), actor=current_actor(), day=which, now=clock().now()
    )
    commit()
    flash(_("The calendar was changed."))
    return redirect(url_for("legal_time.overrides"))


def _json(view: notifications.NotificationView) -> dict[str, Any]:
    return {
        "id": view.id,
        "kind": view.kind,
        "title": view.title,
        "body": view.body,
        "task_id": view.task_id,
        "instance_id": view.instance_id,
        "created_at": view.created_at.isoformat(),
        "created_local": view.created_at.astimezone(DEPARTMENT_TZ).strftime("%d.%m.%Y %H:%M"),
    }


@bp.get("/notifications")
@login_required
def unread() -> Any:
    session, actor = get_session(), current_actor()
    items = notifications.unread(session, actor=actor)
    return jsonify(
        unread=notifications.unread_count(session, actor=actor),
        items=[_json(v) for v in items],
    )


@bp.post("/notifications/read")
@login_required
def mark_read() -> Any:
    payload = request.get_json(silent=True) or request.form
    raw = payload.get("id")
    try:
        which = int(raw) if raw not in (None, "") else None
    except (TypeError, ValueError):
        abort(400)
    session, actor = get_session(), current_actor()
    marked = notifications.mark_read(session, actor=actor, now=clock().now(), notification_id=which)
    commit()
    return jsonify(marked=marked, unread=notifications.unread_count(session, actor=actor))
