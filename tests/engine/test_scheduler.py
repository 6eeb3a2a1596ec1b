"""The scheduler's jobs with a moved clock: timers of every kind, reminders, escalation, e-mail."""

from __future__ import annotations

import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from email import message_from_string
from email.header import decode_header, make_header
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from engine import instances, notifications, scheduler, tasks
from engine.clock import FixedClock
from engine.db import unit_of_work
from engine.errors import NotFound
from engine.models import AuditEvent, HumanTask, Notification, ProcessInstance, User
from tests.factories import deploy_dir, make_people

DATA = Path(__file__).parent.parent / "data" / "scheduler"
KZ = ZoneInfo("Asia/Qostanay")


@pytest.fixture
def world(sessions, clock):
    people = make_people(sessions, clock)
    deploy_dir(sessions, clock)
    deploy_dir(sessions, clock, DATA)
    return people


def _start(sessions, clock, actor, key="legal_timers", **kw):
    with unit_of_work(sessions) as s:
        return instances.start_process(s, process_key=key, actor=actor, clock=clock, **kw)


def _state(sessions, instance_id):
    """The instance, and how many daily checks its cycle timer has created."""
    with unit_of_work(sessions) as s:
        view = instances.get_instance(s, instance_id=instance_id)
        ticks = len(
            s.scalars(
                select(HumanTask.id).where(
                    HumanTask.instance_id == instance_id, HumanTask.bpmn_id == "tick"
                )
            ).all()
        )
    return view, {"ticks": ticks}


def _open(view):
    return sorted(t.bpmn_id for t in view.ready_tasks if t.bpmn_id != "tick")


def _fired_events(sessions, instance_id):
    with unit_of_work(sessions) as s:
        return s.scalars(
            select(AuditEvent.detail).where(
                AuditEvent.instance_id == instance_id, AuditEvent.action == "timers.fired"
            )
        ).all()


# --- timers ---------------------------------------------------------------------------------


def test_boundary_timers_fire_exactly_on_time(world, sessions, clock):
    """A cycle (non-interrupting) counts days; the 3-day term (interrupting) escalates."""
    started = clock.now()
    view = _start(sessions, clock, world["aigul"])
    assert [t.bpmn_id for t in view.ready_tasks] == ["review"]
    assert view.next_timer_at == started + timedelta(hours=24)

    clock.set(started + timedelta(hours=24) - timedelta(seconds=1))
    assert scheduler.fire_due_timers(sessions, clock=clock).fired == []

    clock.set(started + timedelta(hours=24))
    assert scheduler.fire_due_timers(sessions, clock=clock).fired == [view.id]
    after_one, data = _state(sessions, view.id)
    assert data["ticks"] == 1
    assert _open(after_one) == ["review"]
    assert after_one.next_timer_at == started + timedelta(hours=48)
    # Firing again at the same moment does nothing: no timer is due.
    assert scheduler.fire_due_timers(sessions, clock=clock).fired == []

    clock.set(started + timedelta(hours=72) - timedelta(seconds=1))
    scheduler.fire_due_timers(sessions, clock=clock)
    still, data = _state(sessions, view.id)
    assert data["ticks"] == 2  # R2: two cycles, then the cycle timer is done
    assert _open(still) == ["review"]
    assert still.next_timer_at == started + timedelta(hours=72)

    clock.set(started + timedelta(hours=72))
    assert scheduler.fire_due_timers(sessions, clock=clock).fired == [view.id]
    escalated, _ = _state(sessions, view.id)
    assert [(t.bpmn_id, t.role) for t in escalated.ready_tasks if t.bpmn_id != "tick"] == [
        ("escalate", "head")
    ]
    assert escalated.next_timer_at is None
    with unit_of_work(sessions) as s:
        review = s.scalars(select(HumanTask).where(HumanTask.bpmn_id == "review")).one()
        assert review.status == "cancelled"
    assert len(_fired_events(sessions, view.id)) == 3


