"""The analysts' studio: process library, BPMN/DMN modeler, forms and deadline rules editors,
validate, deploy, version diffs, and (for administrators) migration of running cases.

Analysts edit and deploy; administrators migrate; both see the library. Every POST carries
the CSRF token (the modeler's JSON calls send it as the ``X-CSRF-Token`` header). Every
upload and save goes through ``engine.studio``, which parses it as safely as the CLI does and
refuses unsafe XML and code the sandbox refuses before anything is stored.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _

from engine import library, studio
from engine.config import FORMS_DIR
from engine.errors import DeployError, EngineError, Problem, ValidationFailed
from engine.migration import migrate_instances, migration_choices
from web.auth import current_actor, roles_required
from web.db import clock, commit, get_session, rollback
from web.formrender import build_fields

bp = Blueprint("studio", __name__, url_prefix="/studio")

EDITORS = ("analyst",)
READERS = ("analyst", "admin")
MIGRATORS = ("admin",)
UNITS = ("working_days", "calendar_days", "hours")


def _forms_dir() -> Path:
    return Path(current_app.config.get("FORMS_DIR") or FORMS_DIR)


def _problem_json(problem: Problem) -> dict[str, Any]:
    return {
        "file": problem.file,
        "line": problem.line,
        "element_id": problem.element_id,
        "message": problem.message,
    }


def _error_json(exc: EngineError, status: int) -> Any:
    body: dict[str, Any] = {"error": {"code": exc.code, "message": str(exc.message)}}
    if isinstance(exc, DeployError):
        body["problems"] = [_problem_json(p) for p in exc.problems]
        body["error"]["message"] = "; ".join(str(p) for p in exc.problems)
    if isinstance(exc, ValidationFailed):
        body["error"]["message"] = str(exc)
    return jsonify(body), status


def _messages(exc: EngineError) -> list[str]:
    if isinstance(exc, DeployError):
        return [str(p) for p in exc.problems]
    return [str(exc)]


# --- library ----------------------------------------------------------------------------


@bp.get("/")
@roles_required(*READERS)
def index() -> Any:
    db = get_session()
    return render_template(
        "studio/index.html",
        library=library.list_library(db),
        drafts=studio.list_drafts(db),
        may_edit=bool(current_actor().roles & set(EDITORS)),
        may_migrate=bool(current_actor().roles & set(MIGRATORS)),
    )


@bp.get("/diff")
@roles_required(*READERS)
def diff() -> Any:
    try:
        before, after = int(request.args["from"]), int(request.args["to"])
    except (KeyError, ValueError):
        abort(400)
    result = library.version_diff(get_session(), from_version_id=before, to_version_id=after)
    return render_template("studio/diff.html", diff=result)


@bp.post("/versions/<int:version_id>/edit")
@roles_required(*EDITORS)
def edit_version(version_id: int) -> Any:
    draft = studio.draft_from_version(
        get_session(),
        version_id=version_id,
        actor=current_actor(),
        now=clock().now(),
        forms_dir=_forms_dir(),
    )
    commit()
    return redirect(url_for("studio.draft", draft_id=draft.id))


@bp.post("/import")
@roles_required(*EDITORS)
def import_diagram() -> Any:
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        flash(_("Choose a .bpmn file to import."), "error")
        return redirect(url_for("studio.index"))
    name = Path(upload.filename).name
    try:
        draft = studio.import_draft(
            get_session(),
            file_name=name,
            content=upload.read(),
            actor=current_actor(),
            now=clock().now(),
            forms_dir=_forms_dir(),
        )
        commit()
    except (DeployError, ValidationFailed) as exc:
        rollback()
        for message in _messages(exc):
            flash(_("Refused: %(message)s", message=message), "error")
        return redirect(url_for("studio.index")), 303
    return redirect(url_for("studio.draft", draft_id=draft.id))


# --- a draft: the modeler ---------------------------------------------------------------


@bp.get("/drafts/<int:draft_id>")
@roles_required(*EDITORS)
def draft(draft_id: int) -> Any:
    view = studio.get_draft(get_session(), draft_id=draft_id)
    return render_template("studio/draft.html", draft=view, units=UNITS)


@bp.get("/drafts/<int:draft_id>/content")
@roles_required(*EDITORS)
def draft_content(draft_id: int) -> Any:
    view = studio.get_draft(get_session(), draft_id=draft_id)
    return jsonify(
        bpmn_xml=view.bpmn_xml,
        revision=view.revision,
        lacks=[_problem_json(p) for p in view.lacks],
    )


@bp.post("/drafts/<int:draft_id>/save")
@roles_required(*EDITORS)
def save(draft_id: int) -> Any:
    body = request.get_json(silent=True) or {}
    xml = body.get("bpmn_xml")
    if not isinstance(xml, str):
        return jsonify(error={"code": "bad_request", "message": "bpmn_xml is required"}), 400
    revision = body.get("revision")
    try:
        view = studio.save_draft(
            get_session(),
            draft_id=draft_id,
            actor=current_actor(),
            now=clock().now(),
            bpmn_xml=xml,
            expected_revision=revision if isinstance(revision, int) else None,
            forms_dir=_forms_dir(),
        )
        commit()
    except (DeployError, ValidationFailed) as exc:
        rollback()
        return _error_json(exc, 422)
    return jsonify(revision=view.revision, lacks=[_problem_json(p) for p in view.lacks])


@bp.post("/drafts/<int:draft_id>/validate")
@roles_required(*EDITORS)
def validate(draft_id: int) -> Any:
    problems = studio.validate_draft(
        get_session(), draft_id=draft_id, actor=current_actor(), forms_dir=_forms_dir()
    )
    commit()
    return jsonify(problems=[_problem_json(p) for p in problems])


@bp.post("/drafts/<int:draft_id>/deploy")
@roles_required(*EDITORS)
def deploy(draft_id: int) -> Any:
    try:
        created = studio.deploy_draft(
            get_session(),
            draft_id=draft_id,
            actor=current_actor(),
            now=clock().now(),
            comment=request.form.get("comment") or None,
            forms_dir=_forms_dir(),
        )
        commit()
    except (DeployError, ValidationFailed) as exc:
        rollback()
        for message in _messages(exc):
            flash(_("Not deployed: %(message)s", message=message), "error")
        return redirect(url_for("studio.draft", draft_id=draft_id)), 303
    names = ", ".join(f"{v.process_key} v{v.version}" for v in created)
    flash(_("Deployed: %(names)s", names=names), "info")
    return redirect(url_for("studio.index"))


# --- DMN --------------------------------------------------------------------------------


@bp.get("/drafts/<int:draft_id>/dmn/<name>")
@roles_required(*EDITORS)
def dmn(draft_id: int, name: str) -> Any:
    view = studio.get_draft(get_session(), draft_id=draft_id)
    if name not in view.dmn_files:
        abort(404)
    return render_template("studio/dmn.html", draft=view, name=name)


@bp.get("/drafts/<int:draft_id>/dmn/<name>/content")
@roles_required(*EDITORS)
def dmn_content(draft_id: int, name: str) -> Any:
    view = studio.get_draft(get_session(), draft_id=draft_id)
    if name not in view.dmn_files:
        abort(404)
    return jsonify(dmn_xml=view.dmn_files[name])


@bp.post("/drafts/<int:draft_id>/dmn/<name>/save")
@roles_required(*EDITORS)
def dmn_save(draft_id: int, name: str) -> Any:
    db = get_session()
    view = studio.get_draft(db, draft_id=draft_id)
    body = request.get_json(silent=True) or {}
    if name not in view.dmn_files or not isinstance(body.get("dmn_xml"), str):
        abort(400)
    files = dict(view.dmn_files)
    files[name] = body["dmn_xml"]
    try:
        view = studio.save_draft(
            db,
            draft_id=draft_id,
            actor=current_actor(),
            now=clock().now(),
            dmn_files=files,
            forms_dir=_forms_dir(),
        )
        commit()
    except (DeployError, ValidationFailed) as exc:
        rollback()
        return _error_json(exc, 422)
    return jsonify(revision=view.revision, lacks=[_problem_json(p) for p in view.lacks])


# --- forms ------------------------------------------------------------------------------


def _preview_fields(schema_text: str) -> tuple[list[Any], list[str]]:
    try:
        schema = studio.parse_form("preview", schema_text)
    except ValidationFailed as exc:
        return [], [str(e) for e in exc.errors] or [str(exc)]
    return build_fields(schema), []


@bp.route("/drafts/<int:draft_id>/form", methods=["GET", "POST"])
@roles_required(*EDITORS)
def form(draft_id: int) -> Any:
    """The forms editor: the JSON Schema (labels in kk/ru/en under ``x-i18n``), checked as
    a schema, with a preview rendered by the inbox's own field templates."""
    db = get_session()
    view = studio.get_draft(db, draft_id=draft_id)
    key = (request.values.get("key") or "").strip()
    errors: list[str] = []
    status = 200
    if request.method == "POST":
        text = request.form.get("schema", "")
        try:
            studio.put_form(
                db,
                draft_id=draft_id,
                key=key,
                schema_text=text,
                actor=current_actor(),
                now=clock().now(),
                forms_dir=_forms_dir(),
            )
            commit()
        except ValidationFailed as exc:
            rollback()
            errors = [str(e) for e in exc.errors] or [str(exc)]
            status = 422
        else:
            flash(_("Form %(key)s saved.", key=key), "info")
            return redirect(url_for("studio.form", draft_id=draft_id, key=key))
    else:
        schema = view.forms.get(key) if key else None
        text = json.dumps(schema, ensure_ascii=False, indent=2) if schema else _FORM_TEMPLATE
    fields, preview_errors = _preview_fields(text)
    return (
        render_template(
            "studio/form.html",
            draft=view,
            key=key,
            text=text,
            errors=errors,
            fields=fields,
            preview_errors=preview_errors,
        ),
        status,
    )


