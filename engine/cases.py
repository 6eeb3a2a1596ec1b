"""Case files: a child, the people around the child, comments, procedures and a timeline.

A case gathers one child's procedures (DESIGN.md, "Cases and people"). Its number is the
business key of every procedure started for it, so messages and the inbox search find the
case by it. Access follows role and district: district-scoped roles (specialist,
psychologist) see the cases of their district; regional roles (lawyer), leads and the
auditor see all. The auditor only reads.

Changes to a case append events to the case's own audit chain (``case:<id>``), whose head is
kept on the case row under a revision check; the timeline joins that chain with the chains
of the case's process instances.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from engine import audit, instances
from engine.calendar import DEPARTMENT_TZ
from engine.clock import SYSTEM_CLOCK, Clock
from engine.db import is_postgres
from engine.errors import Conflict, FieldError, Forbidden, NotFound, ValidationFailed
from engine.identity import ROLES, Actor
from engine.iin import mask_iin, validate_iin
from engine.models import AuditEvent, District, ProcessInstance, User
from engine.models.cases import Case, CaseComment, CaseCounter, CasePerson
from engine.views import InstanceView

NUMBER_PREFIX = "KST"  # Kostanay region
CASE_ROLES = frozenset(
    {"specialist", "psychologist", "lawyer", "head", "deputy_head", "admin", "auditor"}
)
# Who opens case files: the staff who register children (Reg 15.2) and the leads.
CREATOR_ROLES = frozenset({"specialist", "psychologist", "head", "deputy_head", "admin"})
READ_ONLY_ROLES = frozenset({"auditor"})
PERSON_ROLES = ("applicant", "guardian", "mother", "father", "relative", "other")
MAX_COMMENT = 5000


# --- views ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseView:
    id: int
    number: str
    district_id: int | None
    status: str
    child_name: str
    child_iin: str | None
    child_birth_date: date | None
    child_sex: str | None
    created_by_id: int | None
    created_at: datetime
    revision: int

    @property
    def child_iin_masked(self) -> str | None:
        return mask_iin(self.child_iin) if self.child_iin else None

    @classmethod
    def of(cls, row: Case) -> CaseView:
        return cls(
            id=row.id,
            number=row.number,
            district_id=row.district_id,
            status=row.status,
            child_name=row.child_name,
            child_iin=row.child_iin,
            child_birth_date=row.child_birth_date,
            child_sex=row.child_sex,
            created_by_id=row.created_by_id,
            created_at=row.created_at,
            revision=row.revision,
        )


@dataclass(frozen=True)
class PersonView:
    id: int
    role: str
    full_name: str
    iin: str | None
    phone: str | None
    added_at: datetime

    @property
    def iin_masked(self) -> str | None:
        return mask_iin(self.iin) if self.iin else None


@dataclass(frozen=True)
class CommentView:
    id: int
    author: str
    body: str
    created_at: datetime


@dataclass(frozen=True)
class ProcedureView:
    instance_id: int
    process_key: str
    status: str
    started_at: datetime
    ended_at: datetime | None


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    actor: str
    on_behalf_of: str | None
    action: str
    instance_id: int | None
    task_guid: str | None
    bpmn_id: str | None


# --- access -----------------------------------------------------------------------------


def _district_scoped(actor: Actor) -> bool:
    """True when every case role the actor holds is district-scoped (then: own district)."""
    held = actor.roles & CASE_ROLES
    return bool(held) and all(ROLES.get(r, ("", "", "", False))[3] for r in held)


def may_see(actor: Actor, row: Case) -> bool:
    if actor.is_system:
        return True
    if not actor.roles & CASE_ROLES:
        return False
    if not _district_scoped(actor) or actor.district_id is None:
        return True
    return row.district_id is None or row.district_id == actor.district_id


def may_change(actor: Actor, row: Case) -> bool:
    return may_see(actor, row) and bool((actor.roles & CASE_ROLES) - READ_ONLY_ROLES)


def _case_row(session: Session, case_id: int, *, lock: bool = False) -> Case:
    stmt = select(Case).where(Case.id == case_id).execution_options(populate_existing=True)
    if lock and is_postgres(session):
        stmt = stmt.with_for_update()
    row = session.scalars(stmt).one_or_none()
    if row is None:
        raise NotFound(f"case {case_id} does not exist", case_id=case_id)
    return row


def readable_case(session: Session, case_id: int, actor: Actor) -> Case:
    row = _case_row(session, case_id)
    if not may_see(actor, row):
        raise Forbidden(f"{actor.username} may not see case {row.number}", case_id=case_id)
    return row


def writable_case(session: Session, case_id: int, actor: Actor) -> Case:
    row = _case_row(session, case_id, lock=True)
    if not may_change(actor, row):
        raise Forbidden(f"{actor.username} may not change case {row.number}", case_id=case_id)
    return row


def _visible_filter(actor: Actor) -> Any:
    if actor.is_system or not _district_scoped(actor) or actor.district_id is None:
        return True
    return or_(Case.district_id.is_(None), Case.district_id == actor.district_id)


# --- audit ------------------------------------------------------------------------------


def case_chain(case_id: int) -> str:
    return f"case:{case_id}"


def append_case_event(
    session: Session, row: Case, actor: Actor, action: str, detail: dict[str, Any], at: datetime
) -> None:
    """Append one event to the case's chain and move its head (the case revision guards it)."""
    chain = case_chain(row.id)
    seq, prev = row.audit_seq + 1, row.audit_head or audit.GENESIS
    # JSON-native, as the chain hashes it, so that the hash survives the database round trip.
    clean = json.loads(json.dumps(detail, default=str, ensure_ascii=False))
    digest = audit.event_hash(
        chain=chain,
        seq=seq,
        at=at,
        actor=actor.username,
        on_behalf_of=actor.on_behalf_of,
        action=action,
        instance_id=None,
        task_guid=None,
        detail=clean,
        prev_hash=prev,
    )
    session.add(
        AuditEvent(
            chain=chain,
            seq=seq,
            at=at,
            actor_id=actor.user_id,
            actor=actor.username,
            on_behalf_of=actor.on_behalf_of,
            action=action,
            instance_id=None,
            task_guid=None,
            detail=clean,
            prev_hash=prev,
            hash=digest,
        )
    )
    row.audit_seq, row.audit_head, row.updated_at = seq, digest, at


