"""Kazakhstan's working-day calendar: the package, the overrides, the legal convention."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from engine import calendar, instances
from engine.calendar import PACKAGE_CALENDAR, Term, WorkingCalendar, due_at
from engine.calendar_overrides import add_override, list_overrides, load_calendar, remove_override
from engine.db import unit_of_work
from engine.deadlines import deadline_for, parse_rules
from engine.errors import Conflict, Forbidden, NotFound, ValidationFailed
from engine.identity import SYSTEM
from engine.models import AuditEvent, HumanTask
from engine.sandbox import SandboxPool, compile_expression
from engine.sandbox.environment import evaluate_in_process
from tests.factories import deploy_dir, make_people

KZ = ZoneInfo("Asia/Qostanay")


@pytest.fixture(autouse=True)
def _package_calendar_after():
    """Overrides activated by a test must not follow the next test in this process."""
    yield
    calendar.activate(PACKAGE_CALENDAR)


def at(y, m, d, h=10, minute=0):
    return datetime(y, m, d, h, minute, tzinfo=KZ)


def close_of(y, m, d):
    """23:59:59 in Kostanay, as UTC."""
    return datetime(y, m, d, 23, 59, 59, tzinfo=KZ).astimezone(UTC)


WD = "working_days"


# --- the package's calendar -----------------------------------------------------------------


def test_new_year_is_skipped():
    # Tue 30 Dec 2025: Wed 31 works, Thu 1 and Fri 2 Jan are New Year, then the weekend.
    assert due_at(at(2025, 12, 30), Term(1, WD)) == close_of(2025, 12, 31)
    assert due_at(at(2025, 12, 30), Term(2, WD)) == close_of(2026, 1, 5)
    # Wed 7 Jan 2026 is Orthodox Christmas: day 3 is Tue 6, day 4 Thu 8.
    assert due_at(at(2025, 12, 30), Term(4, WD)) == close_of(2026, 1, 8)


def test_nauryz_and_its_moved_days():
    # Nauryz 21-23 March 2026 is Sat-Mon; Sat and Sun move to Tue 24 and Wed 25.
    for day in range(21, 26):
        assert not calendar.is_working_day(date(2026, 3, day)), day
    assert due_at(at(2026, 3, 20), Term(1, WD)) == close_of(2026, 3, 26)
    assert due_at(at(2026, 3, 19), Term(2, WD)) == close_of(2026, 3, 26)


def test_a_holiday_on_a_weekend_moves_to_monday():
    # 8 March 2026 is a Sunday: Monday 9 March is the day off.
    assert not calendar.is_working_day(date(2026, 3, 9))
    assert due_at(at(2026, 3, 6), Term(1, WD)) == close_of(2026, 3, 10)


def test_a_transferred_working_sunday_counts():
    # Government decree for 2025: Sunday 5 January worked, Friday 3 January off.
    assert calendar.is_working_day(date(2025, 1, 5))
    assert not calendar.is_working_day(date(2025, 1, 3))
    assert due_at(at(2025, 1, 4), Term(1, WD)) == close_of(2025, 1, 5)
    assert due_at(at(2024, 12, 31), Term(1, WD)) == close_of(2025, 1, 5)


# --- the convention ---------------------------------------------------------------------------


def test_the_term_starts_the_day_after_the_event():
    # Registered Monday 2 March 2026 at 17:55: 1 working day ends Tuesday at the close.
    assert due_at(at(2026, 3, 2, 17, 55), Term(1, WD)) == close_of(2026, 3, 3)
    # Registered Saturday: day 1 is Monday.
    assert due_at(at(2026, 3, 14), Term(1, WD)) == close_of(2026, 3, 16)


def test_the_day_is_the_departments_not_utc():
    # 20:00 UTC on Monday is 01:00 on Tuesday in Kostanay: the event day is Tuesday.
    event = datetime(2026, 3, 2, 20, 0, tzinfo=UTC)
    assert due_at(event, Term(1, WD)) == close_of(2026, 3, 4)


def test_calendar_days_ending_on_a_day_off_move_to_the_next_working_day():
    # Monday 2 March + 5 days = Saturday 7; Sunday 8 and Monday 9 (moved 8 March) are off.
    assert due_at(at(2026, 3, 2), Term(5, "calendar_days")) == close_of(2026, 3, 10)
    # Ending on a working day: no move.
    assert due_at(at(2026, 3, 2), Term(3, "calendar_days")) == close_of(2026, 3, 5)


def test_hours_run_from_the_event_through_days_off():
    event = at(2026, 3, 20, 16, 30)
    assert due_at(event, Term(72, "hours")) == (event + timedelta(hours=72)).astimezone(UTC)


def test_terms_are_bounded_and_units_known():
    with pytest.raises(ValueError, match="out of range"):
        due_at(at(2026, 3, 2), Term(5000, WD))
    with pytest.raises(ValueError, match="unknown unit"):
        due_at(at(2026, 3, 2), Term(1, "weeks"))
    with pytest.raises(ValueError, match="timezone-aware"):
        due_at(datetime(2026, 3, 2, 10), Term(1, WD))  # noqa: DTZ001


# --- overrides -------------------------------------------------------------------------------


def test_an_override_changes_the_result_and_the_version():
    kurban_ait = WorkingCalendar([(date(2026, 3, 26), "holiday")])
    assert kurban_ait.due_at(at(2026, 3, 20), Term(1, WD)) == close_of(2026, 3, 27)
    assert PACKAGE_CALENDAR.due_at(at(2026, 3, 20), Term(1, WD)) == close_of(2026, 3, 26)
    saturday = WorkingCalendar([(date(2026, 3, 28), "working_day")])
    assert saturday.due_at(at(2026, 3, 26), Term(2, WD)) == close_of(2026, 3, 28)
    versions = {PACKAGE_CALENDAR.version, kurban_ait.version, saturday.version}
    assert len(versions) == 3
    assert PACKAGE_CALENDAR.version.startswith("holidays-0.109")
    # The version depends on the content only.
    assert WorkingCalendar([(date(2026, 3, 26), "holiday")]).version == kurban_ait.version


def test_deadline_rules_carry_basis_and_calendar_version():
    rules = {"r": [{"value": 1, "unit": WD, "basis": "Reg 15.2"}]}
    cal = WorkingCalendar([(date(2026, 3, 26), "holiday")])
    deadline = deadline_for(rules, "r", at(2026, 3, 20), cal)
    assert deadline.due_at == close_of(2026, 3, 27)
    assert (deadline.basis, deadline.calendar_version) == ("Reg 15.2", cal.version)
    assert deadline_for(rules, None, at(2026, 3, 20), cal) is None


def test_a_term_counts_from_the_task_the_case_or_a_date_of_the_case():
    rule = {"value": 1, "unit": WD, "basis": "b"}
    created, started = at(2026, 3, 19), at(2026, 3, 16)
    rules = {
        "task": [dict(rule, counts_from="task")],
        "case": [dict(rule, counts_from="case")],
        "applied": [dict(rule, counts_from="data.applied_on")],
    }

    def due(key, data=None):
        found = deadline_for(rules, key, created, PACKAGE_CALENDAR, case_started=started, data=data)
        return found.due_at, found.starts_at

    assert due("task") == (close_of(2026, 3, 20), created)
    assert due("case") == (close_of(2026, 3, 17), started)
    # A date is its first moment in Kostanay; a date-time without a zone is Kostanay's too.
    first_moment = datetime(2026, 3, 12, tzinfo=ZoneInfo("Asia/Qostanay"))
    assert due("applied", {"applied_on": "2026-03-12"}) == (close_of(2026, 3, 13), first_moment)
    assert due("applied", {"applied_on": date(2026, 3, 12)})[1] == first_moment
    assert due("applied", {"applied_on": "2026-03-12T23:30:00"})[1] == datetime(
        2026, 3, 12, 23, 30, tzinfo=ZoneInfo("Asia/Qostanay")
    )
    # Missing or unreadable: the case's start. In the future: the task's creation.
    assert due("applied", {})[1] == started
    assert due("applied", {"applied_on": "12.03.2026"})[1] == started
    assert due("applied", {"applied_on": "2026-04-01"})[1] == created


def test_the_rule_in_force_on_the_day_the_term_starts_applies():
    # Received under the old term, registered under the new one: the old term applies.
    rules = {
        "s": [
            {
                "value": 5,
                "unit": WD,
                "basis": "old",
                "effective_to": "2026-03-15",
                "counts_from": "data.applied_on",
            },
            {
                "value": 1,
                "unit": WD,
                "basis": "new",
                "effective_from": "2026-03-16",
                "counts_from": "data.applied_on",
            },
        ]
    }
    found = deadline_for(
        rules, "s", at(2026, 3, 17), PACKAGE_CALENDAR, data={"applied_on": "2026-03-13"}
    )
    assert (found.basis, found.due_at) == ("old", close_of(2026, 3, 20))


@pytest.mark.parametrize(
    ("counts_from", "message"),
    [
        ("application", "counts_from must be"),
        ("data.", "counts_from must be"),
        ("data._secret", "counts_from must be"),
        ("data.a b", "counts_from must be"),
        (7, "counts_from must be"),
    ],
)
def test_rules_files_refuse_an_unknown_start(counts_from, message):
    content = (
        "rules:\n  k:\n    basis: b\n    value: 1\n    unit: working_days\n"
        f"    counts_from: {counts_from!r}\n"
    ).encode()
    rules, problems = parse_rules("deadlines.yaml", content)
    assert [p.element_id for p in problems] == ["k"]
    assert message in problems[0].message


def test_every_version_of_a_rule_counts_from_the_same():
    content = b"""rules:
  k:
    - {basis: b, value: 1, unit: working_days, effective_to: 2026-01-01}
    - {basis: b, value: 2, unit: working_days, counts_from: case}
