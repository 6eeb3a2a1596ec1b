"""The inbox's work list: keyset pages in due order, queues, filters, search; absences; on
SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest
from sqlalchemy import select, text

from engine import absence, instances, tasks, worklist
from engine.db import unit_of_work
from engine.errors import Forbidden, ValidationFailed
from engine.models import AuditEvent, District, HumanTask
from tests.factories import deploy_dir, make_people


@pytest.fixture
def world(sessions, clock):
    people = make_people(sessions, clock)
    deploy_dir(sessions, clock)
    return people


def _district(s, code):
    return s.scalar(select(District.id).where(District.code == code))


def _fill(sessions, clock, actor, n, **overrides):
    """``n`` open tasks on one real instance, with due dates spread and some undated."""
    with unit_of_work(sessions) as s:
        view = instances.start_process(s, process_key="test_intake", actor=actor, clock=clock)
        kostanay = _district(s, "kostanay_city")
        for i in range(n):
            fields = {
                "instance_id": view.id,
                "task_guid": str(uuid.uuid4()),
                "bpmn_id": "register",
                "name": f"Task {i}",
                "process_key": "test_intake",
                "role": "specialist",
                "district_id": kostanay,
                "status": "ready",
                "created_at": clock.now(),
                # Every 7th task has no due date; others repeat due dates to test ties.
                "due_at": None if i % 7 == 0 else clock.now() + timedelta(hours=(i * 5) % 40),
                "case_number": f"K-{i}",
                "child_name": f"Child{i}",
            }
            fields.update(overrides)
            s.add(HumanTask(**fields))
    return view


def _all_pages(sessions, clock, actor, query, limit):
    seen, cursor = [], None
    while True:
        with unit_of_work(sessions) as s:
            page = worklist.search_inbox(
                s, actor=actor, now=clock.now(), query=query, cursor=cursor, limit=limit
            )
        seen.extend(item.task.id for item in page.items)
        if page.next_cursor is None:
            return seen
        cursor = page.next_cursor


@pytest.mark.parametrize("sort", ["due", "-due"])
def test_keyset_pages_cover_every_task_once_in_due_order(world, sessions, clock, sort):
    _fill(sessions, clock, world["aigul"], 60)
    query = worklist.InboxQuery(sort=sort)
    seen = _all_pages(sessions, clock, world["erzhan"], query, limit=7)
    with unit_of_work(sessions) as s:
        rows = s.scalars(select(HumanTask).where(HumanTask.status == "ready")).all()
    dated = sorted((r for r in rows if r.due_at), key=lambda r: (r.due_at, r.id))
    if sort == "-due":
        dated.reverse()
    undated = sorted((r for r in rows if r.due_at is None), key=lambda r: r.id)
    if sort == "-due":
        undated.reverse()
    assert seen == [r.id for r in dated + undated]
    assert len(seen) == len(set(seen)) == 61


def test_queues_respect_role_district_and_claims(world, sessions, clock):
    _fill(sessions, clock, world["aigul"], 5)
    with unit_of_work(sessions) as s:
        first = s.scalars(select(HumanTask).order_by(HumanTask.id)).first()
        tasks.claim_task(s, task_id=first.id, actor=world["aigul"], clock=clock)
    with unit_of_work(sessions) as s:
        now = clock.now()

        def ids(actor, **kw):
            page = worklist.search_inbox(s, actor=actor, now=now, query=worklist.InboxQuery(**kw))
            return {i.task.id for i in page.items}

        assert first.id in ids(world["aigul"], scope="mine")
        assert first.id not in ids(world["erzhan"])  # claimed by someone else
        assert len(ids(world["erzhan"])) == 5
        assert ids(world["rudny_spec"]) == set()  # another district
        assert ids(world["maria"]) == set()  # another role
        assert len(ids(world["head"], scope="everyone")) == 6
        with pytest.raises(Forbidden):
            ids(world["aigul"], scope="everyone")


def test_search_and_filters(world, sessions, clock):
    _fill(sessions, clock, world["aigul"], 20)
    with unit_of_work(sessions) as s:
        s.execute(
            text(
                "UPDATE human_task SET child_iin = '190515600016', child_name = 'Аружан' "
                "WHERE case_number = 'K-3'"
            )
        )
    with unit_of_work(sessions) as s:
        now = clock.now()

        def found(**kw):
            page = worklist.search_inbox(
                s, actor=world["erzhan"], now=now, query=worklist.InboxQuery(**kw)
            )
            return page.items

        [by_iin] = found(search="190515600016")
        assert by_iin.case_number == "K-3" and by_iin.child_iin_masked == "190515*****6"
        assert [i.case_number for i in found(search="K-3")] == ["K-3"]
        assert [i.case_number for i in found(search="аружан")] == ["K-3"]
        assert {i.case_number for i in found(search="Child1")} == {"K-1"} | {
            f"K-{i}" for i in range(10, 20)
        }
        assert found(search="50%") == ()  # wildcards are not wildcards
        assert found(overdue=True) == ()  # due dates are in the future ...
        clock.advance(timedelta(hours=20))
        now = clock.now()
        assert found(overdue=True) and all(i.overdue for i in found(overdue=True))
        assert found(process_key="nothing") == ()
        assert len(found(district_id=_district(s, "rudny_city"))) == 0
    with pytest.raises(ValidationFailed):
        with unit_of_work(sessions) as s:
            worklist.search_inbox(s, actor=world["erzhan"], now=now, cursor="garbage")


def test_a_deputy_sees_and_does_the_absent_users_work_and_the_audit_names_both(
    world, sessions, clock
):
    _fill(sessions, clock, world["aigul"], 2)
    with unit_of_work(sessions) as s:
        claimed = s.scalars(select(HumanTask).order_by(HumanTask.id)).first()
        tasks.claim_task(s, task_id=claimed.id, actor=world["aigul"], clock=clock)
        today = absence.local_day(clock.now())
        absence.record_absence(
            s,
            actor=world["aigul"],
            username="aigul",
            deputy="analyst",  # an analyst stands in for a specialist
            starts_on=today,
            ends_on=today + timedelta(days=3),
            now=clock.now(),
        )
    with unit_of_work(sessions) as s:
        page = worklist.search_inbox(s, actor=world["analyst"], now=clock.now())
        items = {i.task.id: i for i in page.items}
        assert claimed.id in items and items[claimed.id].on_behalf_of == "aigul"
        assert len(items) == 3  # aigul's claimed task and her queue
        absence.take_over_task(s, task_id=claimed.id, deputy=world["analyst"], clock=clock)
    with unit_of_work(sessions) as s:
        [deputy_actor] = absence.principals(s, deputy=world["analyst"], now=clock.now())
        assert deputy_actor.on_behalf_of == "aigul" and "specialist" in deputy_actor.roles
        tasks.complete_task(
            s,
            task_id=claimed.id,
            actor=deputy_actor,
            data={"child_name": "A", "child_age": 3, "child_iin": "190515600016"},
            clock=clock,
        )
    with unit_of_work(sessions) as s:
        events = s.scalars(
            select(AuditEvent).where(AuditEvent.task_guid == claimed.task_guid)
        ).all()
        acted = {e.action: (e.actor, e.on_behalf_of) for e in events}
        assert acted["task.taken_over"] == ("analyst", "aigul")
        assert acted["task.completed"] == ("analyst", "aigul")
    # After the absence, the deputy sees nothing of aigul's any more.
    clock.advance(timedelta(days=5))
    with unit_of_work(sessions) as s:
        assert absence.principals(s, deputy=world["analyst"], now=clock.now()) == []
        assert worklist.search_inbox(s, actor=world["analyst"], now=clock.now()).items == ()


def test_absence_rules(world, sessions, clock):
    with unit_of_work(sessions) as s:
        with pytest.raises(Forbidden):
            absence.record_absence(
                s,
                actor=world["erzhan"],
                username="aigul",
                deputy="erzhan",
                starts_on=date(2026, 3, 2),
                ends_on=date(2026, 3, 3),
                now=clock.now(),
            )
        with pytest.raises(ValidationFailed) as refused:
            absence.record_absence(
                s,
                actor=world["aigul"],
                username="aigul",
                deputy="aigul",
                starts_on=date(2026, 3, 5),
                ends_on=date(2026, 3, 3),
                now=clock.now(),
            )
        assert {e.field for e in refused.value.errors} == {"deputy", "ends_on"}
        # A lead records an absence for someone else.
        view = absence.record_absence(
            s,
            actor=world["head"],
            username="aigul",
            deputy="erzhan",
            starts_on=date(2026, 3, 2),
            ends_on=date(2026, 3, 2),
            now=clock.now(),
        )
        assert view.covers(date(2026, 3, 2)) and not view.covers(date(2026, 3, 3))
    _fill(sessions, clock, world["aigul"], 1)
    with unit_of_work(sessions) as s:
        task = s.scalars(select(HumanTask).order_by(HumanTask.id)).first()
        tasks.claim_task(s, task_id=task.id, actor=world["aigul"], clock=clock)
        # erzhan stands in for aigul today; maria does not.
        with pytest.raises(Forbidden):
            absence.take_over_task(s, task_id=task.id, deputy=world["maria"], clock=clock)
        assert (
            absence.take_over_task(
                s, task_id=task.id, deputy=world["erzhan"], clock=clock
            ).assignee_id
            == world["erzhan"].user_id
        )


def test_saved_filters_private_and_shared(world, sessions, clock):
    with unit_of_work(sessions) as s:
        worklist.save_filter(
            s,
            actor=world["aigul"],
            name="Mine overdue",
            params={"overdue": "1"},
            now=clock.now(),
        )
        worklist.save_filter(
            s,
            actor=world["aigul"],
            name="Team",
            params={"q": "K"},
            now=clock.now(),
            shared_role="specialist",
        )
        with pytest.raises(Forbidden):
            worklist.save_filter(
                s,
                actor=world["aigul"],
                name="x",
                params={},
                now=clock.now(),
                shared_role="lawyer",
            )
    with unit_of_work(sessions) as s:
        assert [f.name for f in worklist.list_filters(s, actor=world["aigul"])] == [
            "Mine overdue",
            "Team",
        ]
        shared = worklist.list_filters(s, actor=world["erzhan"])
        assert [(f.name, f.mine) for f in shared] == [("Team", False)]
        assert worklist.list_filters(s, actor=world["maria"]) == []
        with pytest.raises(Forbidden):
            worklist.delete_filter(s, actor=world["erzhan"], filter_id=shared[0].id)


def _plan(conn, statement, parameters):
    """SQLite's query plan of a statement, its steps on one line."""
    plan = " | ".join(
        row[-1] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
    )
    print(plan)
    return plan