def test_missed_cycles_are_caught_up_not_skipped(world, sessions, clock):
    started = clock.now()
    view = _start(sessions, clock, world["aigul"])
    # The server was down for 60 hours: both daily cycles are overdue, the term is not.
    clock.set(started + timedelta(hours=60))
    assert scheduler.fire_due_timers(sessions, clock=clock).fired == [view.id]
    after, data = _state(sessions, view.id)
    assert data["ticks"] == 2
    assert _open(after) == ["review"]
    assert after.next_timer_at == started + timedelta(hours=72)
    assert len(_fired_events(sessions, view.id)) == 1  # one command caught up both


def test_intermediate_timer_after_the_task(world, sessions, clock):
    view = _start(sessions, clock, world["aigul"])
    clock.advance(timedelta(hours=2))
    with unit_of_work(sessions) as s:
        tasks.complete_task(
            s, task_id=view.ready_tasks[0].id, actor=world["aigul"], data={}, clock=clock
        )
    done, _ = _state(sessions, view.id)
    assert _open(done) == []
    assert done.next_timer_at == clock.now() + timedelta(hours=1)
    clock.advance(timedelta(minutes=59))
    assert scheduler.fire_due_timers(sessions, clock=clock).fired == []
    clock.advance(timedelta(minutes=1))
    assert scheduler.fire_due_timers(sessions, clock=clock).fired == [view.id]
    archived, _ = _state(sessions, view.id)
    assert [t.bpmn_id for t in archived.ready_tasks] == ["archive"]


def test_fire_timers_does_nothing_when_nothing_is_due(world, sessions, clock):
    view = _start(sessions, clock, world["aigul"])
    with unit_of_work(sessions) as s:
        again = instances.fire_timers(s, instance_id=view.id, clock=clock)
    assert again.revision == view.revision
    assert _fired_events(sessions, view.id) == []


def test_suspended_cases_keep_their_timers(world, sessions, clock):
    view = _start(sessions, clock, world["aigul"])
    with unit_of_work(sessions) as s:
        instances.suspend(s, instance_id=view.id, actor=world["admin"], reason="t", clock=clock)
    clock.advance(timedelta(days=4))
    assert scheduler.fire_due_timers(sessions, clock=clock).fired == []
    with unit_of_work(sessions) as s:
        instances.resume(s, instance_id=view.id, actor=world["admin"], clock=clock)
    resumed, _ = _state(sessions, view.id)
    assert _open(resumed) == ["escalate"]


def test_a_claimed_instance_is_skipped_by_other_workers(world, sessions, clock, db_url):
    if not db_url.startswith("postgresql"):
        pytest.skip("row claims are PostgreSQL's; SQLite has one writer")
    view = _start(sessions, clock, world["aigul"])
    clock.advance(timedelta(days=1))
    holder = sessions()
    try:
        assert instances.claim_due_timer(holder, instance_id=view.id, now=clock.now())
        report = scheduler.fire_due_timers(sessions, clock=clock)
        assert report.fired == [] and report.skipped == 0  # not even a candidate
        with unit_of_work(sessions) as s:
            assert not instances.claim_due_timer(s, instance_id=view.id, now=clock.now())
    finally:
        holder.rollback()
        holder.close()
    assert scheduler.fire_due_timers(sessions, clock=clock).fired == [view.id]


# --- deadlines --------------------------------------------------------------------------------


def _notes(sessions, kind=None):
    with unit_of_work(sessions) as s:
        stmt = select(User.username, Notification.kind).join(User, User.id == Notification.user_id)
        if kind:
            stmt = stmt.where(Notification.kind == kind)
        return sorted(s.execute(stmt).all())


