"""Notifications: in-app (the inbox's bell) and e-mail when SMTP is configured.

A notification is a row per recipient (table ``notification``). Creating one never talks to
a mail server: the row is the outbox, and ``send_pending_emails`` (a scheduler job) sends
rows whose e-mail is pending, each in its own unit of work. A failed send is recorded on the
row (``email_status = failed``) and never blocks the in-app notification. The outbox gives
at-least-once e-mail: a worker killed between the SMTP reply and its commit sends that one
message again; the in-app notification exists exactly once (unique per user, task, kind).

SMTP settings come from the environment: ``QORGAU_SMTP_HOST`` (unset: no e-mail),
``QORGAU_SMTP_PORT`` (25), ``QORGAU_SMTP_FROM``, and optionally ``QORGAU_SMTP_USER`` /
``QORGAU_SMTP_PASSWORD`` and ``QORGAU_SMTP_STARTTLS=1``.
"""

from __future__ import annotations

import os
import smtplib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from engine.db import is_postgres
from engine.errors import NotFound
from engine.identity import Actor
from engine.models import HumanTask, Notification, Role, User, UserRole

# "order": an order of the head was signed or delivered (engine.order_notices).
KINDS = ("reminder", "due", "escalation", "info", "order")
_MAX_TITLE = 300


@dataclass(frozen=True)
class NotificationView:
    id: int
    kind: str
    title: str
    body: str
    task_id: int | None
    instance_id: int | None
    created_at: datetime
    read_at: datetime | None

    @classmethod
    def of(cls, row: Notification) -> NotificationView:
        return cls(
            id=row.id,
            kind=row.kind,
            title=row.title,
            body=row.body,
            task_id=row.task_id,
            instance_id=row.instance_id,
            created_at=row.created_at,
            read_at=row.read_at,
        )


def notify(
    session: Session,
    *,
    user_ids: Iterable[int],
    kind: str,
    title: str,
    body: str,
    now: datetime,
    task_id: int | None = None,
    instance_id: int | None = None,
) -> list[int]:
    """Create one notification per user; users already told this about this task are skipped.

    Returns:
        The ids of the users notified now.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown notification kind {kind!r}")
    wanted = sorted(set(user_ids))
    if task_id is not None and wanted:
        told = set(
            session.scalars(
                select(Notification.user_id).where(
                    Notification.task_id == task_id,
                    Notification.kind == kind,
                    Notification.user_id.in_(wanted),
                )
            )
        )
        wanted = [u for u in wanted if u not in told]
    for user_id in wanted:
        session.add(
            Notification(
                user_id=user_id,
                kind=kind,
                task_id=task_id,
                instance_id=instance_id,
                title=title[:_MAX_TITLE],
                body=body,
                created_at=now,
                email_status="pending",
            )
        )
    session.flush()
    return wanted


def role_holders(session: Session, role: str, district_id: int | None) -> list[int]:
    """Active users holding ``role`` (in ``district_id`` when the role is district-scoped)."""
    stmt = (
        select(User.id)
        .join(UserRole, UserRole.user_id == User.id)
        .join(Role, Role.code == UserRole.role_code)
        .where(UserRole.role_code == role, User.is_active.is_(True))
    )
    scoped = session.scalar(select(Role.district_scoped).where(Role.code == role))
    if scoped and district_id is not None:
        stmt = stmt.where(User.district_id == district_id)
    return sorted(set(session.scalars(stmt)))


def task_recipients(session: Session, task: HumanTask) -> list[int]:
    """Who answers for a task: its assignee, or everyone who may claim it."""
    if task.assignee_id is not None:
        return [task.assignee_id]
    if task.role is None:
        return []
    return role_holders(session, task.role, task.district_id)


def unread(session: Session, *, actor: Actor, limit: int = 50) -> list[NotificationView]:
    """The actor's unread notifications, newest first."""
    rows = session.scalars(
        select(Notification)
        .where(Notification.user_id == actor.user_id, Notification.read_at.is_(None))
        .order_by(Notification.created_at.desc(), Notification.id.desc())
        .limit(limit)
    )
    return [NotificationView.of(r) for r in rows]


