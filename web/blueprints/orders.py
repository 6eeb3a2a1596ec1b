"""Orders of the head: drafting and review pages, the head's signing queue, the head's
delegations of signing to a deputy, the PDFs, and the public verification page (no sign-in)
where anyone checks a signed order.

Every view calls one service of ``engine.orders`` or ``engine.delegations``; the keys'
folder is ``app.config["ORDERS_KEYS_DIR"]`` or ``QORGAU_KEYS_DIR`` (default ``var/keys``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _

from engine import delegations as signing_delegations
from engine import orders, signing
from engine.calendar import local_day
from engine.errors import EngineError, FieldError, Forbidden, ValidationFailed
from engine.order_templates import TEMPLATES
from web.auth import current_actor, roles_required
from web.db import clock, commit, get_session, rollback
from web.formrender import date_range
from web.i18n import field_message

bp = Blueprint("orders", __name__)

STAFF = ("specialist", "lawyer", "head", "deputy_head", "admin", "auditor")
MAX_UPLOAD = 20 * 1024 * 1024


def _keys_dir() -> Path:
    configured = current_app.config.get("ORDERS_KEYS_DIR")
    return Path(configured) if configured else signing.keys_dir()


def _actor() -> Any:
    actor = current_actor()
    assert actor is not None
    return actor


@bp.get("/orders")
@roles_required(*STAFF)
def index() -> Any:
    status = request.args.get("status") or None
    return render_template(
        "orders/index.html",
        orders=orders.list_orders(get_session(), status=status),
        templates=sorted(TEMPLATES),
        status=status,
    )


@bp.get("/orders/new")
@roles_required("specialist")
def new(errors: list[Any] | None = None, status: int = 200) -> Any:
    code = request.values.get("template", "")
    template = TEMPLATES.get(code)
    return (
        render_template(
            "orders/new.html",
            templates=sorted(TEMPLATES),
            code=code,
            fields=template["fields"] if template else [],
            errors=errors or [],
            form=request.form,
        ),
        status,
    )


@bp.post("/orders/new")
@roles_required("specialist")
def create() -> Any:
    code = request.form.get("template", "")
    template = TEMPLATES.get(code)
    if template is None:
        return new([FieldError("template", "unknown template")], 422)
    data = {f: request.form.get(f, "").strip() for f in template["fields"]}
    try:
        view = orders.start_order(
            get_session(), actor=_actor(), template=code, data=data, clock=clock()
        )
        commit()
    except ValidationFailed as exc:
        rollback()
        return new(exc.errors, 422)
    flash(_("Draft created."), "info")
    return redirect(url_for("orders.detail", order_id=view.id))


@bp.get("/orders/<int:order_id>")
@roles_required(*STAFF)
def detail(order_id: int, errors: list[Any] | None = None, status: int = 200) -> Any:
    view = orders.get_order(get_session(), order_id=order_id)
    actor = _actor()
    return (
        render_template(
            "orders/detail.html",
            order=view,
            is_author=view.drafted_by == actor.username,
            may_review=actor.has_role("lawyer") and view.status == "review",
            errors=errors or [],
        ),
        status,
    )


def _lines(name: str) -> list[str]:
    return [line.strip() for line in request.form.get(name, "").splitlines() if line.strip()]


@bp.post("/orders/<int:order_id>/edit")
@roles_required("specialist")
def edit(order_id: int) -> Any:
    texts = {
        lang: {
            "title": request.form.get(f"title_{lang}", ""),
            "preamble": request.form.get(f"preamble_{lang}", ""),
            "points": _lines(f"points_{lang}"),
        }
        for lang in ("kk", "ru")
    }
    try:
        orders.edit_draft(
            get_session(), order_id=order_id, actor=_actor(), texts=texts, clock=clock()
        )
        if request.form.get("then") == "submit":
            orders.submit_order(get_session(), order_id=order_id, actor=_actor(), clock=clock())
        commit()
    except ValidationFailed as exc:
        rollback()
        return detail(order_id, exc.errors, 422)
    flash(_("Draft saved."), "info")
    return redirect(url_for("orders.detail", order_id=order_id))


@bp.post("/orders/<int:order_id>/review")
@roles_required("lawyer")
def review(order_id: int) -> Any:
    try:
        orders.review_order(
            get_session(),
            order_id=order_id,
            actor=_actor(),
            decision=request.form.get("decision", ""),
            comments=request.form.get("comments", "").strip() or None,
            clock=clock(),
        )
        commit()
    except ValidationFailed as exc:
        rollback()
        return detail(order_id, exc.errors, 422)
    flash(_("Review recorded."), "info")
    return redirect(url_for("orders.detail", order_id=order_id))


@bp.post("/orders/<int:order_id>/notify")
@roles_required("specialist")
def notify(order_id: int) -> Any:
    try:
        orders.notify_order(
            get_session(),
            order_id=order_id,
            actor=_actor(),
            notified_to=request.form.get("notified_to", "").strip(),
            delivery=request.form.get("delivery", "notified"),
            clock=clock(),
        )
        commit()
    except ValidationFailed as exc:
        rollback()
        return detail(order_id, exc.errors, 422)
    flash(_("Notification recorded."), "info")
    return redirect(url_for("orders.detail", order_id=order_id))


@bp.get("/orders/<int:order_id>/pdf")
@roles_required(*STAFF)
def pdf(order_id: int) -> Any:
    data = orders.order_pdf(get_session(), order_id=order_id)
    view = orders.get_order(get_session(), order_id=order_id)
    name = f"order-{view.number or 'draft-' + str(view.id)}.pdf".replace("/", "-")
    return Response(
        data,
        mimetype="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{name}"'},
    )


# --- the head's signing queue -----------------------------------------------------------


@bp.get("/orders/queue")
@roles_required("head", "deputy_head")
def queue(status: int = 200, errors: list[str] | None = None) -> Any:
    actor = _actor()
    session = get_session()
    principal, delegation = signing_delegations.signing_principal(
        session, actor=actor, now=clock().now()
    )
    return (
        render_template(
            "orders/queue.html",
            orders=orders.signing_queue(session, actor=actor, clock=clock()),
            principal=principal,
            delegation=delegation,
            may_delegate=actor.has_role("head") and actor.on_behalf_of is None,
            errors=errors or [],
        ),
        status,
    )


@bp.post("/orders/sign")
@roles_required("head", "deputy_head")
def sign() -> Any:
    actor = _actor()
    try:
        ids = [int(v) for v in request.form.getlist("order_id")]
    except ValueError:
        ids = []
    if not ids:
        return queue(422, [_("Select at least one order.")])
    try:
        signer = signing.open_signer(
            actor.username, request.form.get("passphrase", ""), _keys_dir()
        )
        done = orders.sign_orders(
            get_session(), order_ids=ids, actor=actor, signer=signer, clock=clock()
        )
        commit()
    except signing.KeyUnavailable:
        rollback()
        return queue(422, [_("The passphrase does not open your key.")])
    except (Forbidden, ValidationFailed) as exc:
        rollback()
        if isinstance(exc, Forbidden):
            raise
        return queue(422, [str(exc)])
    flash(
        _("Signed and registered: %(numbers)s", numbers=", ".join(f"№ {o.number}" for o in done)),
        "info",
    )
    return redirect(url_for("orders.queue"))


@bp.post("/orders/<int:order_id>/return")
@roles_required("head", "deputy_head")
def return_(order_id: int) -> Any:
    comments = request.form.get("comments", "").strip()
    try:
        orders.return_order(
            get_session(), order_id=order_id, actor=_actor(), comments=comments, clock=clock()
        )
        commit()
    except ValidationFailed as exc:
        rollback()
        return queue(422, [str(exc)])
    flash(_("Returned to the author with comments."), "info")
    return redirect(url_for("orders.queue"))


# --- the head's delegations of signing (Reg 18, 19) -------------------------------------


def _delegation_message(error: FieldError) -> str:
    # The engine's stable phrases (engine.delegations.grant_delegation), then the common ones.
    own = {
        "no such active user": _("No active user by this name."),
        "not a deputy head": _("This user is not a deputy head."),
        "ends before it starts": _("The delegation ends before it starts."),
    }
    return own.get(error.message) or field_message(error.message)


@bp.get("/orders/delegations")
@roles_required("head")
def delegations(errors: list[FieldError] | None = None, status: int = 200) -> Any:
    session = get_session()
    today = local_day(clock().now())
    rows = signing_delegations.list_delegations(session)
    by_field: dict[str, list[str]] = {}
    for error in errors or []:
        by_field.setdefault(error.field, []).append(_delegation_message(error))
    return (
        render_template(
            "orders/delegations.html",
            current=[d for d in rows if d.period(today) == "current"],
            future=[d for d in rows if d.period(today) == "future"],
            past=[d for d in rows if d.period(today) == "past"],
            deputies=signing_delegations.deputy_heads(session),
            me=_actor().username,
            errors=by_field,
            form=request.form,
            today=today,
        ),
        status,
    )


@bp.post("/orders/delegations")
@roles_required("head")
def grant() -> Any:
    days = date_range(request.form)
    if isinstance(days, list):
        return delegations(days, 422)
    starts, ends = days
    try:
        signing_delegations.grant_delegation(
            get_session(),
            actor=_actor(),
            deputy=request.form.get("deputy", "").strip(),
            starts_on=starts,
            ends_on=ends,
            reason=request.form.get("reason", "").strip() or None,
            now=clock().now(),
        )
        commit()
    except ValidationFailed as exc:
        rollback()
        return delegations(exc.errors, 422)
    flash(_("Delegation granted."), "info")
    return redirect(url_for("orders.delegations"))


@bp.post("/orders/delegations/<int:delegation_id>/revoke")
@roles_required("head")
def revoke(delegation_id: int) -> Any:
    signing_delegations.revoke_delegation(
        get_session(), actor=_actor(), delegation_id=delegation_id, now=clock().now()
    )
    commit()
    flash(_("Delegation revoked."), "info")
    return redirect(url_for("orders.delegations"))


# --- public verification ----------------------------------------------------------------


@bp.route("/verify", methods=["GET", "POST"])
def verify() -> Any:
    """Anyone may check a signed order: no sign-in, nothing stored."""
    if request.method == "GET":
        return render_template("orders/verify.html", result=None, error=None)
    upload = request.files.get("pdf")
    data = upload.read(MAX_UPLOAD + 1) if upload else b""
    if not data or len(data) > MAX_UPLOAD:
        return render_template(
            "orders/verify.html", result=None, error=_("Choose a PDF file (at most 20 MB).")
        ), 422
    try:
        root = signing.load_ca_certificate(_keys_dir())
    except EngineError:
        return render_template(
            "orders/verify.html", result=None, error=_("The Department CA is not set up.")
        ), 503
    result = orders.verify_order_pdf(get_session(), data=data, trust_roots=[root])
    rollback()  # a read: nothing to keep
    return render_template("orders/verify.html", result=result, error=None), (
        200 if result.ok else 422
    )
