"""Legal time: the calendar's overrides and the notifications that deadlines raise."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engine.models.base import Base


class CalendarOverride(Base):
    """One date the administrator declared a holiday or a working day.

    For each year's Government transfer decree (Labour Code Art. 85 para 3) and the official
    date of Kurban Ait, which the ``holidays`` package only estimates for future years.
    """

    __tablename__ = "calendar_override"

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(Date, unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # holiday | working_day
    reason: Mapped[str] = mapped_column(String(500))
    legal_act: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))


class Notification(Base):
    """A message to one user: shown in the inbox's bell, and e-mailed when SMTP is set up.

    ``emailed_at`` is the outbox: the e-mail job sends rows where it is NULL (and the user
    has an address) and sets it in the same transaction.
    """

    __tablename__ = "notification"
    __table_args__ = (
        # A task reminds or escalates once per person and kind, whatever the number of workers.
        UniqueConstraint("user_id", "task_id", "kind"),
        Index("ix_notification_unread", "user_id", "read_at"),
        Index("ix_notification_outbox", "emailed_at", "email_status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    # reminder | due | escalation | info
    kind: Mapped[str] = mapped_column(String(32))
    task_id: Mapped[int | None] = mapped_column(ForeignKey("human_task.id"))
    instance_id: Mapped[int | None] = mapped_column(ForeignKey("process_instance.id"))
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    read_at: Mapped[datetime | None]
    # pending | sent | failed | none (no SMTP or no address when it was processed)
    email_status: Mapped[str] = mapped_column(String(16), default="pending")
    emailed_at: Mapped[datetime | None]
    email_error: Mapped[str | None] = mapped_column(Text)