def flush_case(session: Session, case_number: str) -> None:
    """Flush, turning a lost race on the case row or its chain into ``Conflict``."""
    try:
        session.flush()
    except (StaleDataError, IntegrityError) as exc:
        if isinstance(exc, IntegrityError) and "audit_event" not in str(exc.orig):
            raise
        raise Conflict(
            f"case {case_number} was changed by someone else at the same time; reload it"
        ) from exc


# --- creating ---------------------------------------------------------------------------


def _next_number(session: Session, now: datetime) -> str:
    year = now.astimezone(DEPARTMENT_TZ).year
    # UPDATE first: it takes the row's write lock before reading the counter, so two
    # concurrent creators never get the same number (on SQLite and PostgreSQL alike).
    bumped = session.execute(
        update(CaseCounter)
        .where(CaseCounter.year == year)
        .values(last=CaseCounter.last + 1)
        .returning(CaseCounter.last)
    ).scalar_one_or_none()
    if bumped is None:
        try:
            with session.begin_nested():
                session.add(CaseCounter(year=year, last=1))
            bumped = 1
        except IntegrityError:
            # Another creator opened the year first: take the next number after theirs.
            bumped = session.execute(
                update(CaseCounter)
                .where(CaseCounter.year == year)
                .values(last=CaseCounter.last + 1)
                .returning(CaseCounter.last)
            ).scalar_one()
    return f"{NUMBER_PREFIX}-{year}-{bumped:06d}"


def check_child(
    *,
    child_name: str,
    child_iin: str | None,
    child_birth_date: date | None,
    child_sex: str | None,
) -> tuple[str, str | None, date | None, str | None]:
    """Validate the child's details; the IIN decides birth date and sex, and must agree with
    what was entered. Returns the cleaned (name, iin, birth date, sex)."""
    errors: list[FieldError] = []
    name = (child_name or "").strip()
    if not name:
        errors.append(FieldError("child_name", "required"))
    elif len(name) > 200:
        errors.append(FieldError("child_name", "at most 200 characters"))
    if child_sex is not None and child_sex not in {"male", "female"}:
        errors.append(FieldError("child_sex", "one of: male, female"))
    iin = (child_iin or "").strip() or None
    birth, sex = child_birth_date, child_sex
    if iin is not None:
        try:
            info = validate_iin(iin)
        except ValidationFailed as exc:
            errors.extend(FieldError("child_iin", e.message) for e in exc.errors)
        else:
            if birth is not None and birth != info.birth_date:
                errors.append(
                    FieldError(
                        "child_birth_date",
                        f"the IIN says the child was born on {info.birth_date.isoformat()}",
                    )
                )
            if sex is not None and sex != info.sex:
                errors.append(FieldError("child_sex", f"the IIN says the child is {info.sex}"))
            birth, sex = info.birth_date, info.sex
    if errors:
        raise ValidationFailed("the child's details have errors", errors)
    return name, iin, birth, sex


