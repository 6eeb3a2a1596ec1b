"""The Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

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


def test_partial_indexes_are_partial_in_the_migrated_schema(db_url):
    """The comparison above does not look at index conditions: check them here, so that an
    index the models declare partial (open tasks, present values) is so in the database."""
    engine = make_engine(db_url)
    dialect = engine.dialect.name
    reflected = {}
    inspector = inspect(engine)
    for table in Base.metadata.sorted_tables:
        for found in inspector.get_indexes(table.name):
            where = found.get("dialect_options", {}).get(f"{dialect}_where")
            reflected[found["name"]] = None if where is None else str(where)
    engine.dispose()
    declared = {
        index.name: index.dialect_options[dialect]["where"]
        for table in Base.metadata.sorted_tables
        for index in table.indexes
    }
    assert {n for n, w in declared.items() if w is not None} == {
        n for n, w in reflected.items() if w is not None
    }
    assert "ix_open_task_due" in reflected and "ix_human_task_child_iin" in reflected
    for name, where in declared.items():
        if where is not None:
            # The same condition, as the database spells it back.
            words = str(where).replace("'", " ").split()
            assert all(w.strip("()") in reflected[name] for w in words if w.isidentifier()), (
                name,
                reflected[name],
            )
