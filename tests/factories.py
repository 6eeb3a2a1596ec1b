"""Builders for tests: people, deployed test processes, IINs."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from engine import definitions
from engine.clock import Clock
from engine.db import unit_of_work
from engine.identity import SYSTEM, Actor, actor_for, create_user
from engine.iin import check_digit
from engine.seed import seed_reference_data
from engine.views import ProcessVersionView

DATA = Path(__file__).parent / "data"
ENGINE_DATA = DATA / "engine"

# username: (roles, district)
PEOPLE = {
    "aigul": (["specialist"], "kostanay_city"),
    "erzhan": (["specialist"], "kostanay_city"),
    "rudny_spec": (["specialist"], "rudny_city"),
    "maria": (["lawyer"], None),
    "head": (["head"], None),
    "admin": (["admin"], None),
    "analyst": (["analyst"], None),
}


def make_people(
    sessions: sessionmaker[Session],
    clock: Clock,
    people: dict[str, tuple[list[str], str | None]] = PEOPLE,
) -> dict[str, Actor]:
    """Seed the reference data and create ``people`` (username: (roles, district))."""
    actors = {}
    with unit_of_work(sessions) as session:
        seed_reference_data(session)
        for username, (roles, district) in people.items():
            user = create_user(
                session,
                username=username,
                password="correct horse battery",  # noqa: S106
                full_name=username.title(),
                roles=roles,
                district_code=district,
                now=clock.now(),
            )
            actors[username] = actor_for(user)
    return actors


def deploy_dir(
    sessions: sessionmaker[Session], clock: Clock, path: Path = ENGINE_DATA, *names: str
) -> list[ProcessVersionView]:
    paths = [path / n for n in names] if names else [path]
    if names and (path / "deadlines.yaml").exists():
        paths.append(path / "deadlines.yaml")
    bundle = definitions.read_paths(paths, forms_dir=path / "forms")
    with unit_of_work(sessions) as session:
        return definitions.deploy(session, bundle, actor=SYSTEM, now=clock.now())


def make_iin(born: date, sex: str = "female") -> str:
    """A valid IIN for a birth date and sex (the first serial that has a check digit)."""
    century = {18: 1, 19: 3, 20: 5}[born.year // 100] + (1 if sex == "female" else 0)
    for serial in range(1, 10000):
        first = f"{born:%y%m%d}{century}{serial:04d}"
        digit = check_digit(first)
        if digit is not None:
            return f"{first}{digit}"
    raise AssertionError("no serial gives a check digit")  # pragma: no cover


VALID_CHILD = {"child_name": "Аружан", "child_age": 6, "child_iin": "190515600016"}