"""
    _, problems = parse_rules("deadlines.yaml", content)
    assert [(p.element_id, p.message) for p in problems] == [
        ("k", "every version of a rule must count from the same")
    ]
    agreed = content.replace(b"2026-01-01}", b"2026-01-01, counts_from: case}")
    assert parse_rules("deadlines.yaml", agreed)[1] == []


def test_sandbox_helpers_count_with_the_active_calendar_also_in_workers():
    code = compile_expression("add_working_days('2026-03-20', 1)")
    check = compile_expression("is_working_day(date(2026, 3, 28))")
    override = WorkingCalendar([(date(2026, 3, 26), "holiday"), (date(2026, 3, 28), "working_day")])
    with SandboxPool(workers=1) as pool:
        assert pool.evaluate(code, {}) == date(2026, 3, 26)
        assert pool.evaluate(check, {}) is False
        with calendar.using(override):
            # The worker process has no database: the overrides travel with the call.
            assert pool.evaluate(code, {}) == date(2026, 3, 27)
            assert pool.evaluate(check, {}) is True
            if code.in_process_safe:
                assert evaluate_in_process(code, {}) == date(2026, 3, 27)
        assert pool.evaluate(code, {}) == date(2026, 3, 26)


# --- overrides in the database ----------------------------------------------------------------


@pytest.fixture
def world(sessions, clock):
    people = make_people(sessions, clock)
    deploy_dir(sessions, clock)
    return people


def test_admin_adds_and_removes_overrides(world, sessions, clock):
    with unit_of_work(sessions) as s:
        view = add_override(
            s,
            actor=world["admin"],
            day=date(2026, 5, 27),
            kind="working_day",
            reason="Kurban Ait is on 26 May in 2026, not 27",
            legal_act="Announcement of the Spiritual Administration, 2026",
            now=clock.now(),
        )
        assert "estimated" in view.package_says
    with unit_of_work(sessions) as s:
        assert [o.day for o in list_overrides(s, year=2026)] == [date(2026, 5, 27)]
        assert list_overrides(s, year=2025) == []
        assert load_calendar(s).is_working_day(date(2026, 5, 27))
        assert s.scalars(select(AuditEvent.action).where(AuditEvent.chain == "system")).all()[
            -1
        ] == ("calendar.override_added")
    with pytest.raises(Conflict):
        with unit_of_work(sessions) as s:
            add_override(
                s,
                actor=SYSTEM,
                day=date(2026, 5, 27),
                kind="working_day",
                reason="again",
                legal_act="x",
                now=clock.now(),
            )
    with unit_of_work(sessions) as s:
        remove_override(s, actor=world["admin"], day=date(2026, 5, 27), now=clock.now())
        assert not load_calendar(s).is_working_day(date(2026, 5, 27))
    with pytest.raises(NotFound):
        with unit_of_work(sessions) as s:
            remove_override(s, actor=world["admin"], day=date(2026, 5, 27), now=clock.now())


def test_only_admins_and_only_real_changes(world, sessions, clock):
    with pytest.raises(Forbidden):
        with unit_of_work(sessions) as s:
            add_override(
                s,
                actor=world["aigul"],
                day=date(2026, 3, 26),
                kind="holiday",
                reason="r",
                legal_act="a",
                now=clock.now(),
            )
    with pytest.raises(ValidationFailed) as refused:
        with unit_of_work(sessions) as s:
            add_override(
                s,
                actor=world["admin"],
                day=date(2026, 3, 23),  # already Nauryz
                kind="holiday",
                reason="",
                legal_act="",
                now=clock.now(),
            )
    fields = {e.field for e in refused.value.errors}
    assert fields == {"reason", "legal_act"}
    with pytest.raises(ValidationFailed, match="already a holiday"):
        with unit_of_work(sessions) as s:
            add_override(
                s,
                actor=world["admin"],
                day=date(2026, 3, 23),
                kind="holiday",
                reason="r",
                legal_act="a",
                now=clock.now(),
            )


def test_tasks_store_due_date_basis_and_calendar_version(world, sessions, clock):
    # The clock: Monday 2 March 2026; the rule: 1 working day (Reg 15.2 in the test rules).
    with unit_of_work(sessions) as s:
        first = instances.start_process(
            s, process_key="test_intake", actor=world["aigul"], clock=clock
        )
    with unit_of_work(sessions) as s:
        add_override(
            s,
            actor=world["admin"],
            day=date(2026, 3, 3),
            kind="holiday",
            reason="test: an emergency day off",
            legal_act="Decree No. 0 (test)",
            now=clock.now(),
        )
    with unit_of_work(sessions) as s:
        second = instances.start_process(
            s, process_key="test_intake", actor=world["aigul"], clock=clock
        )
    with unit_of_work(sessions) as s:
        rows = {
            r.instance_id: r
            for r in s.scalars(select(HumanTask).where(HumanTask.bpmn_id == "register"))
        }
    a, b = rows[first.id], rows[second.id]
    assert a.due_at == close_of(2026, 3, 3)
    assert b.due_at == close_of(2026, 3, 4)
    assert a.deadline_basis == b.deadline_basis == "Reg 15.2 (test rule)"
    assert a.calendar_version == PACKAGE_CALENDAR.version
    assert b.calendar_version != a.calendar_version
    assert b.calendar_version.startswith("holidays-0.109+1:")


# --- the command ------------------------------------------------------------------------------


def test_cli_calendar_due_and_overrides(sqlite_url, monkeypatch):
    from web.cli import main

    monkeypatch.setenv("QORGAU_DATABASE_URL", sqlite_url)
    runner = CliRunner()
    out = runner.invoke(main, ["calendar", "due", "2026-03-20", "1", "working-days"])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[0] == "2026-03-26T23:59:59+05:00"
    assert lines[1] == "2026-03-26T18:59:59+00:00"
    out = runner.invoke(main, ["calendar", "due", "2026-03-20T16:30", "72", "hours"])
    assert out.output.splitlines()[0] == "2026-03-23T16:30:00+05:00"
    out = runner.invoke(
        main,
        [
            "calendar",
            "add",
            "2026-03-26",
            "holiday",
            "--reason",
            "test",
            "--legal-act",
            "Decree (test)",
        ],
    )
    assert out.exit_code == 0, out.output
    out = runner.invoke(main, ["calendar", "due", "2026-03-20", "1", "working-days"])
    assert out.output.splitlines()[0] == "2026-03-27T23:59:59+05:00"
    assert "holidays-0.109+1:" in out.output
    out = runner.invoke(main, ["calendar", "list"])
    assert "2026-03-26\tholiday" in out.output
    out = runner.invoke(main, ["calendar", "remove", "2026-03-26"])
    assert out.exit_code == 0
    out = runner.invoke(main, ["calendar", "due", "2026-03-20", "1", "weeks"])
    assert out.exit_code == 2