def unread_count(session: Session, *, actor: Actor) -> int:
    return int(
        session.scalar(
            select(func.count(Notification.id)).where(
                Notification.user_id == actor.user_id, Notification.read_at.is_(None)
            )
        )
        or 0
    )


def mark_read(
    session: Session, *, actor: Actor, now: datetime, notification_id: int | None = None
) -> int:
    """Mark one of the actor's notifications read (or all of them when no id is given).

    Raises:
        NotFound: the id is not one of the actor's notifications.

    Returns:
        How many were marked.
    """
    stmt = update(Notification).where(
        Notification.user_id == actor.user_id, Notification.read_at.is_(None)
    )
    if notification_id is not None:
        owned = session.scalar(
            select(Notification.id).where(
                Notification.id == notification_id, Notification.user_id == actor.user_id
            )
        )
        if owned is None:
            raise NotFound(f"notification {notification_id} does not exist")
        stmt = stmt.where(Notification.id == notification_id)
    result = session.execute(stmt.values(read_at=now))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# --- e-mail -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 25
    sender: str = "qorgau@localhost"
    user: str | None = None
    password: str | None = None
    starttls: bool = False
    timeout: float = 30.0

    @classmethod
    def from_env(cls) -> SmtpSettings | None:
        """The settings from ``QORGAU_SMTP_*``, or None when no host is configured."""
        host = os.environ.get("QORGAU_SMTP_HOST")
        if not host:
            return None
        return cls(
            host=host,
            port=int(os.environ.get("QORGAU_SMTP_PORT", "25")),
            sender=os.environ.get("QORGAU_SMTP_FROM", "qorgau@localhost"),
            user=os.environ.get("QORGAU_SMTP_USER") or None,
            password=os.environ.get("QORGAU_SMTP_PASSWORD") or None,
            starttls=os.environ.get("QORGAU_SMTP_STARTTLS", "") in {"1", "true", "yes"},
        )


def _message(settings: SmtpSettings, to: str, row: Notification) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.sender
    message["To"] = to
    message["Subject"] = row.title
    message.set_content(row.body)
    return message


def send_pending_emails(
    session: Session, *, settings: SmtpSettings | None, now: datetime, limit: int = 20
) -> int:
    """Send pending notifications by e-mail (one SMTP session for the batch).

    Rows are claimed with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL so two workers never send
    the same one. Without SMTP settings, or for a user without an address, the row is
    marked ``none`` and stays an in-app notification only.

    Returns:
        How many e-mails were sent.
    """
    stmt = (
        select(Notification)
        .where(Notification.email_status == "pending")
        .order_by(Notification.id)
        .limit(limit)
    )
    if is_postgres(session):
        stmt = stmt.with_for_update(skip_locked=True, of=Notification)
    rows = list(session.scalars(stmt))
    if not rows:
        return 0
    addresses = dict(
        session.execute(
            select(User.id, User.email).where(User.id.in_({r.user_id for r in rows}))
        ).all()
    )
    sendable = [r for r in rows if settings is not None and addresses.get(r.user_id)]
    for row in rows:
        if row not in sendable:
            row.email_status = "none"
    sent = 0
    if sendable and settings is not None:
        try:
            client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
        except OSError as exc:
            for row in sendable:
                row.email_error = f"cannot reach {settings.host}:{settings.port}: {exc}"[:500]
            # Left pending: the next round tries again.
            return 0
        with client:
            if settings.starttls:
                client.starttls()
            if settings.user:
                client.login(settings.user, settings.password or "")
            for row in sendable:
                try:
                    client.send_message(_message(settings, addresses[row.user_id], row))
                except smtplib.SMTPException as exc:
                    row.email_status = "failed"
                    row.email_error = str(exc)[:500]
                    continue
                row.email_status = "sent"
                row.emailed_at = now
                row.email_error = None
                sent += 1
    session.flush()
    return sent
