"""The scheduler's jobs: fire due BPMN timers, remind, mark overdue, escalate, send e-mail.

APScheduler (3.x) runs these jobs inside ``qorgau serve`` and in any number of separate
``qorgau worker`` processes. Processes coordinate only through the database, never through
memory: each job is a loop of small units of work, **one transaction per instance or
task**, and each one claims its row before acting.

**Claims.** On PostgreSQL a claim is ``SELECT … FOR UPDATE SKIP LOCKED`` on the rows, held
for one transaction: another worker skips them while they are held, and sees them no longer
due once the transaction commits. The alternative, a lease column (claimed_by,
claimed_until) written in one transaction and cleared in another, needs a guess at how long
a job may take and a sweeper for stale leases; the row lock needs neither, because it dies
with the connection: a worker killed mid-batch (SIGKILL, OOM, a lost host) rolls back the
instances of its open transaction, and they stay due for the next worker. Nothing is lost,
and since firing and the new ``next_timer_at`` commit together, nothing fires twice. A
worker that hangs instead of dying is cut off by PostgreSQL's
``idle_in_transaction_session_timeout``, which ``worker_engine`` sets on its connections.
SQLite has one writer at a time; there the revision check of ``Unit.save`` turns a lost race
into a ``Conflict`` that rolls back that instance's savepoint.

**Deadlines.** Tasks with a due date (``human_task.due_at``) get, each exactly once: a
reminder to the assignee (or to every holder of the task's role) ``remind_before`` ahead; a
"deadline reached" notification when it passes, which marks the task overdue; and an
escalation to the head ``escalate_after`` later. Each step sets its column on the task in the
same transaction as its notifications.

All times come from the injected clock, so tests move a ``FixedClock`` instead of sleeping.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from engine import notifications, procedures
from engine.calendar import DEPARTMENT_TZ
from engine.calendar_overrides import load_calendar
from engine.clock import SYSTEM_CLOCK, Clock
from engine.config import database_url
from engine.db import is_postgres, make_engine, unit_of_work
from engine.errors import Conflict
from engine.instances import due_timer_instances, fire_timers
from engine.models import TASK_IS_OPEN, HumanTask

log = logging.getLogger("qorgau.scheduler")


@dataclass(frozen=True)
class Settings:
    """How often jobs run and when reminders and escalations are due."""

    timer_poll: timedelta = timedelta(seconds=5)
    deadline_poll: timedelta = timedelta(minutes=1)
    email_poll: timedelta = timedelta(seconds=30)
    remind_before: timedelta = timedelta(hours=24)
    escalate_after: timedelta = timedelta(0)
    smtp: notifications.SmtpSettings | None = None


@dataclass
class TimerReport:
    fired: list[int] = field(default_factory=list)
    skipped: int = 0  # claimed by another worker, or no longer due
    conflicts: int = 0


def fire_due_timers(
    sessions: sessionmaker[Session],
    *,
    clock: Clock = SYSTEM_CLOCK,
    batch: int = 10,
    max_batches: int | None = None,
    before_commit: Callable[[int], None] | None = None,
) -> TimerReport:
    """Fire every timer due by ``clock``, ``batch`` instances per transaction, until none is due.

    Each transaction claims up to ``batch`` due instances in one statement (on PostgreSQL
    ``FOR UPDATE SKIP LOCKED``: other workers take the next ones) and fires each inside its
    own savepoint, so that an instance that fails or loses a race is rolled back alone; one
    commit (one disk flush) serves the whole batch. A worker killed in the middle rolls back
    its open transaction, and those instances stay due for the others.

    Args:
        sessions: the database.
        clock: what "now" is.
        batch: how many instances to claim and fire per transaction.
        max_batches: stop after this many transactions (None: until nothing is due).
        before_commit: called with each instance id once it is fired, before its
            transaction commits (a test's hook to stop a worker in the middle of a batch).

    Returns:
        The instances fired, and how many claimed ones were not due any more or lost a race.
    """
    report = TimerReport()
    # Instances still due after firing (a cycle with more than MAX_TIMER_ROUNDS to catch up,
    # or a timer SpiffWorkflow would not fire) wait for the next call: no busy loop here.
    again: set[int] = set()
    rounds = 0
    while max_batches is None or rounds < max_batches:
        rounds += 1
        now = clock.now()
        with unit_of_work(sessions) as session:
            claimed = due_timer_instances(session, now=now, limit=batch, exclude=again)
            fired = []
            for instance_id in claimed:
                savepoint = session.begin_nested()
                try:
                    view = fire_timers(session, instance_id=instance_id, clock=clock)
                    savepoint.commit()
                except Conflict:
                    savepoint.rollback()
                    report.conflicts += 1
                    continue
                if view.next_timer_at is not None and view.next_timer_at <= now:
                    again.add(instance_id)
                fired.append(instance_id)
                if before_commit is not None:
                    before_commit(instance_id)
        report.fired.extend(fired)
        if not claimed:
            break
        if not fired:
            # Claimed, yet nothing fired: on SQLite another worker fired them first.
            report.skipped += len(claimed)
            break
    return report


# --- deadlines --------------------------------------------------------------------------


def _local(moment: datetime) -> str:
    return moment.astimezone(DEPARTMENT_TZ).strftime("%d.%m.%Y %H:%M")


# What a deadline notice says, Kazakh first, then Russian, as the Department's documents
# are (a notification holds one text whatever its reader's language): title, then the
# sentence about the task.
_NOTICES = {
    "reminder": ("Мерзімі жақындады", "Срок истекает"),
    "due": ("Мерзімі келді", "Срок наступил"),
    "escalation": ("Мерзімі өтті", "Просрочено"),
}
_NOT_DONE = ("Мерзім өтті, тапсырма орындалмады.", "Срок истёк, задача не выполнена.")


def _notice(names: procedures.Names, task: HumanTask, kind: str) -> tuple[str, str]:
    """The title and body of a deadline notice about ``task``, with the task's names in
    Kazakh and Russian (its procedure's ``name.kk``/``name.ru``)."""
    kk = names.task(task.process_key, task.bpmn_id, "kk", task.name)
    ru = names.task(task.process_key, task.bpmn_id, "ru", task.name)
    title_kk, title_ru = _NOTICES[kind]
    basis = f" ({task.deadline_basis})" if task.deadline_basis else ""
    due = _local(task.due_at) if task.due_at else "-"
    case_kk = f", іс {task.case_number}" if task.case_number else ""
    case_ru = f", дело {task.case_number}" if task.case_number else ""
    body = (
        f"«{kk}»{case_kk}: мерзімі {due}, Қостанай уақыты{basis}.\n"
        f"«{ru}»{case_ru}: срок {due}, время Костаная{basis}."
    )
    if kind == "escalation":
        body += f"\n{_NOT_DONE[0]} / {_NOT_DONE[1]}"
    return f"{title_kk}: {kk} / {title_ru}: {ru}", body


def _claim_task(session: Session, task_id: int, *conditions: Any) -> HumanTask | None:
    stmt = select(HumanTask).where(HumanTask.id == task_id, TASK_IS_OPEN, *conditions)
    if is_postgres(session):
        stmt = stmt.with_for_update(skip_locked=True)
    return session.scalars(stmt).first()


def _each_task(
    sessions: sessionmaker[Session],
    candidates: Any,
    conditions: tuple[Any, ...],
    act: Callable[[Session, HumanTask, procedures.Names], None],
    limit: int,
) -> list[int]:
    done: list[int] = []
    with unit_of_work(sessions) as session:
        ids = list(session.scalars(candidates.order_by(HumanTask.due_at).limit(limit)))
        if not ids:
            return done
        # Read once for the batch: every notice names its task in Kazakh and Russian.
        names = procedures.names(session)
    for task_id in ids:
        with unit_of_work(sessions) as session:
            task = _claim_task(session, task_id, *conditions)
            if task is None:
                continue
            act(session, task, names)
        done.append(task_id)
    return done


def remind_due_soon(
    sessions: sessionmaker[Session],
    *,
    clock: Clock = SYSTEM_CLOCK,
    before: timedelta = timedelta(hours=24),
    limit: int = 500,
) -> list[int]:
    """Remind whoever answers for a task that its deadline is within ``before``."""
    now = clock.now()
    conditions = (
        HumanTask.due_at.is_not(None),
        HumanTask.due_at > now,
        HumanTask.due_at <= now + before,
        HumanTask.reminded_at.is_(None),
    )

    def act(session: Session, task: HumanTask, names: procedures.Names) -> None:
        title, body = _notice(names, task, "reminder")
        notifications.notify(
            session,
            user_ids=notifications.task_recipients(session, task),
            kind="reminder",
            title=title,
            body=body,
            now=now,
            task_id=task.id,
            instance_id=task.instance_id,
        )
        task.reminded_at = now

    candidates = select(HumanTask.id).where(TASK_IS_OPEN, *conditions)
    return _each_task(sessions, candidates, conditions, act, limit)


def mark_overdue(
    sessions: sessionmaker[Session], *, clock: Clock = SYSTEM_CLOCK, limit: int = 500
) -> list[int]:
    """Mark tasks whose deadline has passed, and tell whoever answers for them."""
    now = clock.now()
    conditions = (
        HumanTask.due_at.is_not(None),
        HumanTask.due_at <= now,
        HumanTask.overdue_at.is_(None),
    )

    def act(session: Session, task: HumanTask, names: procedures.Names) -> None:
        title, body = _notice(names, task, "due")
        notifications.notify(
            session,
            user_ids=notifications.task_recipients(session, task),
            kind="due",
            title=title,
            body=body,
            now=now,
            task_id=task.id,
            instance_id=task.instance_id,
        )
        task.overdue_at = now

    candidates = select(HumanTask.id).where(TASK_IS_OPEN, *conditions)
    return _each_task(sessions, candidates, conditions, act, limit)


def escalate_overdue(
    sessions: sessionmaker[Session],
    *,
    clock: Clock = SYSTEM_CLOCK,
    after: timedelta = timedelta(0),
    limit: int = 500,
) -> list[int]:
    """Tell the head about tasks overdue by ``after`` or more (each task once)."""
    now = clock.now()
    conditions = (
        HumanTask.overdue_at.is_not(None),
        HumanTask.due_at <= now - after,
        HumanTask.escalated_at.is_(None),
    )

    def act(session: Session, task: HumanTask, names: procedures.Names) -> None:
        heads = notifications.role_holders(session, "head", None)
        title, body = _notice(names, task, "escalation")
        notifications.notify(
            session,
            user_ids=heads,
            kind="escalation",
            title=title,
            body=body,
            now=now,
            task_id=task.id,
            instance_id=task.instance_id,
        )
        task.escalated_at = now

    candidates = select(HumanTask.id).where(TASK_IS_OPEN, *conditions)
    return _each_task(sessions, candidates, conditions, act, limit)


def follow_deadlines(
    sessions: sessionmaker[Session], *, clock: Clock = SYSTEM_CLOCK, settings: Settings
) -> dict[str, int]:
    """One round of the deadline jobs, in order: remind, mark overdue, escalate."""
    return {
        "reminded": len(remind_due_soon(sessions, clock=clock, before=settings.remind_before)),
        "overdue": len(mark_overdue(sessions, clock=clock)),
        "escalated": len(escalate_overdue(sessions, clock=clock, after=settings.escalate_after)),
    }


def send_emails(
    sessions: sessionmaker[Session], *, clock: Clock = SYSTEM_CLOCK, settings: Settings
) -> int:
    """Send pending e-mail notifications, a batch per transaction, until none is pending."""
    total = 0
    while True:
        with unit_of_work(sessions) as session:
            sent = notifications.send_pending_emails(
                session, settings=settings.smtp, now=clock.now()
            )
            pending = session.scalar(
                select(notifications.Notification.id)
                .where(notifications.Notification.email_status == "pending")
                .limit(1)
            )
        total += sent
        if sent == 0 or pending is None:
            return total


def refresh_calendar(sessions: sessionmaker[Session]) -> str:
    """Reload the calendar's overrides (for scripts' working-day helpers in this process)."""
    with unit_of_work(sessions) as session:
        return load_calendar(session).version


# --- APScheduler ------------------------------------------------------------------------


def worker_engine(url: str | None = None) -> Engine:
    """An engine for scheduler jobs; on PostgreSQL a hung transaction is ended by the server
    after five minutes, which drops its claims."""
    url = url or database_url()
    if url.startswith("postgresql"):
        return make_engine(
            url, connect_args={"options": "-c idle_in_transaction_session_timeout=300000"}
        )
    return make_engine(url)


def _guarded(name: str, job: Callable[[], Any]) -> Callable[[], None]:
    def run() -> None:
        try:
            result = job()
        except Exception:  # a failing round must not stop the scheduler; the next one retries
            log.exception("scheduler job %s failed", name)
            return
        if result:
            log.info("scheduler job %s: %s", name, result)

    return run


def build_scheduler(
    sessions: sessionmaker[Session],
    *,
    clock: Clock = SYSTEM_CLOCK,
    settings: Settings | None = None,
    blocking: bool = False,
) -> Any:
    """An APScheduler scheduler with Qorgau's jobs (not started).

    ``max_instances=1`` and ``coalesce=True``: a round that takes longer than its interval
    is not run twice at once in one process; other processes are kept apart by the claims.
    """
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.schedulers.blocking import BlockingScheduler

    settings = settings or Settings()
    scheduler = (BlockingScheduler if blocking else BackgroundScheduler)(timezone="UTC")
    jobs: list[tuple[str, timedelta, Callable[[], Any]]] = [
        (
            "timers",
            settings.timer_poll,
            lambda: len(fire_due_timers(sessions, clock=clock).fired),
        ),
        (
            "deadlines",
            settings.deadline_poll,
            lambda: {
                k: v
                for k, v in follow_deadlines(sessions, clock=clock, settings=settings).items()
                if v
            },
        ),
        (
            "emails",
            settings.email_poll,
            lambda: send_emails(sessions, clock=clock, settings=settings),
        ),
        ("calendar", timedelta(minutes=1), lambda: refresh_calendar(sessions) and None),
    ]
    for name, every, job in jobs:
        scheduler.add_job(
            _guarded(name, job),
            "interval",
            seconds=every.total_seconds(),
            id=name,
            max_instances=1,
            coalesce=True,
            # Polling runs on the wall clock; the jobs read ``clock`` for legal time.
            next_run_time=SYSTEM_CLOCK.now(),
        )
    return scheduler
