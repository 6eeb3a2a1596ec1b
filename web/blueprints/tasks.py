"""The task page: the form rendered from its JSON Schema, the actions the engine allows,
drafts, and completion that refuses stale forms."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from engine import absence, forms, tasks, worklist
from engine.errors import Conflict, EngineError, FieldError, InvalidTransition, ValidationFailed
from engine.identity import Actor
from engine.models import User
from web.auth import current_actor, login_required
from web.blueprints.inbox import principal_for
from web.db import clock, commit, get_session, rollback
from web.formrender import build_fields, coerce, form_help, form_title, raw_values
from web.templating import local_dt, role_names

bp = Blueprint("tasks", __name__)


def _who_when(task: Any) -> str:
    """Who completed a task and when, in the user's language."""
    user = get_session().get(User, task.completed_by_id) if task.completed_by_id else None
    when = local_dt(task.completed_at)
    if task.status == "completed":
        return _(
            "This task was already completed by %(who)s on %(when)s.",
            who=user.full_name if user else _("the system"),
            when=when,
        )
    return _("This task was cancelled on %(when)s.", when=when)


def _can_take_over(task: Any, actor: Actor) -> bool:
    if task.status != "ready" or task.assignee_id is None or task.assignee_id == actor.user_id:
        return False
    db = get_session()
    return any(
        task.assignee_id == absence.absent_user_id(db, p)
        for p in absence.principals(db, deputy=actor, now=clock().now())
    )


def _render(
    task_id: int,
    *,
    values: dict[str, Any] | None = None,
    errors: list[FieldError] | None = None,
    problem: str | None = None,
    status: int = 200,
) -> Any:
    actor = current_actor()
    assert actor is not None
    db = get_session()
    principal = principal_for(task_id)
    detail = tasks.task_detail(db, task_id=task_id, actor=principal)
    task, schema, allowed = detail.task, detail.form, detail.actions
    # The page shows only these of its case; the whole case (ready tasks, incident) is not read.
    instance = {
        "id": task.instance_id,
        "business_key": detail.business_key,
        "revision": detail.revision,
    }
    if values is None:
        values = worklist.get_draft(db, task_id=task_id, actor=actor) or {}
    assignee = db.get(User, task.assignee_id) if task.assignee_id else None
    return (
        render_template(
            "inbox/task.html",
            task=task,
            instance=instance,
            title=form_title(schema, task.name),
            instructions=form_help(schema),
            fields=build_fields(schema, values, errors),
            errors=errors or [],
            allowed=allowed,
            take_over=_can_take_over(task, actor),
            principal=principal,
            assignee=assignee,
            done_message=_who_when(task) if task.status != "ready" else None,
            problem=problem,
            roles=role_names(),
            has_draft=bool(values),
        ),
        status,
    )


@bp.get("/tasks/<int:task_id>")
@login_required
def show(task_id: int) -> Any:
    return _render(task_id)


def _command(task_id: int, run: Any, done: str) -> Any:
    try:
        run()
        commit()
    except (InvalidTransition, Conflict) as exc:
        rollback()
        return _render(task_id, problem=_stale_message(task_id, exc), status=409)
    flash(done, "info")
    return redirect(url_for("tasks.show", task_id=task_id))


def _revision() -> int | None:
    value = request.form.get("revision", "")
    return int(value) if value.isdigit() else None


@bp.post("/tasks/<int:task_id>/claim")
@login_required
def claim(task_id: int) -> Any:
    principal = principal_for(task_id)
    return _command(
        task_id,
        lambda: tasks.claim_task(get_session(), task_id=task_id, actor=principal, clock=clock()),
        _("The task is yours now."),
    )


@bp.post("/tasks/<int:task_id>/release")
@login_required
def release(task_id: int) -> Any:
    principal = principal_for(task_id)
    return _command(
        task_id,
        lambda: tasks.release_task(get_session(), task_id=task_id, actor=principal, clock=clock()),
        _("The task is back in its queue."),
    )


