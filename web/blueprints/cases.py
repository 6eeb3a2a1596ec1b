"""Case file pages: the child, people, documents, comments, procedures, timeline, diagram.

Every view calls the engine's case services (``engine/cases.py``, ``engine/documents.py``,
``engine/diagrams.py``), which decide who may see or change a case. The diagram viewer is
bpmn-js, installed from npm by ``make install`` and served from ``node_modules`` by
``vendor`` below: nothing is fetched from the internet when a page is shown.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import quote

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    send_from_directory,
    url_for,
)
from flask_babel import gettext as _

from engine import cases, diagrams, documents, procedures
from engine.config import PROJECT_ROOT
from engine.errors import FieldError, ValidationFailed
from web.auth import current_actor, login_required
from web.db import clock, commit, get_session, rollback

bp = Blueprint("cases", __name__)

# Only the viewer bundle and its stylesheets are served, never the rest of node_modules.
BPMN_JS_DIST = PROJECT_ROOT / "node_modules" / "bpmn-js" / "dist"
VENDOR_FILES = {
    "bpmn-viewer.production.min.js",
    "assets/bpmn-js.css",
    "assets/diagram-js.css",
    "assets/bpmn-font/css/bpmn.css",
}


def _actor() -> Any:
    actor = current_actor()
    assert actor is not None  # login_required ran
    return actor


def _field_errors(exc: ValidationFailed) -> None:
    from web.i18n import field_message

    rollback()
    if not exc.errors:
        flash(exc.message, "error")
    for error in exc.errors:
        flash(f"{error.field}: {field_message(error.message)}", "error")


# --- list and create --------------------------------------------------------------------


@bp.get("/cases")
@login_required
def index() -> Any:
    found = cases.list_cases(get_session(), actor=_actor(), search=request.args.get("q"))
    return render_template("cases/index.html", cases=found, q=request.args.get("q", ""))


def _date(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationFailed(
            "the child's details have errors",
            [FieldError("child_birth_date", "not a valid date")],
        ) from None


@bp.post("/cases")
@login_required
def create() -> Any:
    form = request.form
    try:
        view = cases.create_case(
            get_session(),
            actor=_actor(),
            child_name=form.get("child_name", ""),
            child_iin=form.get("child_iin") or None,
            child_birth_date=_date(form.get("child_birth_date")),
            child_sex=form.get("child_sex") or None,
            district_code=form.get("district") or None,
            clock=clock(),
        )
        commit()
    except ValidationFailed as exc:
        _field_errors(exc)
        found = cases.list_cases(get_session(), actor=_actor())
        return render_template("cases/index.html", cases=found, q="", form=form), 422
    flash(_("Case %(number)s opened.", number=view.number), "info")
    return redirect(url_for("cases.show", case_id=view.id))


# --- the case page ----------------------------------------------------------------------


def _page(case_id: int, status: int = 200) -> Any:
    db, actor = get_session(), _actor()
    view = cases.get_case(db, case_id=case_id, actor=actor)
    runs = cases.case_procedures(db, case_id=case_id, actor=actor)
    return (
        render_template(
            "cases/show.html",
            case=view,
            may_change=cases.may_change(actor, cases.readable_case(db, case_id, actor)),
            people=cases.case_people(db, case_id=case_id, actor=actor),
            documents=documents.case_documents(db, case_id=case_id, actor=actor),
            comments=cases.case_comments(db, case_id=case_id, actor=actor),
            procedures=runs,
            process_of={run.instance_id: run.process_key for run in runs},
            startable=procedures.startable(db, actor=actor),
            timeline=cases.case_timeline(db, case_id=case_id, actor=actor),
            person_roles=cases.PERSON_ROLES,
            selected=request.args.get("procedure", type=int)
            or (runs[-1].instance_id if runs else None),
        ),
        status,
    )


@bp.get("/cases/<int:case_id>")
@login_required
def show(case_id: int) -> Any:
    return _page(case_id)


def _after(case_id: int, action: Any) -> Any:
    """Run ``action``; on refused input show the page again with the messages (422)."""
    try:
        action()
        commit()
    except ValidationFailed as exc:
        _field_errors(exc)
        return _page(case_id, 422)
    return redirect(url_for("cases.show", case_id=case_id))


@bp.post("/cases/<int:case_id>/people")
@login_required
def add_person(case_id: int) -> Any:
    form = request.form
    return _after(
        case_id,
        lambda: cases.add_person(
            get_session(),
            case_id=case_id,
            actor=_actor(),
            role=form.get("role", ""),
            full_name=form.get("full_name", ""),
            iin=form.get("iin") or None,
            phone=form.get("phone") or None,
            clock=clock(),
        ),
    )


@bp.post("/cases/<int:case_id>/comments")
@login_required
def add_comment(case_id: int) -> Any:
    return _after(
        case_id,
        lambda: cases.add_comment(
            get_session(),
            case_id=case_id,
            actor=_actor(),
            body=request.form.get("body", ""),
            clock=clock(),
        ),
    )


@bp.post("/cases/<int:case_id>/documents")
@login_required
def upload(case_id: int) -> Any:
    upload_file = request.files.get("file")
    content, name = b"", ""
    if upload_file is not None:
        try:
            # One byte past the limit is enough to refuse an oversized file by its size.
            content = upload_file.read(_max_upload() + 1)
            name = upload_file.filename or ""
        finally:
            upload_file.close()
    return _after(
        case_id,
        lambda: documents.upload_document(
            get_session(),
            case_id=case_id,
            actor=_actor(),
            file_name=name,
            content=content,
            clock=clock(),
            max_bytes=_max_upload(),
        ),
    )


@bp.get("/cases/<int:case_id>/documents/<int:document_id>")
@login_required
def download(case_id: int, document_id: int) -> Any:
    view, content = documents.read_document(
        get_session(), case_id=case_id, document_id=document_id, actor=_actor()
    )
    response = Response(content, mimetype=view.content_type)
    # Always a download, never rendered in our origin; the type is the one the bytes have.
    response.headers["Content-Disposition"] = _attachment(view.file_name)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "sandbox; default-src 'none'"
    response.headers["Cache-Control"] = "no-store"
    return response


def _max_upload() -> int:
    """The upload limit: ``QORGAU_MAX_UPLOAD_BYTES`` in the app's config, else the engine's."""
    return int(current_app.config.get("QORGAU_MAX_UPLOAD_BYTES") or documents.MAX_DOCUMENT_BYTES)


def _attachment(name: str) -> str:
    """``attachment`` with an ASCII fallback name and the real one per RFC 6266 / 5987."""
    stem, dot, ext = name.rpartition(".")
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().strip()
    ascii_name = re.sub(r"[^A-Za-z0-9._ -]", "_", ascii_name)
    if not ascii_name.strip("._ -"):
        ascii_name = f"document{dot}{ext}" if dot and ext.isascii() else "document"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


@bp.post("/cases/<int:case_id>/procedures")
@login_required
def start(case_id: int) -> Any:
    process_key = request.form.get("process_key", "")
    if not process_key:
        abort(400)
    holder: dict[str, int] = {}

    def action() -> None:
        view = cases.start_case_procedure(
            get_session(), case_id=case_id, process_key=process_key, actor=_actor(), clock=clock()
        )
        holder["id"] = view.id

    response = _after(case_id, action)
    if "id" in holder:
        return redirect(url_for("cases.show", case_id=case_id, procedure=holder["id"]))
    return response


# --- the diagram ------------------------------------------------------------------------


@bp.get("/procedures/<int:instance_id>/diagram.json")
@login_required
def diagram(instance_id: int) -> Any:
    view = diagrams.process_diagram(get_session(), instance_id=instance_id, actor=_actor())
    response = jsonify(
        instance_id=view.instance_id,
        process_key=view.process_key,
        xml=view.xml,
        completed=list(view.completed),
        active=list(view.active),
        failed=list(view.failed),
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/vendor/bpmn-js/<path:name>")
def vendor(name: str) -> Any:
    if name not in VENDOR_FILES and not name.startswith("assets/bpmn-font/font/"):
        abort(404)
    if not Path(BPMN_JS_DIST, name).is_file():
        abort(404)  # `make install` (npm ci) has not run
    return send_from_directory(BPMN_JS_DIST, name, max_age=86400)
