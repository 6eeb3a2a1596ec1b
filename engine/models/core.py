"""Core tables: identity, definitions, runtime, audit."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    literal_column,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine.models.base import Base

# --- identity ---------------------------------------------------------------------------


class District(Base):
    __tablename__ = "district"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name_kk: Mapped[str] = mapped_column(String(200))
    name_ru: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))


class Role(Base):
    __tablename__ = "role"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name_kk: Mapped[str] = mapped_column(String(200))
    name_ru: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    # A district-scoped role sees only the tasks of its holder's district.
    district_scoped: Mapped[bool] = mapped_column(Boolean, default=False)


class User(Base):
    __tablename__ = "app_user"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(200))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    district_id: Mapped[int | None] = mapped_column(ForeignKey("district.id"))
    language: Mapped[str] = mapped_column(String(8), default="kk")
    email: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]

    roles: Mapped[list[UserRole]] = relationship(
        back_populates="user", cascade="all, delete-orphan", lazy="selectin"
    )


class UserRole(Base):
    __tablename__ = "user_role"

    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), primary_key=True)
    role_code: Mapped[str] = mapped_column(ForeignKey("role.code"), primary_key=True)

    user: Mapped[User] = relationship(back_populates="roles")


# --- definitions ------------------------------------------------------------------------


class Deployment(Base):
    """One accepted upload: the files as they were, byte for byte."""

    __tablename__ = "deployment"

    id: Mapped[int] = mapped_column(primary_key=True)
    deployed_at: Mapped[datetime]
    deployed_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    comment: Mapped[str | None] = mapped_column(Text)

    files: Mapped[list[DeploymentFile]] = relationship(
        back_populates="deployment", cascade="all, delete-orphan", lazy="selectin"
    )


class DeploymentFile(Base):
    __tablename__ = "deployment_file"
    __table_args__ = (UniqueConstraint("deployment_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployment.id"))
    name: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(16))  # bpmn | dmn | form | rules
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary)

    deployment: Mapped[Deployment] = relationship(back_populates="files")


class ProcessVersion(Base):
    """An immutable, numbered version of one executable process.

    It carries everything needed to run it without the files: the serialized spec (with the
    specs of the processes it calls), the forms its user tasks reference and the deadline
    rules, each pinned as they were at deployment.
    """

    __tablename__ = "process_version"
    __table_args__ = (UniqueConstraint("process_key", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    process_key: Mapped[str] = mapped_column(String(255), index=True)
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(255))
    content_hash: Mapped[str] = mapped_column(String(64))
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployment.id"))
    # Loaded only when the spec cache misses: it is the largest column and rarely needed.
    spec_json: Mapped[str] = mapped_column(Text, deferred=True)
    forms: Mapped[dict] = mapped_column(JSON, default=dict)
    deadline_rules: Mapped[dict] = mapped_column(JSON, default=dict)
    # Roles allowed to start it (from the start event's lane); empty: anyone signed in.
    starter_roles: Mapped[list] = mapped_column(JSON, default=list)
    properties: Mapped[dict] = mapped_column(JSON, default=dict)
    deployed_at: Mapped[datetime]
    deployed_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))


# --- runtime ----------------------------------------------------------------------------


class ProcessInstance(Base):
    __tablename__ = "process_instance"

    id: Mapped[int] = mapped_column(primary_key=True)
    process_version_id: Mapped[int] = mapped_column(ForeignKey("process_version.id"))
    process_key: Mapped[str] = mapped_column(String(255), index=True)
    business_key: Mapped[str | None] = mapped_column(String(255), index=True)
    case_id: Mapped[int | None] = mapped_column(Integer, index=True)
    district_id: Mapped[int | None] = mapped_column(ForeignKey("district.id"))
    # running | waiting | completed | error | suspended | terminated
    status: Mapped[str] = mapped_column(String(16), index=True)
    state_json: Mapped[str] = mapped_column(Text)
    serializer_version: Mapped[str] = mapped_column(String(16))
    revision: Mapped[int] = mapped_column(Integer, default=1)
    next_timer_at: Mapped[datetime | None] = mapped_column(index=True)
    started_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    started_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    # The head of this instance's audit chain, kept under the instance's revision check.
    audit_seq: Mapped[int] = mapped_column(Integer, default=0)
    audit_head: Mapped[str] = mapped_column(String(64), default="")
    # Names of the messages it waits for, so that subscriptions are rewritten only on change.
    waiting_messages: Mapped[list] = mapped_column(JSON, default=list)

    # Optimistic concurrency: every UPDATE says "WHERE revision = <the one I read>"; when
    # another writer got there first SQLAlchemy raises StaleDataError (a Conflict to us).
    __mapper_args__ = {"version_id_col": revision}


class HumanTask(Base):
    """The inbox: one row per manual task, kept in step with the workflow by every command."""

    __tablename__ = "human_task"

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"), index=True)
    task_guid: Mapped[str] = mapped_column(String(36), unique=True)
    bpmn_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    process_key: Mapped[str] = mapped_column(String(255))
    role: Mapped[str | None] = mapped_column(String(64))
    district_id: Mapped[int | None] = mapped_column(ForeignKey("district.id"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    # ready | completed | cancelled
    status: Mapped[str] = mapped_column(String(16))
    form_key: Mapped[str | None] = mapped_column(String(255))
    deadline_rule: Mapped[str | None] = mapped_column(String(255))
    due_at: Mapped[datetime | None]
    # Why the task is due then: the rule's legal basis, and the calendar that counted the
    # days (engine/calendar.py), so the inbox can explain a due date without a workflow.
    deadline_basis: Mapped[str | None] = mapped_column(String(500))
    calendar_version: Mapped[str | None] = mapped_column(String(64))
    # Deadline follow-up done by the scheduler (engine/scheduler.py), each once.
    reminded_at: Mapped[datetime | None]
    overdue_at: Mapped[datetime | None]
    escalated_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    claimed_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    completed_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    # Copied from the case when the task is created, so that searching the inbox by case
    # number, child's name or IIN never loads a workflow (see runtime._case_fields).
    # Searched through their own indexes (engine/models/workspace.py).
    case_number: Mapped[str | None] = mapped_column(String(64))
    child_name: Mapped[str | None] = mapped_column(String(200))
    child_iin: Mapped[str | None] = mapped_column(String(12))


# Open tasks are what the inbox and the deadline jobs read, and the indexes they walk hold
# open rows only (engine/models/workspace.py). A query of open tasks says so with this
# condition, whose value is written into the SQL as the indexes' own condition is: a planner
# uses a partial index only for a query whose condition implies the index's, and neither
# sees that through a bound parameter (PostgreSQL's generic plans cannot; SQLite can, but
# then prepares the statement again on every run).
TASK_IS_OPEN = HumanTask.status == literal_column("'ready'")


class MessageSubscription(Base):
    """A message an instance waits for, so that correlation never loads a workflow."""

    __tablename__ = "message_subscription"
    __table_args__ = (Index("ix_message_subscription_name", "message_name", "business_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"), index=True)
    message_name: Mapped[str] = mapped_column(String(255))
    business_key: Mapped[str | None] = mapped_column(String(255))


class Incident(Base):
    """A failure inside an instance (a script error, a runaway, a bad timer expression)."""

    __tablename__ = "incident"

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"), index=True)
    element_id: Mapped[str | None] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))


# --- audit ------------------------------------------------------------------------------


class AuditEvent(Base):
    """Append-only. Each event carries the hash of the one before it in its chain.

    Chains are per instance (``instance:<id>``) or ``system``: one global chain would make
    every writer in the system wait for one row.
    """

    __tablename__ = "audit_event"
    __table_args__ = (UniqueConstraint("chain", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    chain: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime]
    actor_id: Mapped[int | None] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(String(64))
    on_behalf_of: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    # Set on the events of an instance's chain only, so ``chain`` (the unique key's first
    # column) finds them: an index of its own would cost every step a page write.
    instance_id: Mapped[int | None] = mapped_column(Integer)
    task_guid: Mapped[str | None] = mapped_column(String(36))
    detail: Mapped[dict] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