def _district_id(session: Session, actor: Actor, district_code: str | None) -> int | None:
    if not district_code:
        return actor.district_id
    district = session.scalar(select(District).where(District.code == district_code))
    if district is None:
        raise ValidationFailed(
            "unknown district", [FieldError("district", f"no district {district_code!r}")]
        )
    if _district_scoped(actor) and actor.district_id not in (None, district.id):
        raise Forbidden(f"{actor.username} may open cases only in their own district")
    return district.id


def create_case(
    session: Session,
    *,
    actor: Actor,
    child_name: str,
    child_iin: str | None = None,
    child_birth_date: date | None = None,
    child_sex: str | None = None,
    district_code: str | None = None,
    clock: Clock | None = None,
) -> CaseView:
    """Open a case file for a child and give it the next number of the year.

    Raises:
        Forbidden: the actor may not open cases (or not in that district).
        ValidationFailed: a wrong IIN, or a birth date/sex the IIN contradicts (per field).
    """
    if not actor.is_system and not actor.roles & CREATOR_ROLES:
        raise Forbidden(f"{actor.username} may not open case files")
    name, iin, birth, sex = check_child(
        child_name=child_name,
        child_iin=child_iin,
        child_birth_date=child_birth_date,
        child_sex=child_sex,
    )
    district_id = _district_id(session, actor, district_code)
    now = (clock or SYSTEM_CLOCK).now()
    row = Case(
        number=_next_number(session, now),
        district_id=district_id,
        status="open",
        child_name=name,
        child_iin=iin,
        child_birth_date=birth,
        child_sex=sex,
        created_by_id=actor.user_id,
        created_at=now,
        updated_at=now,
        audit_seq=0,
        audit_head="",
    )
    session.add(row)
    session.flush()
    # The IIN is personal data: the chain records that one was given, masked.
    append_case_event(
        session,
        row,
        actor,
        "case.created",
        {"number": row.number, "child_iin": mask_iin(iin) if iin else None},
        now,
    )
    flush_case(session, row.number)
    return CaseView.of(row)


# --- reading ----------------------------------------------------------------------------


def get_case(session: Session, *, case_id: int, actor: Actor) -> CaseView:
    return CaseView.of(readable_case(session, case_id, actor))


def find_case(session: Session, *, number: str, actor: Actor) -> CaseView:
    case_id = session.scalar(select(Case.id).where(Case.number == number))
    if case_id is None:
        raise NotFound(f"no case numbered {number!r}")
    return get_case(session, case_id=case_id, actor=actor)


def list_cases(
    session: Session, *, actor: Actor, search: str | None = None, limit: int = 50
) -> list[CaseView]:
    """Cases the actor may see, newest first; ``search`` matches number, name or full IIN."""
    if not actor.is_system and not actor.roles & CASE_ROLES:
        return []
    stmt = select(Case).where(_visible_filter(actor))
    if search:
        term = search.strip()
        stmt = stmt.where(
            or_(
                Case.number == term,
                Case.child_iin == term,
                Case.child_name.ilike(f"%{term}%"),
            )
        )
    stmt = stmt.order_by(Case.created_at.desc(), Case.id.desc()).limit(min(limit, 500))
    return [CaseView.of(r) for r in session.scalars(stmt)]


def case_people(session: Session, *, case_id: int, actor: Actor) -> list[PersonView]:
    readable_case(session, case_id, actor)
    rows = session.scalars(
        select(CasePerson).where(CasePerson.case_id == case_id).order_by(CasePerson.id)
    )
    return [
        PersonView(
            id=r.id,
            role=r.role,
            full_name=r.full_name,
            iin=r.iin,
            phone=r.phone,
            added_at=r.added_at,
        )
        for r in rows
    ]


def case_comments(session: Session, *, case_id: int, actor: Actor) -> list[CommentView]:
    readable_case(session, case_id, actor)
    rows = session.execute(
        select(CaseComment, User.full_name)
        .outerjoin(User, User.id == CaseComment.author_id)
        .where(CaseComment.case_id == case_id)
        .order_by(CaseComment.id)
    )
    return [
        CommentView(id=c.id, author=name or "?", body=c.body, created_at=c.created_at)
        for c, name in rows
    ]


def case_procedures(session: Session, *, case_id: int, actor: Actor) -> list[ProcedureView]:
    readable_case(session, case_id, actor)
    rows = session.scalars(
        select(ProcessInstance)
        .where(ProcessInstance.case_id == case_id)
        .order_by(ProcessInstance.id)
    )
    return [
        ProcedureView(
            instance_id=r.id,
            process_key=r.process_key,
            status=r.status,
            started_at=r.started_at,
            ended_at=r.ended_at,
        )
        for r in rows
    ]


