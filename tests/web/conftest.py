"""Web fixtures: an app on a real database, people of every role, a signed-in client."""

from __future__ import annotations

import re
import shutil
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from engine.clock import FixedClock
from engine.db import make_engine, make_sessionmaker, unit_of_work
from engine.identity import actor_for, create_user
from engine.models import User
from tests.factories import deploy_dir, make_people
from web import create_app

PASSWORD = "correct horse battery"  # noqa: S105 - the test users' password
# One user per role for the route × role table (the factory's people plus three more).
ROLE_USERS = {
    "specialist": "aigul",
    "lawyer": "maria",
    "psychologist": "dina",
    "head": "head",
    "deputy_head": "deputy",
    "analyst": "analyst",
    "admin": "admin",
    "auditor": "auditor",
}
EXTRA_PEOPLE = {
    "dina": (["psychologist"], "kostanay_city"),
    "deputy": (["deputy_head"], None),
    "auditor": (["auditor"], None),
}

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def make_app(url, clock, tmp_path, **extra):
    config = {
        "DATABASE_URL": url,
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "CLOCK": clock,
        "I18N_DIR": str(tmp_path / "i18n"),
    }
    config.update(extra)
    return create_app(config)


def populate(sessions, clock):
    """People of every role and the test processes deployed."""
    make_people(sessions, clock)
    with unit_of_work(sessions) as session:
        for username, (roles, district) in EXTRA_PEOPLE.items():
            user = create_user(
                session,
                username=username,
                password=PASSWORD,
                full_name=username.title(),
                roles=roles,
                district_code=district,
                language="en",
                now=clock.now(),
            )
            assert user.id
    deploy_dir(sessions, clock)


@pytest.fixture(scope="session")
def web_template(tmp_path_factory, sqlite_template):
    """A SQLite file with the people and processes, made once: password hashing is slow on
    purpose, so each test copies the file instead of hashing ten passwords again."""
    path = tmp_path_factory.mktemp("web") / "qorgau.sqlite3"
    shutil.copy(sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}")
    populate(
        make_sessionmaker(engine),
        FixedClock(datetime(2026, 3, 2, 10, 0, tzinfo=ZoneInfo("Asia/Qostanay"))),
    )
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture
def web_url(tmp_path, web_template):
    target = tmp_path / "qorgau.sqlite3"
    shutil.copy(web_template, target)
    return f"sqlite:///{target}"


@pytest.fixture
def app(web_url, clock, tmp_path):
    app = make_app(web_url, clock, tmp_path)
    yield app
    app.extensions["qorgau.engine"].dispose()


@pytest.fixture
def sessions(app):
    return app.extensions["qorgau.sessions"]


def actors_of(sessions):
    with unit_of_work(sessions) as session:
        return {u.username: actor_for(u) for u in session.scalars(select(User))}


@pytest.fixture
def people(sessions):
    """username -> Actor of everyone in the database."""
    return actors_of(sessions)


@pytest.fixture
def world(people):
    """People and the test processes (both are in the template)."""
    return people


class Browser:
    """The Flask test client with the CSRF token a page gave it."""

    def __init__(self, client):
        self.client = client
        self.token = None

    def get(self, path, **kw):
        response = self.client.get(path, **kw)
        found = CSRF.search(response.get_data(as_text=True))
        if found:
            self.token = found.group(1)
        return response

    def post(self, path, data=None, *, csrf=True, **kw):
        data = dict(data or {})
        if csrf:
            if self.token is None:
                self.get("/sign-in")
            data.setdefault("csrf_token", self.token)
        response = self.client.post(path, data=data, **kw)
        found = CSRF.search(response.get_data(as_text=True))
        if found:
            self.token = found.group(1)
        return response

    def sign_in(self, username, password=PASSWORD):
        self.get("/sign-in")
        response = self.post("/sign-in", {"username": username, "password": password})
        if response.status_code == 302:
            self.token = None  # the session was renewed, and its token with it
            self.get("/absence")
        return response


@pytest.fixture
def browser(app):
    return Browser(app.test_client())


@pytest.fixture
def signed_in(app):
    """``signed_in("aigul")`` → a Browser signed in as that user."""

    def make(username):
        b = Browser(app.test_client())
        response = b.sign_in(username)
        assert response.status_code == 302, response.get_data(as_text=True)
        return b

    return make


@pytest.fixture(params=["sqlite", "postgresql"])
def any_app(request, clock, tmp_path):
    """The app on SQLite and on PostgreSQL, populated (for the flows that must match)."""
    if request.param == "sqlite":
        url = request.getfixturevalue("web_url")
    else:
        url = request.getfixturevalue("postgres_url")
        engine = make_engine(url)
        populate(make_sessionmaker(engine), clock)
        engine.dispose()
    app = make_app(url, clock, tmp_path)
    yield app
    app.extensions["qorgau.engine"].dispose()


def sign_in_to(app, username):
    b = Browser(app.test_client())
    assert b.sign_in(username).status_code == 302
    return b
