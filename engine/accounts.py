"""Administration of people and places: users (create, roles, district, language,
deactivate) and districts. Only administrators; every change goes to the system audit chain.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import audit, identity
from engine.errors import FieldError, Forbidden, ValidationFailed
from engine.models import District, User


@dataclass(frozen=True)
class UserView:
    id: int
    username: str
    full_name: str
    roles: tuple[str, ...]
    district_code: str | None
    language: str
    is_active: bool


def _require_admin(actor: identity.Actor) -> None:
    if not (actor.is_system or "admin" in actor.roles):
        raise Forbidden(f"{actor.username} is not an administrator")


def _view(session: Session, user: User) -> UserView:
    district = session.get(District, user.district_id) if user.district_id else None
    return UserView(
        id=user.id,
        username=user.username,
        full_name=user.full_name,
        roles=tuple(sorted(r.role_code for r in user.roles)),
        district_code=district.code if district else None,
        language=user.language,
        is_active=user.is_active,
    )


def list_users(session: Session, *, actor: identity.Actor) -> list[UserView]:
    _require_admin(actor)
    return [_view(session, u) for u in identity.list_users(session)]


def get_user(session: Session, *, actor: identity.Actor, username: str) -> UserView:
    _require_admin(actor)
    return _view(session, identity.get_user(session, username))


def add_user(
    session: Session,
    *,
    actor: identity.Actor,
    username: str,
    full_name: str,
    password: str,
    roles: list[str],
    district_code: str | None,
    language: str,
    now: datetime,
) -> UserView:
    _require_admin(actor)
    if not full_name.strip():
        raise ValidationFailed("the user cannot be created", [FieldError("full_name", "required")])
    if not roles:
        raise ValidationFailed("the user cannot be created", [FieldError("roles", "required")])
    user = identity.create_user(
        session,
        username=username,
        password=password,
        full_name=full_name.strip(),
        roles=roles,
        district_code=district_code or None,
        language=language,
        now=now,
    )
    audit.append_system_event(
        session, actor, "user.created", {"username": username, "roles": sorted(roles)}, now
    )
    return _view(session, user)


def update_user(
    session: Session,
    *,
    actor: identity.Actor,
    username: str,
    roles: list[str],
    district_code: str | None,
    language: str,
    is_active: bool,
    now: datetime,
) -> UserView:
    """Replace a user's roles, district, language and active flag."""
    _require_admin(actor)
    user = identity.get_user(session, username)
    errors = []
    if not roles:
        errors.append(FieldError("roles", "required"))
    if language not in ("kk", "ru", "en"):
        errors.append(FieldError("language", "one of kk, ru, en"))
    district_id = None
    if district_code:
        district_id = session.scalar(select(District.id).where(District.code == district_code))
        if district_id is None:
            errors.append(FieldError("district", f"no district {district_code!r}"))
    if user.id == actor.user_id and not is_active:
        errors.append(FieldError("is_active", "you cannot deactivate yourself"))
    if errors:
        raise ValidationFailed("the user was not changed", errors)
    before = _view(session, user)
    identity.set_roles(session, username=username, roles=roles)
    user.district_id, user.language, user.is_active = district_id, language, is_active
    session.flush()
    after = _view(session, user)
    audit.append_system_event(
        session,
        actor,
        "user.updated",
        {
            "username": username,
            "before": {
                "roles": list(before.roles),
                "district": before.district_code,
                "language": before.language,
                "active": before.is_active,
            },
            "after": {
                "roles": list(after.roles),
                "district": after.district_code,
                "language": after.language,
                "active": after.is_active,
            },
        },
        now,
    )
    return after


def add_district(
    session: Session,
    *,
    actor: identity.Actor,
    code: str,
    name_kk: str,
    name_ru: str,
    name_en: str,
    now: datetime,
) -> int:
    _require_admin(actor)
    code = code.strip()
    errors = []
    if not code or not code.replace("_", "").isalnum():
        errors.append(FieldError("code", "letters, digits and underscores only"))
    for name, value in (("name_kk", name_kk), ("name_ru", name_ru), ("name_en", name_en)):
        if not value.strip():
            errors.append(FieldError(name, "required"))
    if session.scalar(select(District.id).where(District.code == code)) is not None:
        errors.append(FieldError("code", f"{code!r} is taken"))
    if errors:
        raise ValidationFailed("the district cannot be added", errors)
    district = identity.ensure_district(
        session, code, name_kk.strip(), name_ru.strip(), name_en.strip()
    )
    audit.append_system_event(session, actor, "district.created", {"code": code}, now)
    return district.id
