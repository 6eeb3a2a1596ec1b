"""Start a procedure: the processes the user's roles may start, and their start forms."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from engine import definitions, forms, instances, tasks
from engine.errors import FieldError, ValidationFailed
from web.auth import current_actor, login_required
from web.db import clock, commit, get_session, rollback
from web.formrender import build_fields, coerce, form_help, form_title, raw_values

bp = Blueprint("start", __name__)


def _startable() -> list[Any]:
    actor = current_actor()
    assert actor is not None
    db = get_session()
    latest: dict[str, Any] = {}
    for view in definitions.list_versions(db):
        if view.process_key not in latest or view.version > latest[view.process_key].version:
            latest[view.process_key] = view
    result = []
    for key in sorted(latest):
        version = instances.latest_version(db, key)
        if instances.may_start(actor, version):
            result.append(version)
    return result


def _start_schema(version: Any) -> dict[str, Any] | None:
    key = (version.properties or {}).get("startForm")
    return (version.forms or {}).get(key) if key else None


@bp.get("/start")
@login_required
def index() -> Any:
    return render_template("start/index.html", versions=_startable())


def _render(version: Any, values: dict[str, str], errors: list[FieldError], status: int) -> Any:
    schema = _start_schema(version)
    return (
        render_template(
            "start/form.html",
            version=version,
            title=form_title(schema, version.name),
            instructions=form_help(schema),
            fields=build_fields(schema, values, errors),
            errors=errors,
            business_key=values.get("_business_key", ""),
        ),
        status,
    )


@bp.route("/start/<process_key>", methods=["GET", "POST"])
@login_required
def form(process_key: str) -> Any:
    actor = current_actor()
    assert actor is not None
    db = get_session()
    version = next((v for v in _startable() if v.process_key == process_key), None)
    if version is None:
        abort(404)
    if request.method == "GET":
        return _render(version, {}, [], 200)
    schema = _start_schema(version)
    raw = raw_values(schema, request.form)
    business_key = request.form.get("business_key", "").strip()[:255] or None
    data, problems = coerce(schema, raw)
    if problems:
        rest: list[FieldError] = []
        try:
            forms.validate_submission(None, schema, data)
        except ValidationFailed as exc:
            rest = [e for e in exc.errors if e.field not in {p.field for p in problems}]
        return _render(version, {**raw, "_business_key": business_key or ""}, problems + rest, 422)
    try:
        view = instances.start_process(
            db,
            process_key=process_key,
            actor=actor,
            data=data,
            business_key=business_key,
            clock=clock(),
        )
        commit()
    except ValidationFailed as exc:
        rollback()
        return _render(version, {**raw, "_business_key": business_key or ""}, exc.errors, 422)
    flash(_("Case #%(id)s started.", id=view.id), "info")
    # Straight to the first task when it is this user's to do.
    for task in view.ready_tasks:
        if tasks.allowed_actions(db, task_id=task.id, actor=actor) & {"claim", "complete"}:
            return redirect(url_for("tasks.show", task_id=task.id))
    return redirect(url_for("inbox.index"))