def test_reminders_overdue_and_escalation_each_once(world, sessions, clock):
    # Monday 2 March 10:00; test_intake's rule is 1 working day: due Tuesday 23:59:59.
    view = _start(sessions, clock, world["aigul"], key="test_intake")
    [task] = view.ready_tasks
    settings = scheduler.Settings(remind_before=timedelta(hours=24))
    assert scheduler.follow_deadlines(sessions, clock=clock, settings=settings) == {
        "reminded": 0,
        "overdue": 0,
        "escalated": 0,
    }
    clock.set(datetime(2026, 3, 3, 0, 0, tzinfo=KZ))
    assert scheduler.follow_deadlines(sessions, clock=clock, settings=settings)["reminded"] == 1
    # Not claimed: every specialist of the case's district, not Rudny's.
    assert _notes(sessions) == [("aigul", "reminder"), ("erzhan", "reminder")]
    assert scheduler.follow_deadlines(sessions, clock=clock, settings=settings)["reminded"] == 0

    with unit_of_work(sessions) as s:
        tasks.claim_task(s, task_id=task.id, actor=world["erzhan"], clock=clock)
    clock.set(datetime(2026, 3, 4, 0, 0, tzinfo=KZ))
    result = scheduler.follow_deadlines(sessions, clock=clock, settings=settings)
    assert result == {"reminded": 0, "overdue": 1, "escalated": 1}
    assert _notes(sessions, "due") == [("erzhan", "due")]  # the assignee only
    assert _notes(sessions, "escalation") == [("head", "escalation")]
    with unit_of_work(sessions) as s:
        row = s.get(HumanTask, task.id)
        assert row.overdue_at == row.escalated_at == clock.now()
        note = s.scalars(select(Notification).where(Notification.kind == "escalation")).one()
        assert "Reg 15.2 (test rule)" in note.body
        assert "03.03.2026 23:59" in note.body  # shown in Kostanay time
        assert "мерзімі 03.03.2026 23:59, Қостанай уақыты" in note.body
        assert "срок 03.03.2026 23:59, время Костаная" in note.body
        assert "Срок истёк, задача не выполнена." in note.body
    clock.advance(timedelta(days=1))
    assert scheduler.follow_deadlines(sessions, clock=clock, settings=settings) == {
        "reminded": 0,
        "overdue": 0,
        "escalated": 0,
    }


def test_escalation_waits_for_its_grace_period(world, sessions, clock):
    _start(sessions, clock, world["aigul"], key="test_intake")
    settings = scheduler.Settings(escalate_after=timedelta(hours=24))
    clock.set(datetime(2026, 3, 4, 12, 0, tzinfo=KZ))
    assert scheduler.follow_deadlines(sessions, clock=clock, settings=settings)["escalated"] == 0
    clock.set(datetime(2026, 3, 5, 0, 0, tzinfo=KZ))
    assert scheduler.follow_deadlines(sessions, clock=clock, settings=settings)["escalated"] == 1


def test_unread_and_mark_read(world, sessions, clock):
    _start(sessions, clock, world["aigul"], key="test_intake")
    for day in (3, 4):  # the day before the deadline, then the day after
        clock.set(datetime(2026, 3, day, 0, 0, tzinfo=KZ))
        scheduler.follow_deadlines(sessions, clock=clock, settings=scheduler.Settings())
    aigul, erzhan = world["aigul"], world["erzhan"]
    with unit_of_work(sessions) as s:
        assert notifications.unread_count(s, actor=aigul) == 2  # reminder, deadline reached
        [latest, _] = notifications.unread(s, actor=aigul)
        with pytest.raises(NotFound):
            notifications.mark_read(s, actor=erzhan, now=clock.now(), notification_id=latest.id)
        assert notifications.mark_read(s, actor=aigul, now=clock.now(), notification_id=latest.id)
        assert notifications.unread_count(s, actor=aigul) == 1
        assert notifications.mark_read(s, actor=aigul, now=clock.now()) == 1
        assert notifications.unread(s, actor=aigul) == []
        assert notifications.unread_count(s, actor=erzhan) == 2


# --- e-mail -----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp_sink():
    """A real SMTP server on localhost that keeps what it receives."""
    from aiosmtpd.controller import Controller

    class Sink:
        def __init__(self):
            self.messages = []

        async def handle_DATA(self, server, session, envelope):
            self.messages.append((envelope.rcpt_tos, envelope.content.decode("utf-8")))
            return "250 OK"

    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=_free_port())
    controller.start()
    yield sink, controller.port
    controller.stop()


