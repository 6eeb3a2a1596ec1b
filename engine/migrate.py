"""Bring a database to the newest schema with the Alembic scripts in ``migrations/``."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from engine.config import MIGRATIONS_DIR


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(engine: Engine) -> None:
    """Migrate ``engine``'s database to the head revision (idempotent)."""
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "heads")
