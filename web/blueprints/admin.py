"""Administration (admin role): users, roles, districts."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from engine import accounts
from engine.errors import FieldError, ValidationFailed
from engine.models import District, Role
from web.auth import current_actor, roles_required
from web.db import clock, commit, get_session, rollback
from web.i18n import field_message

bp = Blueprint("admin", __name__, url_prefix="/admin")


def _lists() -> dict[str, Any]:
    db = get_session()
    return {
        "roles": list(db.scalars(select(Role).order_by(Role.code))),
        "districts": list(db.scalars(select(District).order_by(District.code))),
    }


def _errors(errors: list[FieldError]) -> list[str]:
    return [f"{e.field}: {field_message(e.message)}" for e in errors]


@bp.get("/users")
@roles_required("admin")
def users(errors: list[str] | None = None, status: int = 200) -> Any:
    people = accounts.list_users(get_session(), actor=current_actor())
    return (
        render_template(
            "admin/users.html", users=people, errors=errors or [], form=request.form, **_lists()
        ),
        status,
    )


@bp.post("/users")
@roles_required("admin")
def create_user() -> Any:
    form = request.form
    try:
        accounts.add_user(
            get_session(),
            actor=current_actor(),
            username=form.get("username", "").strip(),
            full_name=form.get("full_name", ""),
            password=form.get("password", ""),
            roles=form.getlist("roles"),
            district_code=form.get("district") or None,
            language=form.get("language", "kk"),
            now=clock().now(),
        )
        commit()
    except ValidationFailed as exc:
        rollback()
        return users(_errors(exc.errors), 422)
    flash(_("User created."), "info")
    return redirect(url_for("admin.users"))


@bp.route("/users/<username>", methods=["GET", "POST"])
@roles_required("admin")
def user(username: str) -> Any:
    db = get_session()
    actor = current_actor()
    errors: list[str] = []
    status = 200
    if request.method == "POST":
        form = request.form
        try:
            accounts.update_user(
                db,
                actor=actor,
                username=username,
                roles=form.getlist("roles"),
                district_code=form.get("district") or None,
                language=form.get("language", "kk"),
                is_active=form.get("is_active") == "1",
                now=clock().now(),
            )
            commit()
            flash(_("Saved."), "info")
            return redirect(url_for("admin.user", username=username))
        except ValidationFailed as exc:
            rollback()
            errors, status = _errors(exc.errors), 422
    view = accounts.get_user(db, actor=actor, username=username)
    return render_template("admin/user.html", user=view, errors=errors, **_lists()), status


@bp.get("/roles")
@roles_required("admin")
def roles() -> Any:
    return render_template("admin/roles.html", **_lists())


@bp.route("/districts", methods=["GET", "POST"])
@roles_required("admin")
def districts() -> Any:
    errors: list[str] = []
    status = 200
    if request.method == "POST":
        form = request.form
        try:
            accounts.add_district(
                get_session(),
                actor=current_actor(),
                code=form.get("code", ""),
                name_kk=form.get("name_kk", ""),
                name_ru=form.get("name_ru", ""),
                name_en=form.get("name_en", ""),
                now=clock().now(),
            )
            commit()
            flash(_("District added."), "info")
            return redirect(url_for("admin.districts"))
        except ValidationFailed as exc:
            rollback()
            errors, status = _errors(exc.errors), 422
    return render_template("admin/districts.html", errors=errors, **_lists()), status