def case_timeline(
    session: Session, *, case_id: int, actor: Actor, limit: int = 500
) -> list[TimelineEntry]:
    """What happened to the case, oldest first: its own events and its procedures' events,
    read from the audit log (never from task data)."""
    readable_case(session, case_id, actor)
    # The case's chain and its procedures' chains: each one range of the (chain, seq) key.
    procedures = session.scalars(
        select(ProcessInstance.id).where(ProcessInstance.case_id == case_id)
    ).all()
    chains = [case_chain(case_id), *(audit.instance_chain(i) for i in procedures)]
    rows = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.chain.in_(chains))
        .order_by(AuditEvent.at, AuditEvent.id)
        .limit(limit)
    )
    return [
        TimelineEntry(
            at=r.at,
            actor=r.actor,
            on_behalf_of=r.on_behalf_of,
            action=r.action,
            instance_id=r.instance_id,
            task_guid=r.task_guid,
            bpmn_id=(r.detail or {}).get("bpmn_id") if isinstance(r.detail, dict) else None,
        )
        for r in rows
    ]


# --- changing ---------------------------------------------------------------------------


def add_person(
    session: Session,
    *,
    case_id: int,
    actor: Actor,
    role: str,
    full_name: str,
    iin: str | None = None,
    phone: str | None = None,
    clock: Clock | None = None,
) -> PersonView:
    """Record someone around the child; an IIN is optional but must be valid when given."""
    row = writable_case(session, case_id, actor)
    errors: list[FieldError] = []
    if role not in PERSON_ROLES:
        errors.append(FieldError("role", "one of: " + ", ".join(PERSON_ROLES)))
    name = (full_name or "").strip()
    if not name or len(name) > 200:
        errors.append(FieldError("full_name", "required, at most 200 characters"))
    iin = (iin or "").strip() or None
    if iin is not None:
        try:
            validate_iin(iin)
        except ValidationFailed as exc:
            errors.extend(exc.errors)
    phone = (phone or "").strip() or None
    if phone is not None and len(phone) > 32:
        errors.append(FieldError("phone", "at most 32 characters"))
    if errors:
        raise ValidationFailed("the person's details have errors", errors)
    now = (clock or SYSTEM_CLOCK).now()
    person = CasePerson(
        case_id=row.id,
        role=role,
        full_name=name,
        iin=iin,
        phone=phone,
        added_by_id=actor.user_id,
        added_at=now,
    )
    session.add(person)
    append_case_event(session, row, actor, "case.person_added", {"role": role}, now)
    flush_case(session, row.number)
    return PersonView(
        id=person.id, role=role, full_name=name, iin=iin, phone=phone, added_at=person.added_at
    )


def add_comment(
    session: Session, *, case_id: int, actor: Actor, body: str, clock: Clock | None = None
) -> CommentView:
    """Add a comment (kept as typed; pages escape it)."""
    row = writable_case(session, case_id, actor)
    text = (body or "").strip()
    if not text or len(text) > MAX_COMMENT:
        raise ValidationFailed(
            "the comment cannot be saved",
            [FieldError("body", f"required, at most {MAX_COMMENT} characters")],
        )
    now = (clock or SYSTEM_CLOCK).now()
    comment = CaseComment(case_id=row.id, author_id=actor.user_id, body=text, created_at=now)
    session.add(comment)
    session.flush()
    append_case_event(session, row, actor, "case.comment_added", {"comment_id": comment.id}, now)
    flush_case(session, row.number)
    author = session.get(User, actor.user_id) if actor.user_id else None
    return CommentView(
        id=comment.id,
        author=author.full_name if author else actor.username,
        body=text,
        created_at=now,
    )


def start_case_procedure(
    session: Session,
    *,
    case_id: int,
    process_key: str,
    actor: Actor,
    data: dict[str, Any] | None = None,
    clock: Clock | None = None,
) -> InstanceView:
    """Start a procedure for a case: its number is the business key, its district the
    instance's; the child's name and IIN enter the process data only where the start form
    declares them (the engine refuses undeclared fields)."""
    row = writable_case(session, case_id, actor)
    version = instances.latest_version(session, process_key)
    start_form = (version.properties or {}).get("startForm")
    schema = (version.forms or {}).get(start_form) if start_form else None
    declared = set((schema or {}).get("properties", {}))
    merged = dict(data or {})
    for key, value in (("child_name", row.child_name), ("child_iin", row.child_iin)):
        if key in declared and value and key not in merged:
            merged[key] = value
    view = instances.start_process(
        session,
        process_key=process_key,
        actor=actor,
        data=merged,
        business_key=row.number,
        district_id=row.district_id,
        case_id=row.id,
        clock=clock,
    )
    now = (clock or SYSTEM_CLOCK).now()
    append_case_event(
        session,
        row,
        actor,
        "case.procedure_started",
        {"instance_id": view.id, "process_key": process_key},
        now,
    )
    flush_case(session, row.number)
    return view