def test_emails_go_through_smtp_once(world, sessions, clock, smtp_sink):
    sink, port = smtp_sink
    with unit_of_work(sessions) as s:
        s.execute(update(User).where(User.username == "head").values(email="head@example.kz"))
    _start(sessions, clock, world["aigul"], key="test_intake")
    clock.set(datetime(2026, 3, 4, 0, 0, tzinfo=KZ))
    settings = scheduler.Settings(
        smtp=notifications.SmtpSettings(host="127.0.0.1", port=port, sender="qorgau@example.kz")
    )
    scheduler.follow_deadlines(sessions, clock=clock, settings=settings)
    assert scheduler.send_emails(sessions, clock=clock, settings=settings) == 1
    assert scheduler.send_emails(sessions, clock=clock, settings=settings) == 0
    [(to, content)] = sink.messages
    assert to == ["head@example.kz"]
    subject = str(make_header(decode_header(message_from_string(content)["Subject"])))
    # Kazakh first, then Russian, with the task's names in each.
    assert subject.startswith("Мерзімі өтті: ") and " / Просрочено: " in subject
    with unit_of_work(sessions) as s:
        statuses = sorted(s.scalars(select(Notification.email_status)).all())
    # Two specialists told the deadline passed have no address: in-app only.
    assert statuses == ["none", "none", "sent"]


def test_without_smtp_notifications_stay_in_app(world, sessions, clock):
    _start(sessions, clock, world["aigul"], key="test_intake")
    clock.set(datetime(2026, 3, 4, 0, 0, tzinfo=KZ))
    settings = scheduler.Settings(smtp=None)
    scheduler.follow_deadlines(sessions, clock=clock, settings=settings)
    assert scheduler.send_emails(sessions, clock=clock, settings=settings) == 0
    with unit_of_work(sessions) as s:
        assert set(s.scalars(select(Notification.email_status))) == {"none"}


# --- APScheduler ------------------------------------------------------------------------------


def test_the_apscheduler_jobs_fire_a_due_timer(world, sessions):
    # Real time here: the scheduler polls on the wall clock. The timer is already due.
    clock = FixedClock(datetime.now(UTC) - timedelta(days=4))
    view = _start(sessions, clock, world["aigul"])
    with unit_of_work(sessions) as s:
        s.execute(
            update(ProcessInstance)
            .where(ProcessInstance.id == view.id)
            .values(next_timer_at=datetime.now(UTC) - timedelta(days=1))
        )
    sched = scheduler.build_scheduler(
        sessions, settings=scheduler.Settings(timer_poll=timedelta(seconds=1))
    )
    assert {j.id for j in sched.get_jobs()} == {"timers", "deadlines", "emails", "calendar"}
    done = threading.Event()
    sched.start()
    try:
        deadline = time.monotonic() + 60  # a bound for a hung job, not a timing assumption
        while time.monotonic() < deadline and not done.is_set():
            state, _ = _state(sessions, view.id)
            if _open(state) == ["escalate"]:
                done.set()
            else:
                time.sleep(0.1)
    finally:
        sched.shutdown(wait=True)
    assert done.is_set()


# --- stored state stays compatible -----------------------------------------------------------


def test_clocked_timers_keep_spiffworkflows_type_names():
    import json

    from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
    from SpiffWorkflow.spiff.parser import SpiffBpmnParser
    from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG

    from engine.spiff import timers
    from engine.spiff.workflow import dump_spec_bundle, load_spec_bundle

    parser = SpiffBpmnParser()
    parser.add_bpmn_files([str(DATA / "legal_timers.bpmn")])
    spec = parser.get_spec("legal_timers")
    # Written as a deployment writes it: the parser's (SpiffWorkflow's) classes.
    bundle = dump_spec_bundle(spec, {})
    names = {
        t["event_definition"]["typename"]
        for t in json.loads(bundle)["spec"]["task_specs"].values()
        if "event_definition" in t
    }
    assert names - {"NoneEventDefinition"} == {
        "CycleTimerEventDefinition",
        "DurationTimerEventDefinition",
    }
    restored, _ = load_spec_bundle(bundle)
    kinds = {
        type(t.event_definition).__qualname__: type(t.event_definition)
        for t in restored.task_specs.values()
        if hasattr(t, "event_definition")
    }
    assert kinds["CycleTimerEventDefinition"] is timers.CycleTimerEventDefinition
    assert kinds["DurationTimerEventDefinition"] is timers.DurationTimerEventDefinition
    # And plain SpiffWorkflow reads what we write.
    plain = BpmnWorkflowSerializer.configure(SPIFF_CONFIG)
    again = plain.restore(json.loads(dump_spec_bundle(restored, {}))["spec"])
    assert again.task_specs["daily"].event_definition.expression == '"R2/PT24H"'