@bp.post("/tasks/<int:task_id>/assign")
@login_required
def assign(task_id: int) -> Any:
    actor = current_actor()
    assignee = request.form.get("assignee", "").strip()
    try:
        tasks.assign_task(
            get_session(), task_id=task_id, actor=actor, assignee=assignee, clock=clock()
        )
        commit()
    except ValidationFailed as exc:
        rollback()
        return _render(
            task_id, errors=exc.errors, problem=_("The task was not assigned."), status=422
        )
    except (InvalidTransition, Conflict) as exc:
        rollback()
        return _render(task_id, problem=_stale_message(task_id, exc), status=409)
    flash(_("The task was assigned to %(who)s.", who=assignee), "info")
    return redirect(url_for("tasks.show", task_id=task_id))


@bp.post("/tasks/<int:task_id>/take-over")
@login_required
def take_over(task_id: int) -> Any:
    actor = current_actor()
    assert actor is not None
    return _command(
        task_id,
        lambda: absence.take_over_task(get_session(), task_id=task_id, deputy=actor, clock=clock()),
        _("You have taken over the task of your absent colleague."),
    )


@bp.post("/tasks/<int:task_id>/draft")
@login_required
def save_draft(task_id: int) -> Any:
    actor = current_actor()
    assert actor is not None
    db = get_session()
    principal = principal_for(task_id)
    # A draft is for the one who may complete the task, not for every reader of it.
    if "complete" not in tasks.allowed_actions(db, task_id=task_id, actor=principal):
        abort(403)
    schema = tasks.task_form(db, task_id=task_id)
    worklist.save_draft(
        db, task_id=task_id, actor=actor, data=raw_values(schema, request.form), now=clock().now()
    )
    commit()
    flash(_("Draft saved."), "info")
    return redirect(url_for("tasks.show", task_id=task_id))


@bp.post("/tasks/<int:task_id>/complete")
@login_required
def complete(task_id: int) -> Any:
    db = get_session()
    principal = principal_for(task_id)
    task = tasks.get_task(db, task_id=task_id, actor=principal)
    # Who may act is decided before the input is looked at. A task that is no longer open
    # goes on to the engine, which says who completed it and when.
    if task.status == "ready" and "complete" not in tasks.allowed_actions(
        db, task_id=task_id, actor=principal
    ):
        abort(403)
    schema = tasks.task_form(db, task_id=task_id)
    raw = raw_values(schema, request.form)
    data, problems = coerce(schema, raw)
    if problems:
        # Report the type problems together with everything else wrong in the form.
        rest: list[FieldError] = []
        bad = {p.field for p in problems}
        try:
            forms.validate_submission(task.form_key, schema, data)
        except ValidationFailed as exc:
            rest = [e for e in exc.errors if e.field not in bad]
        return _render(task_id, values=raw, errors=problems + rest, status=422)
    try:
        tasks.complete_task(
            db,
            task_id=task_id,
            actor=principal,
            data=data,
            clock=clock(),
            expected_revision=_revision(),
        )
        worklist.drop_drafts(db, task_id=task_id)
        commit()
    except ValidationFailed as exc:
        rollback()
        return _render(task_id, values=raw, errors=exc.errors, status=422)
    except (InvalidTransition, Conflict) as exc:
        rollback()
        return _render(task_id, values=raw, problem=_stale_message(task_id, exc), status=409)
    except EngineError:
        rollback()
        raise
    flash(_("Task completed: %(name)s.", name=task.name), "info")
    return redirect(url_for("inbox.index"))


def _stale_message(task_id: int, exc: EngineError) -> str:
    if isinstance(exc, Conflict):
        return _(
            "Someone else changed this case since you opened the form. Nothing was saved; "
            "check the task and submit again."
        )
    task = tasks.get_task(get_session(), task_id=task_id, actor=principal_for(task_id))
    if task.status != "ready":
        return _who_when(task)
    return str(exc)
