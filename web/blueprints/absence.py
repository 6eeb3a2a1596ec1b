"""Absences: record when one is away and who stands in; see whom one stands in for."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from engine import absence
from engine.calendar import local_day
from engine.errors import FieldError, ValidationFailed
from web.auth import current_actor, login_required
from web.db import clock, commit, get_session, rollback
from web.formrender import date_range

bp = Blueprint("absence", __name__)


@bp.get("/absence")
@login_required
def index(errors: list[FieldError] | None = None, status: int = 200) -> Any:
    actor = current_actor()
    assert actor is not None
    rows = absence.list_absences(get_session(), user_id=actor.user_id or 0)
    today = local_day(clock().now())
    return (
        render_template(
            "absence/index.html",
            mine=[a for a in rows if a.user_id == actor.user_id],
            deputy_for=[a for a in rows if a.deputy_id == actor.user_id],
            today=today,
            errors=errors or [],
            form=request.form,
        ),
        status,
    )


@bp.post("/absence")
@login_required
def record() -> Any:
    actor = current_actor()
    assert actor is not None
    days = date_range(request.form)
    if isinstance(days, list):
        return index(days, 422)
    starts, ends = days
    try:
        absence.record_absence(
            get_session(),
            actor=actor,
            username=request.form.get("username") or actor.username,
            deputy=request.form.get("deputy", "").strip(),
            starts_on=starts,
            ends_on=ends,
            reason=request.form.get("reason", "").strip()[:500],
            now=clock().now(),
        )
        commit()
    except ValidationFailed as exc:
        rollback()
        return index(exc.errors, 422)
    flash(_("Absence recorded."), "info")
    return redirect(url_for("absence.index"))


@bp.post("/absence/<int:absence_id>/cancel")
@login_required
def cancel(absence_id: int) -> Any:
    actor = current_actor()
    assert actor is not None
    absence.cancel_absence(get_session(), actor=actor, absence_id=absence_id, now=clock().now())
    commit()
    flash(_("Absence cancelled."), "info")
    return redirect(url_for("absence.index"))