def test_every_inbox_query_walks_an_index_in_order(sqlite_sessions, clock):
    """No page reads the whole table or sorts it: each query is one index range scan."""
    from sqlalchemy import event

    world = make_people(sqlite_sessions, clock)
    deploy_dir(sqlite_sessions, clock)
    _fill(sqlite_sessions, clock, world["aigul"], 30)
    statements = []
    engine = sqlite_sessions.kw["bind"]

    def capture(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT") and "human_task" in statement:
            statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        with unit_of_work(sqlite_sessions) as s:
            for actor, query in (
                (world["erzhan"], worklist.InboxQuery()),
                (world["erzhan"], worklist.InboxQuery(sort="-due", overdue=True)),
                (world["head"], worklist.InboxQuery(scope="everyone")),
                (world["erzhan"], worklist.InboxQuery(scope="mine")),
                # Regional staff (no district): the role's queue across districts.
                (world["maria"], worklist.InboxQuery(scope="queue")),
                # Searches: by IIN, by case number or a name's prefix.
                (world["erzhan"], worklist.InboxQuery(search="860517400016")),
                (world["erzhan"], worklist.InboxQuery(search="Child1")),
            ):
                page = worklist.search_inbox(s, actor=actor, now=clock.now(), query=query, limit=5)
                worklist.search_inbox(
                    s, actor=actor, now=clock.now(), query=query, cursor=page.next_cursor, limit=5
                )
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    # A search's queue pages walk only its matches (``id IN (…)``, at most MAX_MATCHES).
    scans = [st for st in statements if "ORDER BY" in st[0] and "human_task.id IN" not in st[0]]
    assert len(scans) >= 8
    searches = [st for st in statements if "ORDER BY" not in st[0] and "LIMIT" in st[0]]
    assert len(searches) >= 2
    with engine.connect() as conn:
        for statement, parameters in searches:
            plan = _plan(conn, statement, parameters)
            for column in ("child_iin", "case_number", "child_name"):
                if f"human_task.{column} " in statement:
                    assert f"INDEX ix_human_task_{column} " in plan, (statement, plan)
            assert "SCAN human_task" not in plan, (statement, plan)
    with engine.connect() as conn:
        for statement, parameters in scans:
            plan = _plan(conn, statement, parameters)
            assert "USING COVERING INDEX ix_open_task_" in plan, (statement, plan)
            assert "SCAN human_task" not in plan, (statement, plan)
            assert "TEMP B-TREE" not in plan, statement + " :: " + plan
