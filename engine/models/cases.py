"""Case files: the child, the people around the child, documents, comments; API tokens.

A case gathers one child's procedures (``ProcessInstance.case_id``), the people around the
child and the documents, outside any task data (DESIGN.md, "Cases and people"). Personal
API tokens live here too: they are the case worker's other way in (the JSON API), and one
module keeps the area's migration to one file.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from engine.models.base import Base


class CaseCounter(Base):
    """The last case number given out in a year: one row per year, locked while numbering."""

    __tablename__ = "case_counter"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last: Mapped[int] = mapped_column(Integer, default=0)


class Case(Base):
    __tablename__ = "case_file"
    __table_args__ = (Index("ix_case_file_district_status", "district_id", "status", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # Business key of every procedure of the case, e.g. "KST-2026-000123".
    number: Mapped[str] = mapped_column(String(32), unique=True)
    district_id: Mapped[int | None] = mapped_column(ForeignKey("district.id"))
    status: Mapped[str] = mapped_column(String(16))  # open | closed
    child_name: Mapped[str] = mapped_column(String(200))
    # A string: births in 2000-2009 start with 0. Indexed for the search by IIN.
    child_iin: Mapped[str | None] = mapped_column(String(12), index=True)
    child_birth_date: Mapped[date | None] = mapped_column(Date)
    child_sex: Mapped[str | None] = mapped_column(String(8))  # male | female
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # Head of the case's own audit chain ("case:<id>"), under the revision check below.
    audit_seq: Mapped[int] = mapped_column(Integer, default=0)
    audit_head: Mapped[str] = mapped_column(String(64), default="")
    revision: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": revision}


class CasePerson(Base):
    """Someone around the child: applicant, guardian, mother, father, other relative."""

    __tablename__ = "case_person"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case_file.id"), index=True)
    role: Mapped[str] = mapped_column(String(32))
    full_name: Mapped[str] = mapped_column(String(200))
    iin: Mapped[str | None] = mapped_column(String(12))
    phone: Mapped[str | None] = mapped_column(String(32))
    added_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    added_at: Mapped[datetime]


class CaseDocument(Base):
    """An uploaded file. The bytes stay in this table, never in task data."""

    __tablename__ = "case_document"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case_file.id"), index=True)
    file_name: Mapped[str] = mapped_column(String(255))
    # The type found in the bytes (magic numbers), not the one the browser claimed.
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    # Deferred: lists of documents must not drag megabytes of content along.
    content: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    uploaded_at: Mapped[datetime]


class CaseComment(Base):
    __tablename__ = "case_comment"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case_file.id"), index=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


class ApiToken(Base):
    """A personal API token. Only the SHA-256 of the secret is kept; the secret is shown once."""

    __tablename__ = "api_token"
    __table_args__ = (UniqueConstraint("token_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