_FORM_TEMPLATE = """{
  "type": "object",
  "required": [],
  "properties": {},
  "x-i18n": {"kk": {"title": ""}, "ru": {"title": ""}, "en": {"title": ""}}
}"""


@bp.post("/preview")
@roles_required(*EDITORS)
def preview() -> Any:
    body = request.get_json(silent=True) or {}
    fields, errors = _preview_fields(str(body.get("schema", "")))
    html = render_template("studio/_preview.html", fields=fields, preview_errors=errors)
    return jsonify(html=html, errors=errors)


# --- deadline rules ---------------------------------------------------------------------


def _date(value: str | None, name: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationFailed(f"{name} must be a date (YYYY-MM-DD)") from None


@bp.post("/drafts/<int:draft_id>/rules")
@roles_required(*EDITORS)
def rules(draft_id: int) -> Any:
    """Add a deadline rule (or a new period of one) with its legal basis and effective
    dates, or replace the whole rules text."""
    form = request.form
    db = get_session()
    try:
        if "rules_yaml" in form:
            studio.save_draft(
                db,
                draft_id=draft_id,
                actor=current_actor(),
                now=clock().now(),
                rules_yaml=form["rules_yaml"],
                forms_dir=_forms_dir(),
            )
        else:
            try:
                value = int(form.get("value", ""))
            except ValueError:
                raise ValidationFailed("the term must be a whole number") from None
            studio.put_rule(
                db,
                draft_id=draft_id,
                key=form.get("key", ""),
                basis=form.get("basis", ""),
                value=value,
                unit=form.get("unit", ""),
                effective_from=_date(form.get("effective_from"), "effective from"),
                effective_to=_date(form.get("effective_to"), "effective to"),
                actor=current_actor(),
                now=clock().now(),
                forms_dir=_forms_dir(),
            )
        commit()
    except (DeployError, ValidationFailed) as exc:
        rollback()
        for message in _messages(exc):
            flash(_("Rule not saved: %(message)s", message=message), "error")
        return redirect(url_for("studio.draft", draft_id=draft_id) + "#rules"), 303
    flash(_("Deadline rules saved."), "info")
    return redirect(url_for("studio.draft", draft_id=draft_id) + "#rules")


# --- migration (administrators) ---------------------------------------------------------


@bp.route("/migrate/<process_key>", methods=["GET", "POST"])
@roles_required(*MIGRATORS)
def migrate(process_key: str) -> Any:
    """Choose running cases and a newer version; a dry run first, then the move."""
    db = get_session()
    versions, cases = migration_choices(db, process_key=process_key)
    result = None
    status = 200
    if request.method == "POST":
        try:
            chosen = [int(i) for i in request.form.getlist("instance_id")]
            target = int(request.form.get("target", ""))
        except ValueError:
            abort(400)
        dry_run = request.form.get("action") != "migrate"
        try:
            result = migrate_instances(
                db,
                instance_ids=chosen,
                target_version_id=target,
                actor=current_actor(),
                dry_run=dry_run,
                clock=clock(),
            )
            if not dry_run:
                commit()
        except ValidationFailed as exc:
            rollback()
            flash(str(exc), "error")
            status = 422
        else:
            if not dry_run:
                flash(_("%(n)s case(s) moved.", n=len(result.moved)), "info")
    return (
        render_template(
            "studio/migrate.html",
            process_key=process_key,
            versions=versions,
            cases=cases,
            result=result,
        ),
        status,
    )
