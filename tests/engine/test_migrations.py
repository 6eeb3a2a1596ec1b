"""The Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from engine.db import make_engine
from engine.migrate import upgrade
from engine.models import Base


def test_models_and_migrations_agree(db_url):
    engine = make_engine(db_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []


def test_upgrade_is_idempotent(sqlite_url):
    engine = make_engine(sqlite_url)
    upgrade(engine)
    upgrade(engine)
    engine.dispose()
