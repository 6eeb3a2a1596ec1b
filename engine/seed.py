"""The Department's reference data and the demo users that ``qorgau init`` creates."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.identity import ROLES, create_user, ensure_district, ensure_roles
from engine.models import User

# Kostanay region: cities of regional significance and districts (code, kk, ru, en).
DISTRICTS = [
    ("kostanay_city", "Қостанай қаласы", "город Костанай", "Kostanay city"),
    ("rudny_city", "Рудный қаласы", "город Рудный", "Rudny city"),
    ("lisakovsk_city", "Лисаков қаласы", "город Лисаковск", "Lisakovsk city"),
    ("arkalyk_city", "Арқалық қаласы", "город Аркалык", "Arkalyk city"),
    ("kostanay_district", "Қостанай ауданы", "Костанайский район", "Kostanay district"),
    ("zhitikara_district", "Жітіқара ауданы", "Житикаринский район", "Zhitikara district"),
]

# One demo user per role; the README lists them. Never used outside a demo database.
DEMO_USERS = [
    ("specialist", "Айгүл Сейітова", "specialist", "kostanay_city"),
    ("specialist2", "Ержан Омаров", "specialist", "kostanay_city"),
    ("lawyer", "Мария Иваненко", "lawyer", None),
    ("psychologist", "Динара Жұмабаева", "psychologist", "kostanay_city"),
    ("head", "Бауыржан Қасымов", "head", None),
    ("deputy", "Гүлнар Әлиева", "deputy_head", None),
    ("analyst", "Тимур Ахметов", "analyst", None),
    ("admin", "Сергей Петров", "admin", None),
    ("auditor", "Алия Нұрланова", "auditor", None),
]
DEMO_PASSWORD = "qorgau-demo"  # noqa: S105 - the published password of the demo users


def seed_reference_data(session: Session) -> None:
    ensure_roles(session)
    for code, kk, ru, en in DISTRICTS:
        ensure_district(session, code, kk, ru, en)


def seed_demo_users(session: Session, now: datetime) -> list[str]:
    """Create the demo users that do not exist yet; returns their names."""
    created = []
    existing = set(session.scalars(select(User.username)))
    for username, full_name, role, district in DEMO_USERS:
        if username in existing:
            continue
        assert role in ROLES
        create_user(
            session,
            username=username,
            password=DEMO_PASSWORD,
            full_name=full_name,
            roles=[role],
            district_code=district,
            now=now,
        )
        created.append(username)
    return created
