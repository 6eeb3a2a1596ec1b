"""Orders of the head (Reg 7, 18.9, 18.10): draft → legal review → signing → register → notice.

An order row is the document; the ``head_order`` process instance is its procedure. The row
never moves on its own: every step completes the instance's user task through
``engine.tasks.complete_task`` in the same transaction as the row's change, so the two can
never disagree, and the process's own rules (roles, forms, loops back to the draft) apply:

==================  =====================  ======================================
service             head_order task        order status after
==================  =====================  ======================================
``start_order``     (starts the process)   draft
``submit_order``    draft                  review
``review_order``    legal_review           signing, or draft (returned)
``return_order``    sign (return)          draft
``sign_orders``     sign, then register    registered (number, date, signed PDF)
``notify_order``    publish                notified
==================  =====================  ======================================

Numbers are given at signing, per register and calendar year, from one counter row that
the signing transaction updates before anything else: concurrent signers queue on that
row's write lock (PostgreSQL row lock; SQLite's single writer), and a failed signing rolls
its number back with it, so the numbers have no gaps and no duplicates.

Four eyes: the signer is never the drafter. A deputy head signs only under the head's
dated delegation (Reg 18, in the head's absence; Reg 19), which ``engine.delegations``
grants, revokes and looks up; the signing itself is recorded on the instance's chain with
``on_behalf_of``.

Signing tells the order's author its number, and delivery tells the author and whoever
started the order's process to whom it went (``engine.order_notices``), in the same
transaction as the step.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime
from io import BytesIO
from typing import Any

from cryptography import x509
from pypdf import PdfReader
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine import instances, order_notices, tasks
from engine.calendar import local_day
from engine.clock import SYSTEM_CLOCK, Clock
from engine.delegations import signing_principal
from engine.errors import FieldError, Forbidden, InvalidTransition, NotFound, ValidationFailed
from engine.identity import Actor
from engine.models import TASK_IS_OPEN, HumanTask, User
from engine.models.orders import (
    Order,
    OrderCounter,
    OrderRegister,
    OrderStep,
    OrderTemplate,
)
from engine.order_pdf import Registration, SignatureMark, parse_keywords, render_order
from engine.order_templates import as_text, ensure_registers, ensure_templates, fill
from engine.order_templates import latest_template as _latest_template
from engine.signing import SignatureCheck, Signer, check_signature

PROCESS_KEY = "head_order"
# head_order's start form knows fewer template kinds than we have templates.
START_KIND = {
    "guardianship.establish": "guardianship.establish",
    "custody.establish": "custody.establish",
    "guardianship.refusal": "guardianship.refusal",
    "adaptation_centre.placement": "placement.temporary",
    "guest_family.placement": "placement.temporary",
    "property.certificate": "general",
    "power_of_attorney": "general",
}
HEAD_POSITION = ("Басшы", "Руководитель")
DEPUTY_POSITION = ("Басшының орынбасары", "Заместитель руководителя")
# The register completes head_order's "register" step itself, at the moment of signing.
REGISTRAR = Actor(user_id=None, username="order-register", roles=frozenset({"specialist"}))


# --- views ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepView:
    action: str
    actor: str | None
    on_behalf_of: str | None
    comments: str | None
    at: datetime


@dataclass(frozen=True)
class OrderView:
    id: int
    register_code: str
    template_code: str
    template_version: int
    instance_id: int
    case_id: int | None
    status: str
    content: dict[str, Any]
    drafted_by: str
    signed_by: str | None
    on_behalf_of: str | None
    number: str | None
    year: int | None
    seq: int | None
    signed_on: date | None
    signed_at: datetime | None
    pdf_sha256: str | None
    steps: tuple[StepView, ...]

    @property
    def title_kk(self) -> str:
        return str(self.content["kk"]["title"])

    @property
    def title_ru(self) -> str:
        return str(self.content["ru"]["title"])


def _username(session: Session, user_id: int | None) -> str | None:
    if user_id is None:
        return None
    user = session.get(User, user_id)
    return user.username if user else None


def _full_name(session: Session, user_id: int) -> str | None:
    user = session.get(User, user_id)
    return user.full_name if user else None


def _view(session: Session, row: Order) -> OrderView:
    template = session.get(OrderTemplate, row.template_id)
    assert template is not None
    steps = session.scalars(
        select(OrderStep).where(OrderStep.order_id == row.id).order_by(OrderStep.id)
    )
    return OrderView(
        id=row.id,
        register_code=row.register_code,
        template_code=template.code,
        template_version=template.version,
        instance_id=row.instance_id,
        case_id=row.case_id,
        status=row.status,
        content=row.content,
        drafted_by=_username(session, row.drafted_by_id) or "?",
        signed_by=_username(session, row.signed_by_id),
        on_behalf_of=_username(session, row.on_behalf_of_id),
        number=row.number,
        year=row.year,
        seq=row.seq,
        signed_on=row.signed_on,
        signed_at=row.signed_at,
        pdf_sha256=row.pdf_sha256,
        steps=tuple(
            StepView(s.action, _username(session, s.actor_id), s.on_behalf_of, s.comments, s.at)
            for s in steps
        ),
    )


def _order(session: Session, order_id: int) -> Order:
    row = session.get(Order, order_id, populate_existing=True)
    if row is None:
        raise NotFound(f"order {order_id} does not exist")
    return row


def _require_status(row: Order, *allowed: str) -> None:
    if row.status not in allowed:
        raise InvalidTransition(
            f"order {row.id} is {row.status}; this needs it {' or '.join(allowed)}",
            order_id=row.id,
            status=row.status,
        )


def _step(session: Session, row: Order, action: str, actor: Actor, now: datetime, **kw: Any):  # type: ignore[no-untyped-def]
    session.add(
        OrderStep(
            order_id=row.id,
            action=action,
            actor_id=actor.user_id,
            on_behalf_of=actor.on_behalf_of,
            comments=kw.get("comments"),
            at=now,
        )
    )
    row.updated_at = now


def _ready_task(session: Session, row: Order, bpmn_id: str) -> HumanTask:
    task = session.scalars(
        select(HumanTask)
        .where(
            HumanTask.instance_id == row.instance_id,
            HumanTask.bpmn_id == bpmn_id,
            TASK_IS_OPEN,
        )
        .execution_options(populate_existing=True)
    ).first()
    if task is None:
        raise InvalidTransition(
            f"the procedure of order {row.id} is not at its {bpmn_id!r} step", order_id=row.id
        )
    return task


def get_order(session: Session, *, order_id: int) -> OrderView:
    return _view(session, _order(session, order_id))


def list_orders(
    session: Session, *, status: str | None = None, limit: int = 200
) -> list[OrderView]:
    stmt = select(Order).order_by(Order.id.desc()).limit(limit)
    if status is not None:
        stmt = stmt.where(Order.status == status)
    return [_view(session, r) for r in session.scalars(stmt)]


# --- drafting and review ----------------------------------------------------------------


def start_order(
    session: Session,
    *,
    actor: Actor,
    template: str,
    data: dict[str, Any],
    case_id: int | None = None,
    instance_id: int | None = None,
    business_key: str | None = None,
    district_id: int | None = None,
    clock: Clock | None = None,
) -> OrderView:
    """Draft an order from ``template`` filled with case ``data``.

    Without ``instance_id`` a ``head_order`` process is started for it; with one, the order
    takes the ready ``draft`` step of that instance (head_order called from a procedure).

    Raises:
        NotFound: unknown template. ValidationFailed: the data lacks a field the template
        needs (each named). Forbidden: the actor may not start orders (head_order's lane).
    """
    clock = clock or SYSTEM_CLOCK
    now = clock.now()
    ensure_templates(session, now)
    tpl = _latest_template(session, template)
    content = fill(tpl.body, data)
    if instance_id is None:
        view = instances.start_process(
            session,
            process_key=PROCESS_KEY,
            actor=actor,
            data={
                "order_template": START_KIND.get(template, "general"),
                "order_subject": content["ru"]["title"][:500],
            },
            business_key=business_key,
            district_id=district_id,
            case_id=case_id,
            clock=clock,
        )
        instance_id = view.id
    row = Order(
        register_code=tpl.register_code,
        template_id=tpl.id,
        instance_id=instance_id,
        case_id=case_id,
        status="draft",
        content=content,
        drafted_by_id=actor.user_id,
        created_at=now,
        updated_at=now,
    )
    busy = session.scalar(
        select(Order.id).where(
            Order.instance_id == instance_id, Order.status.in_(("draft", "review", "signing"))
        )
    )
    if busy is not None:
        raise InvalidTransition(f"process {instance_id} is already drafting order {busy}")
    session.add(row)
    session.flush()
    task = _ready_task(session, row, "draft")
    if not actor.has_role(task.role):
        raise Forbidden(f"{actor.username} may not draft orders (role {task.role})")
    _step(session, row, "drafted", actor, now)
    session.flush()
    return _view(session, row)


def _require_drafter(row: Order, actor: Actor) -> None:
    if row.drafted_by_id != actor.user_id:
        raise Forbidden("only the order's author may change or submit its draft")


def edit_draft(
    session: Session,
    *,
    order_id: int,
    actor: Actor,
    texts: dict[str, dict[str, Any]],
    clock: Clock | None = None,
) -> OrderView:
    """The author edits the draft before review: ``texts`` = {"kk"|"ru": {"title",
    "preamble", "points": [...]}} (any subset)."""
    now = (clock or SYSTEM_CLOCK).now()
    row = _order(session, order_id)
    _require_drafter(row, actor)
    _require_status(row, "draft")
    content = {k: (dict(v) if isinstance(v, dict) else v) for k, v in row.content.items()}
    errors = []
    for lang, part in texts.items():
        if lang not in ("kk", "ru"):
            errors.append(FieldError(lang, "unknown language"))
            continue
        for key, value in part.items():
            field = f"{key}_{lang}"
            if key == "points":
                points = [str(p).strip() for p in value if str(p).strip()]
                if not points:
                    errors.append(FieldError(field, "required"))
                content[lang]["points"] = points
            elif key in ("title", "preamble"):
                if not str(value).strip():
                    errors.append(FieldError(field, "required"))
                content[lang][key] = str(value).strip()
            else:
                errors.append(FieldError(field, "unknown field"))
    if errors:
        raise ValidationFailed("the draft is incomplete", errors)
    row.content = content
    _step(session, row, "edited", actor, now)
    session.flush()
    return _view(session, row)


def submit_order(
    session: Session, *, order_id: int, actor: Actor, clock: Clock | None = None
) -> OrderView:
    """The author sends the draft to legal review (completes head_order's ``draft``)."""
    clock = clock or SYSTEM_CLOCK
    row = _order(session, order_id)
    _require_drafter(row, actor)
    _require_status(row, "draft")
    task = _ready_task(session, row, "draft")
    content = row.content
    tasks.complete_task(
        session,
        task_id=task.id,
        actor=actor,
        clock=clock,
        data={
            "order_title_kk": content["kk"]["title"][:500],
            "order_title_ru": content["ru"]["title"][:500],
            "order_text_kk": as_text(content, "kk")[:20000],
            "order_text_ru": as_text(content, "ru")[:20000],
            "order_legal_basis": content["clauses"],
        },
    )
    row.status = "review"
    _step(session, row, "submitted", actor, clock.now())
    session.flush()
    return _view(session, row)


def review_order(
    session: Session,
    *,
    order_id: int,
    actor: Actor,
    decision: str,
    comments: str | None = None,
    clock: Clock | None = None,
) -> OrderView:
    """The lawyer approves the draft or returns it with comments (``legal_review``)."""
    clock = clock or SYSTEM_CLOCK
    row = _order(session, order_id)
    _require_status(row, "review")
    if row.drafted_by_id == actor.user_id:
        raise Forbidden("the author of an order may not review it")
    task = _ready_task(session, row, "legal_review")
    data: dict[str, Any] = {"legal_decision": decision}
    if comments:
        data["legal_comments"] = comments
    tasks.complete_task(session, task_id=task.id, actor=actor, clock=clock, data=data)
    row.status = "signing" if decision == "approve" else "draft"
    _step(
        session,
        row,
        "approved" if decision == "approve" else "returned",
        actor,
        clock.now(),
        comments=comments,
    )
    session.flush()
    return _view(session, row)


# --- the signing queue ------------------------------------------------------------------


def signing_queue(session: Session, *, actor: Actor, clock: Clock | None = None) -> list[OrderView]:
    """Drafts approved by the lawyer and awaiting signature, oldest first, with history."""
    signing_principal(session, actor=actor, now=(clock or SYSTEM_CLOCK).now())
    rows = session.scalars(
        select(Order).where(Order.status == "signing").order_by(Order.updated_at, Order.id)
    )
    return [_view(session, r) for r in rows]


def return_order(
    session: Session,
    *,
    order_id: int,
    actor: Actor,
    comments: str,
    clock: Clock | None = None,
) -> OrderView:
    """The head (or deputy under delegation) returns the draft with comments."""
    clock = clock or SYSTEM_CLOCK
    principal, _ = signing_principal(session, actor=actor, now=clock.now())
    row = _order(session, order_id)
    _require_status(row, "signing")
    task = _ready_task(session, row, "sign")
    data: dict[str, Any] = {"sign_decision": "return"}
    if comments:
        data["head_comments"] = comments
    tasks.complete_task(session, task_id=task.id, actor=principal, clock=clock, data=data)
    row.status = "draft"
    _step(session, row, "returned", principal, clock.now(), comments=comments)
    session.flush()
    return _view(session, row)


# --- numbering and signing --------------------------------------------------------------


def format_number(pattern: str, *, seq: int, year: int) -> str:
    return pattern.format(seq=seq, year=year)


def set_register_pattern(session: Session, *, actor: Actor, register: str, pattern: str) -> None:
    """Change how a register writes its numbers (admin); {seq} is required, {year} optional."""
    if not (actor.has_role("admin") or actor.is_system):
        raise Forbidden("only an administrator configures registers")
    ensure_registers(session)
    row = session.get(OrderRegister, register)
    if row is None:
        raise NotFound(f"no register {register!r}")
    try:
        sample = format_number(pattern, seq=1, year=2026)
    except (KeyError, IndexError, ValueError) as exc:
        raise ValidationFailed(
            "bad pattern", [FieldError("pattern", "only {seq} and {year} may be used")]
        ) from exc
    if "{seq}" not in pattern or len(sample) > 30 or any(c.isspace() for c in sample):
        raise ValidationFailed(
            "bad pattern", [FieldError("pattern", "needs {seq}, no spaces, at most 30 characters")]
        )
    row.pattern = pattern
    session.flush()


def _allocate(session: Session, register: str, year: int) -> int:
    # UPDATE first: it takes the counter row's write lock (a row lock on PostgreSQL; the
    # database's single writer lock on SQLite, where this is the transaction's first write),
    # so concurrent signers queue here and each reads the number its predecessor committed.
    bumped = session.execute(
        update(OrderCounter)
        .where(OrderCounter.register_code == register, OrderCounter.year == year)
        .values(last=OrderCounter.last + 1)
        .returning(OrderCounter.last)
    ).scalar_one_or_none()
    if bumped is not None:
        return int(bumped)
    try:
        with session.begin_nested():
            session.add(OrderCounter(register_code=register, year=year, last=1))
        return 1
    except IntegrityError:
        # Another signer opened the year first: take the number after theirs.
        return int(
            session.execute(
                update(OrderCounter)
                .where(OrderCounter.register_code == register, OrderCounter.year == year)
                .values(last=OrderCounter.last + 1)
                .returning(OrderCounter.last)
            ).scalar_one()
        )


def sign_orders(
    session: Session,
    *,
    order_ids: list[int],
    actor: Actor,
    signer: Signer,
    clock: Clock | None = None,
) -> list[OrderView]:
    """Sign, number and register orders in one go (all or none), with the signer's own key.

    Each order gets the next number of its register for the current year, is rendered with
    it, signed (PAdES), stored with the hash of its bytes, and its procedure moves past
    ``sign`` and ``register`` to ``publish``.

    Raises:
        Forbidden: not the head nor a deputy under a current delegation; the key is someone
            else's; the signer drafted one of the orders (four eyes).
        InvalidTransition: an order is not awaiting signature (e.g. signed meanwhile).
    """
    clock = clock or SYSTEM_CLOCK
    now = clock.now()
    principal, delegation = signing_principal(session, actor=actor, now=now)
    if signer.holder != actor.username:
        raise Forbidden(f"the key belongs to {signer.holder}; sign with your own key")
    if not order_ids:
        raise ValidationFailed("nothing to sign", [FieldError("order_ids", "required")])
    ids = sorted(set(order_ids))
    # Check everything before taking the counter's lock (reads only, no write yet).
    for order_id in ids:
        row = _order(session, order_id)
        _require_status(row, "signing")
        if row.drafted_by_id == actor.user_id:
            raise Forbidden(f"order {row.id}: the author of an order may not sign it")
    day = local_day(now)
    position = DEPUTY_POSITION if delegation is not None else HEAD_POSITION
    done = []
    for order_id in ids:
        register = _order(session, order_id).register_code
        seq = _allocate(session, register, day.year)
        row = _order(session, order_id)  # re-read under the lock: a rival may have signed it
        _require_status(row, "signing")
        pattern = session.get(OrderRegister, register)
        assert pattern is not None
        reg = Registration(
            register, day.year, seq, format_number(pattern.pattern, seq=seq, year=day.year), day
        )
        mark = SignatureMark(
            signer=signer.subject,
            certificate=signer.certificate,
            signed_at=now,
            on_behalf_of=_full_name(session, delegation.head_id) if delegation else None,
        )
        pdf = render_order(
            row.content,
            registration=reg,
            signer_position=position,
            signer_name=signer.subject,
            mark=mark,
        )
        signed = signer.sign_pdf(pdf, reason=f"№ {reg.number}", location="Қостанай / Костанай")
        row.year, row.seq, row.number, row.signed_on = reg.year, reg.seq, reg.number, day
        row.signed_at, row.signed_by_id = now, actor.user_id
        row.pdf, row.pdf_sha256 = signed, hashlib.sha256(signed).hexdigest()
        if delegation is not None:
            row.on_behalf_of_id, row.delegation_id = delegation.head_id, delegation.id
        session.flush()
        task = _ready_task(session, row, "sign")
        tasks.complete_task(
            session, task_id=task.id, actor=principal, clock=clock, data={"sign_decision": "sign"}
        )
        register_task = _ready_task(session, row, "register")
        tasks.complete_task(
            session,
            task_id=register_task.id,
            actor=REGISTRAR,
            clock=clock,
            data={"order_number": reg.number, "order_date": day.isoformat()},
        )
        row.status = "registered"
        _step(session, row, "signed", principal, now, comments=f"№ {reg.number}")
        session.flush()
        order_notices.tell_signed(session, row=row, task_id=task.id, now=now)
        done.append(_view(session, row))
    return done


def notify_order(
    session: Session,
    *,
    order_id: int,
    actor: Actor,
    notified_to: str,
    delivery: str = "notified",
    clock: Clock | None = None,
) -> OrderView:
    """Record that the applicant (or the next step) was notified (head_order's ``publish``),
    and tell the order's author and the process's starter to whom it went."""
    clock = clock or SYSTEM_CLOCK
    row = _order(session, order_id)
    _require_status(row, "registered")
    task = _ready_task(session, row, "publish")
    tasks.complete_task(
        session,
        task_id=task.id,
        actor=actor,
        clock=clock,
        data={
            "order_delivery": delivery,
            "order_notified_to": notified_to,
            "order_delivered_on": local_day(clock.now()).isoformat(),
        },
    )
    row.status = "notified"
    _step(session, row, "notified", actor, clock.now(), comments=notified_to)
    session.flush()
    order_notices.tell_delivered(
        session,
        row=row,
        notified_to=notified_to,
        delivery=delivery,
        by=actor,
        task_id=task.id,
        now=clock.now(),
    )
    return _view(session, row)


def order_pdf(session: Session, *, order_id: int) -> bytes:
    """The signed PDF of a registered order, or a preview of a draft (unnumbered)."""
    row = _order(session, order_id)
    if row.pdf is not None:
        return row.pdf
    return render_order(
        row.content, registration=None, signer_position=HEAD_POSITION, signer_name=""
    )


# --- verification -----------------------------------------------------------------------


@dataclass(frozen=True)
class Verification:
    """The answer to "is this our signed order?", with every reason it is not."""

    signature: SignatureCheck
    register_code: str | None
    number: str | None
    signed_on: date | None
    order_id: int | None
    matches_register: bool
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_order_pdf(
    session: Session, *, data: bytes, trust_roots: list[x509.Certificate]
) -> Verification:
    """Check the signature against the Department CA, then the register: the file must be
    byte for byte the one stored when its number was given."""
    check = check_signature(data, trust_roots)
    problems = list(check.problems)
    ref = None
    if check.readable:
        try:
            meta = PdfReader(BytesIO(data)).metadata
            ref = parse_keywords(str(meta.get("/Keywords")) if meta else None)
        except Exception:  # noqa: BLE001, S110 - unreadable metadata: reported just below
            ref = None
    if not check.readable:
        return Verification(check, None, None, None, None, False, tuple(problems))
    if ref is None:
        problems.append("the PDF names no order of the register")
        return Verification(check, None, None, None, None, False, tuple(problems))
    register, year, seq = ref
    row = session.scalars(
        select(Order).where(Order.register_code == register, Order.year == year, Order.seq == seq)
    ).first()
    if row is None:
        problems.append(f"the register {register!r} holds no order {seq} of {year}")
        return Verification(check, register, None, None, None, False, tuple(problems))
    matches = hashlib.sha256(data).hexdigest() == row.pdf_sha256
    if not matches:
        problems.append(
            f"the file's bytes differ from the register's record of order № {row.number} "
            f"of {row.signed_on:%d.%m.%Y}"
        )
    return Verification(
        check, register, row.number, row.signed_on, row.id, matches, tuple(problems)
    )
