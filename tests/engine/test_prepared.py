"""Prepared statements give the same values SQLAlchemy would, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import bindparam, insert, select, tuple_, update

from engine.db import unit_of_work
from engine.models import AuditEvent
from engine.prepared import Prepared

EVENTS = AuditEvent.__table__
COLUMNS = tuple(c.name for c in EVENTS.columns if c.name != "id")


def _row(seq: int, at: datetime, detail: dict) -> dict:
    return {
        "chain": "test:prepared",
        "seq": seq,
        "at": at,
        "actor_id": None,
        "actor": "tester",
        "on_behalf_of": None,
        "action": "probe",
        "instance_id": None,
        "task_guid": None,
        "detail": detail,
        "prev_hash": "0" * 64,
        "hash": f"{seq:064d}",
    }


INSERT = Prepared(insert(EVENTS).returning(EVENTS.c.id, EVENTS.c.at), COLUMNS)
INSERT_MANY = Prepared(insert(EVENTS), COLUMNS)
BY_CHAIN = Prepared(
    select(EVENTS)
    .where(EVENTS.c.chain == bindparam("chain"), EVENTS.c.action == "probe")
    .order_by(EVENTS.c.seq)
)
MOVE = Prepared(
    update(EVENTS)
    .where(EVENTS.c.chain == bindparam("_chain"), EVENTS.c.seq == bindparam("_seq"))
    .values(action=bindparam("_action"))
)


def test_values_round_trip_as_through_sqlalchemy(sessions):
    # An aware time in another zone comes back as the same instant in UTC, and JSON with
    # non-ASCII text and nesting comes back equal.
    almaty = timezone(timedelta(hours=5))
    at = datetime(2026, 3, 20, 9, 30, 15, 123456, tzinfo=almaty)
    detail = {"name": "Әлия Серікқызы", "data": {"values": [1, 2.5, None, True]}}
    with unit_of_work(sessions) as session:
        returned = INSERT.returning(session.connection(), _row(1, at, detail))
        INSERT_MANY.execute_many(session.connection(), [_row(2, at, {}), _row(3, at, {"n": 3})])
    assert returned["at"] == at and returned["at"].tzinfo == UTC
    with unit_of_work(sessions) as session:
        rows = BY_CHAIN.rows(session.connection(), {"chain": "test:prepared"})
        orm = session.scalars(
            select(AuditEvent).where(AuditEvent.chain == "test:prepared").order_by(AuditEvent.seq)
        ).all()
    assert [r["seq"] for r in rows] == [1, 2, 3]
    assert rows[0]["id"] == returned["id"]
    assert rows[0]["detail"] == detail and rows[2]["detail"] == {"n": 3}
    # Exactly what the ORM reads for the same rows.
    for row, loaded in zip(rows, orm, strict=True):
        assert row["at"] == loaded.at and row["at"].tzinfo == loaded.at.tzinfo == UTC
        assert row["detail"] == loaded.detail


def test_a_change_reports_the_rows_it_matched(sessions):
    at = datetime(2026, 1, 5, tzinfo=UTC)
    with unit_of_work(sessions) as session:
        INSERT_MANY.execute_many(session.connection(), [_row(1, at, {})])
        moved = MOVE.execute(
            session.connection(), {"_chain": "test:prepared", "_seq": 1, "_action": "moved"}
        )
        missed = MOVE.execute(
            session.connection(), {"_chain": "test:prepared", "_seq": 9, "_action": "moved"}
        )
    assert (moved, missed) == (1, 0)
    with unit_of_work(sessions) as session:
        # The literal "probe" in the query is bound too: the moved row no longer matches.
        assert BY_CHAIN.rows(session.connection(), {"chain": "test:prepared"}) == []


def test_a_missing_value_is_named(sessions):
    with unit_of_work(sessions) as session, pytest.raises(KeyError, match="hash"):
        row = _row(1, datetime(2026, 1, 5, tzinfo=UTC), {})
        del row["hash"]
        INSERT_MANY.execute_many(session.connection(), [row])


def test_expanding_parameters_are_refused(sessions):
    query = Prepared(select(EVENTS.c.id).where(EVENTS.c.seq.in_(bindparam("seqs", expanding=True))))
    with unit_of_work(sessions) as session, pytest.raises(ValueError, match="expanding"):
        query.rows(session.connection(), {"seqs": [1, 2]})
    # A tuple IN with literal values is expanding as well.
    pairs = Prepared(select(EVENTS.c.id).where(tuple_(EVENTS.c.seq).in_([(1,)])))
    with unit_of_work(sessions) as session, pytest.raises(ValueError, match="expanding"):
        pairs.rows(session.connection(), {})


def test_utc_datetimes_bind_to_sqlite_as_sqlalchemy_formats_them():
    # UTCDateTime binds in one step on SQLite; the text must stay what SQLAlchemy's DATETIME
    # writes, or stored values would stop comparing and sorting with older rows.
    from sqlalchemy import DateTime
    from sqlalchemy.dialects import sqlite

    from engine.models.base import UTCDateTime

    dialect = sqlite.dialect()
    ours = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    theirs = DateTime().dialect_impl(dialect).bind_processor(dialect)
    zones = [UTC, timezone(timedelta(hours=5)), timezone(timedelta(hours=-3, minutes=-30))]
    for year, micro, zone in [
        (y, m, z) for y in (2, 999, 2026, 9998) for m in (0, 7, 999999) for z in zones
    ]:
        moment = datetime(year, 3, 1, 23, 59, 58, micro, tzinfo=zone)
        assert ours(moment) == theirs(UTCDateTime().process_bind_param(moment, dialect))
    assert ours(None) is None
    with pytest.raises(ValueError, match="naive"):
        ours(datetime(2026, 1, 1))
