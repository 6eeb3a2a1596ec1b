"""Fixtures and helpers for the API and case-file tests: an app on a real database, people
with personal API tokens, the test processes and the case-intake process deployed.

Named apart from tests/web/conftest.py's fixtures: these run on SQLite and PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import tokens
from engine.db import make_engine, make_sessionmaker, unit_of_work
from engine.identity import create_user
from tests.factories import ENGINE_DATA, deploy_dir, make_people
from web import create_app

BENCH_DATA = Path(__file__).resolve().parents[2] / "bench" / "data"

# A valid IIN: 15 May 2019, a girl (see tests/factories.py).
GIRL_IIN = "190515600016"


@pytest.fixture
def db_sessions(db_url):
    """Sessions on the test database (SQLite, then PostgreSQL)."""
    engine = make_engine(db_url)
    yield make_sessionmaker(engine)
    engine.dispose()


@pytest.fixture
def api_world(db_sessions, clock):
    """The test people (tests/factories.py) plus an auditor and a psychologist, each with a
    personal token; the engine's test processes and the case-intake process deployed."""
    sessions = db_sessions
    people = make_people(sessions, clock)
    with unit_of_work(sessions) as s:
        for username, role, district in (
            ("auditor", "auditor", None),
            ("dina", "psychologist", "rudny_city"),
        ):
            create_user(
                s,
                username=username,
                password="correct horse battery",  # noqa: S106
                full_name=username.title(),
                roles=[role],
                district_code=district,
                now=clock.now(),
            )
        secrets = {
            name: tokens.create_token(s, username=name, name="tests", now=clock.now()).secret
            for name in [*people, "auditor", "dina"]
        }
    deploy_dir(sessions, clock, ENGINE_DATA, "test_intake.bpmn")
    deploy_dir(sessions, clock, BENCH_DATA, "case_intake.bpmn")
    return secrets


@pytest.fixture
def api_app(db_url, clock, api_world, tmp_path):
    app = create_app(
        {
            "DATABASE_URL": db_url,
            "SECRET_KEY": "test-secret-key-not-for-production",
            "TESTING": True,
            "CLOCK": clock,
            "I18N_DIR": str(tmp_path / "i18n"),
        }
    )
    yield app
    app.extensions["qorgau.engine"].dispose()


@pytest.fixture
def api_client(api_app):
    return api_app.test_client()


class Api:
    """The JSON API as one user (by token) sees it."""

    def __init__(self, client, secret: str | None) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {secret}"} if secret else {}

    def get(self, path: str):
        return self.client.get(f"/api/v1{path}", headers=self.headers)

    def post(self, path: str, body=None):
        return self.client.post(f"/api/v1{path}", json=body or {}, headers=self.headers)


@pytest.fixture
def api(api_client, api_world):
    """``api("aigul")`` is the API as aigul; ``api(None)`` is anonymous."""
    return lambda username: Api(api_client, api_world[username] if username else None)
