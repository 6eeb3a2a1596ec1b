"""Tables of the staff's workspace: the sign-in brake, form drafts, saved inbox filters and
absences with a deputy."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from engine.models.base import Base
from engine.models.core import HumanTask


class LoginBrake(Base):
    """Failed sign-ins counted per key (``user:<name>`` or ``ip:<address>``).

    One row per key rather than one per attempt: the table stays as small as the number of
    people and addresses that ever failed, however long an attack goes on.
    """

    __tablename__ = "login_brake"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_start: Mapped[datetime]
    locked_until: Mapped[datetime | None]


class TaskDraft(Base):
    """What a user typed into a task's form and saved without completing it."""

    __tablename__ = "task_draft"

    task_id: Mapped[int] = mapped_column(ForeignKey("human_task.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), primary_key=True)
    # The raw strings as typed: a draft may be incomplete or not yet valid.
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    saved_at: Mapped[datetime]


class SavedFilter(Base):
    """A named inbox query, private to its owner or shared with everyone holding a role."""

    __tablename__ = "saved_filter"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    shared_role: Mapped[str | None] = mapped_column(ForeignKey("role.code"), index=True)
    created_at: Mapped[datetime]


class Absence(Base):
    """A user away (leave, illness, travel) with a deputy who does their work meanwhile."""

    __tablename__ = "absence"
    __table_args__ = (Index("ix_absence_deputy", "deputy_id", "starts_on", "ends_on"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), index=True)
    deputy_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    # Whole days in Kostanay's calendar, both inclusive.
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)
    reason: Mapped[str | None] = mapped_column(Text)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    created_at: Mapped[datetime]
    cancelled_at: Mapped[datetime | None]


# --- inbox indexes ----------------------------------------------------------------------
# The inbox pages through each queue in due order by walking one index range, so that a
# page costs the same with a hundred or a hundred thousand open tasks (engine/worklist.py).
# Each queue's equalities lead, then the order (due_at, id).
#
# They hold open tasks only (``WHERE status = 'ready'``, queried with
# ``core.TASK_IS_OPEN``): finished tasks, which outnumber open ones more every year, never
# enter them, and completing a task removes its entries rather than moving them to a
# "completed" range elsewhere in each index, which cost a step a page write per index.
_OPEN = text("status = 'ready'")


def _open_tasks(name: str, *columns: Any) -> Index:
    # ``status`` comes last, constant as it is, so that SQLite reads a queue from the index
    # alone: it does not count a column as covered by the index's own WHERE.
    return Index(name, *columns, HumanTask.status, sqlite_where=_OPEN, postgresql_where=_OPEN)


# Offered to a role in a district, unclaimed. (Without assignee_id among the equalities,
# measured with 100,000 open tasks, SQLite preferred another index and filtered: 670 ms a
# page.)
_open_tasks(
    "ix_open_task_offered",
    HumanTask.role,
    HumanTask.district_id,
    HumanTask.assignee_id,
    HumanTask.due_at,
    HumanTask.id,
)
# Offered to a role across the region (staff without a district), unclaimed.
_open_tasks(
    "ix_open_task_role", HumanTask.role, HumanTask.assignee_id, HumanTask.due_at, HumanTask.id
)
# Claimed by a user ("mine").
_open_tasks("ix_open_task_claimed", HumanTask.assignee_id, HumanTask.due_at, HumanTask.id)
# Every open task (a lead's list; the deadline jobs' ranges of due dates).
_open_tasks("ix_open_task_due", HumanTask.due_at, HumanTask.id)


# The inbox search (engine/worklist.py): by case number, by IIN, by a prefix of the child's
# name, each one range of its index. Tasks without the value (procedures that have no child
# or no case number) are left out: nothing searches for an empty value, and a task that
# does not enter an index costs no write to it.
def _searched(column: Any) -> Index:
    present = column.is_not(None)
    return Index(
        f"ix_human_task_{column.key}", column, sqlite_where=present, postgresql_where=present
    )


_searched(HumanTask.case_number)
_searched(HumanTask.child_iin)
_searched(HumanTask.child_name)
