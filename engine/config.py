"""Where Qorgau keeps its data, from the environment."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("QORGAU_VAR_DIR", PROJECT_ROOT / "var"))
BPMN_DIR = PROJECT_ROOT / "bpmn"
FORMS_DIR = PROJECT_ROOT / "forms"
MIGRATIONS_DIR = PROJECT_ROOT / "migrations"


def database_url() -> str:
    """``QORGAU_DATABASE_URL`` (any SQLAlchemy URL), or a SQLite file under ``var/``."""
    url = os.environ.get("QORGAU_DATABASE_URL")
    if url:
        return url
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{VAR_DIR / 'qorgau.sqlite3'}"
