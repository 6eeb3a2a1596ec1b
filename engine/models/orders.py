"""Orders of the head (Reg 7, 18.9, 18.10): registers, their yearly counters, templates,
the orders themselves with their review history, and signing delegations."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engine.models.base import Base


class OrderRegister(Base):
    """A numbering series: core activity, personnel (BRIEF §2: separate series per type)."""

    __tablename__ = "order_register"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name_kk: Mapped[str] = mapped_column(String(200))
    name_ru: Mapped[str] = mapped_column(String(200))
    # "{seq}", "{seq}-ж/қ", "{year}/{seq}": how a number is written; {seq} restarts each year.
    pattern: Mapped[str] = mapped_column(String(64))


class OrderCounter(Base):
    """The last number given in a register in a calendar year. Signing updates this one row
    first in its transaction, so concurrent signers queue on its write lock."""

    __tablename__ = "order_counter"

    register_code: Mapped[str] = mapped_column(ForeignKey("order_register.code"), primary_key=True)
    year: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    last: Mapped[int]


class OrderTemplate(Base):
    """One version of a bilingual template; an order keeps the version it was drafted from."""

    __tablename__ = "order_template"
    __table_args__ = (UniqueConstraint("code", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int]
    register_code: Mapped[str] = mapped_column(ForeignKey("order_register.code"))
    # The template as data (titles, basis, preamble, points in both languages).
    body: Mapped[dict]
    content_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]


class Order(Base):
    """An order (or certificate, power of attorney) of the head, tied to its head_order
    process instance, whose user tasks it completes."""

    __tablename__ = "department_order"
    __table_args__ = (
        UniqueConstraint("register_code", "year", "seq"),
        Index("ix_department_order_status", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    register_code: Mapped[str] = mapped_column(ForeignKey("order_register.code"))
    template_id: Mapped[int] = mapped_column(ForeignKey("order_template.id"))
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"), index=True)
    # The case file the order decides (no foreign key: case files are another area's table).
    case_id: Mapped[int | None] = mapped_column(index=True)
    # draft | review | signing | registered | notified
    status: Mapped[str] = mapped_column(String(16))
    # The filled text: {"kk": {...}, "ru": {...}} with title, basis, preamble, points.
    content: Mapped[dict]
    drafted_by_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    signed_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    on_behalf_of_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    delegation_id: Mapped[int | None] = mapped_column(ForeignKey("signing_delegation.id"))
    year: Mapped[int | None]
    seq: Mapped[int | None]
    number: Mapped[str | None] = mapped_column(String(40))
    signed_on: Mapped[date | None] = mapped_column(Date)
    signed_at: Mapped[datetime | None]
    pdf: Mapped[bytes | None] = mapped_column(LargeBinary)
    pdf_sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class OrderStep(Base):
    """The order's history: drafted, edited, submitted, approved, returned, signed, notified."""

    __tablename__ = "order_step"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("department_order.id"), index=True)
    action: Mapped[str] = mapped_column(String(32))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    on_behalf_of: Mapped[str | None] = mapped_column(String(150))
    comments: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime]


class SigningDelegation(Base):
    """The head's written delegation of signing to a deputy for whole days (Reg 18, 19)."""

    __tablename__ = "signing_delegation"

    id: Mapped[int] = mapped_column(primary_key=True)
    head_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    deputy_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), index=True)
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)
    reason: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
