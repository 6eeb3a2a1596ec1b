"""Shared fixtures: real databases (a SQLite file and PostgreSQL), a clock, people."""

from __future__ import annotations

import os
import shutil
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, make_url, text

from engine.clock import FixedClock
from engine.db import make_engine, make_sessionmaker
from engine.migrate import upgrade
from engine.models import Base

PG_ADMIN_URL = os.environ.get(
    "QORGAU_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    """A migrated SQLite file; each test gets a copy (faster than migrating every time)."""
    path = tmp_path_factory.mktemp("template") / "qorgau.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def pg_url():
    """A fresh, migrated PostgreSQL database for this test session, dropped at the end."""
    name = f"qorgau_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _sqlite_url(tmp_path, template) -> str:
    target = tmp_path / "qorgau.sqlite3"
    shutil.copy(template, target)
    return f"sqlite:///{target}"


def _clean_pg(url: str) -> str:
    engine = create_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path, sqlite_template):
    """Each test that uses it runs twice: on a SQLite file and on PostgreSQL."""
    if request.param == "sqlite":
        return _sqlite_url(tmp_path, sqlite_template)
    return _clean_pg(request.getfixturevalue("pg_url"))


@pytest.fixture
def sqlite_url(tmp_path, sqlite_template):
    return _sqlite_url(tmp_path, sqlite_template)


@pytest.fixture
def postgres_url(pg_url):
    return _clean_pg(pg_url)


@pytest.fixture
def db_engine(db_url):
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(db_engine):
    return make_sessionmaker(db_engine)


@pytest.fixture
def sqlite_sessions(sqlite_url):
    engine = make_engine(sqlite_url)
    yield make_sessionmaker(engine)
    engine.dispose()


@pytest.fixture
def clock():
    """Monday 2 March 2026, 10:00 in Kostanay."""
    return FixedClock(datetime(2026, 3, 2, 10, 0, tzinfo=ZoneInfo("Asia/Qostanay")))
