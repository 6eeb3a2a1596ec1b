"""Template helpers: local times, masked IINs, role and district names, navigation."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask, request

from engine.iin import mask_iin

LOCAL_ZONE = ZoneInfo("Asia/Qostanay")


def local_dt(value: datetime | None, fmt: str = "%d.%m.%Y %H:%M") -> str:
    """A stored UTC time as Kostanay local time (the Department's legal terms run there)."""
    if value is None:
        return "—"
    return value.astimezone(LOCAL_ZONE).strftime(fmt)


def local_date(value: datetime | date | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, datetime):
        value = value.astimezone(LOCAL_ZONE).date()
    return value.strftime("%d.%m.%Y")


def masked(value: str | None) -> str:
    return mask_iin(value) if value else "—"


def _nav_active(prefix: str) -> str:
    return "page" if request.path.startswith(prefix) else "false"


def init_app(app: Flask) -> None:
    app.jinja_env.filters.update(local_dt=local_dt, local_date=local_date, mask_iin=masked)

    def has_endpoint(name: str) -> bool:
        """Whether an area's page is installed (the header links only to those that are)."""
        return name in app.view_functions

    app.jinja_env.globals.update(nav_active=_nav_active, has_endpoint=has_endpoint)


def role_names() -> dict[str, Any]:
    """Role code -> name in the current language (for labels and filters)."""
    from engine.identity import ROLES
    from web.i18n import current_language

    index = {"kk": 0, "ru": 1, "en": 2}[current_language()]
    return {code: names[index] for code, names in ROLES.items()}
