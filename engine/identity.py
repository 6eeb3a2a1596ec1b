"""Users, roles and districts, and the ``Actor`` every command is performed by."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import FieldError, NotFound, ValidationFailed
from engine.models import District, Role, User, UserRole

# The roles of the Department (see DESIGN.md, "Users and roles").
ROLES: dict[str, tuple[str, str, str, bool]] = {
    # code: (Kazakh, Russian, English, district-scoped)
    "specialist": ("Маман", "Специалист", "Specialist", True),
    "lawyer": ("Заңгер", "Юрист", "Lawyer", False),
    "psychologist": ("Психолог", "Психолог", "Psychologist", True),
    "head": ("Басшы", "Руководитель", "Head", False),
    "deputy_head": ("Басшының орынбасары", "Заместитель руководителя", "Deputy head", False),
    "analyst": ("Талдаушы", "Аналитик", "Analyst", False),
    "admin": ("Әкімші", "Администратор", "Administrator", False),
    "auditor": ("Аудитор", "Аудитор", "Auditor", False),
}

# Roles that may hand tasks to colleagues and see every queue.
LEAD_ROLES = frozenset({"head", "deputy_head", "admin"})

_hasher = PasswordHasher()


@dataclass(frozen=True)
class Actor:
    """Who performs a command: a user, or the system itself (scheduler, migrations)."""

    user_id: int | None
    username: str
    roles: frozenset[str] = field(default_factory=frozenset)
    district_id: int | None = None
    # Set when a deputy acts under a delegation: the user whose work is being done.
    on_behalf_of: str | None = None

    def has_role(self, role: str | None) -> bool:
        return role is not None and role in self.roles

    @property
    def is_lead(self) -> bool:
        return bool(self.roles & LEAD_ROLES)

    @property
    def is_system(self) -> bool:
        return self.user_id is None


SYSTEM = Actor(user_id=None, username="system", roles=frozenset({"system"}))


def actor_for(user: User) -> Actor:
    return Actor(
        user_id=user.id,
        username=user.username,
        roles=frozenset(r.role_code for r in user.roles),
        district_id=user.district_id,
    )


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def ensure_roles(session: Session) -> None:
    """Create the Department's roles if missing (idempotent)."""
    existing = set(session.scalars(select(Role.code)))
    for code, (kk, ru, en, scoped) in ROLES.items():
        if code not in existing:
            session.add(Role(code=code, name_kk=kk, name_ru=ru, name_en=en, district_scoped=scoped))
    session.flush()


def ensure_district(session: Session, code: str, kk: str, ru: str, en: str) -> District:
    district = session.scalar(select(District).where(District.code == code))
    if district is None:
        district = District(code=code, name_kk=kk, name_ru=ru, name_en=en)
        session.add(district)
        session.flush()
    return district


def get_user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"no user named {username!r}")
    return user


def _check_roles(session: Session, roles: list[str]) -> None:
    known = set(session.scalars(select(Role.code)))
    unknown = [r for r in roles if r not in known]
    if unknown:
        raise ValidationFailed(
            "unknown role",
            [
                FieldError("roles", f"unknown role {r!r}; known: {', '.join(sorted(known))}")
                for r in unknown
            ],
        )


def create_user(
    session: Session,
    *,
    username: str,
    password: str,
    full_name: str,
    roles: list[str],
    now: datetime,
    district_code: str | None = None,
    language: str = "kk",
) -> User:
    errors = []
    if not username or not username.replace(".", "").replace("_", "").isalnum():
        errors.append(FieldError("username", "letters, digits, dots and underscores only"))
    if len(password) < 8:
        errors.append(FieldError("password", "at least 8 characters"))
    if language not in {"kk", "ru", "en"}:
        errors.append(FieldError("language", "one of kk, ru, en"))
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        errors.append(FieldError("username", f"{username!r} is taken"))
    if errors:
        raise ValidationFailed("the user cannot be created", errors)
    _check_roles(session, roles)
    district_id = None
    if district_code:
        district = session.scalar(select(District).where(District.code == district_code))
        if district is None:
            raise ValidationFailed(
                "unknown district", [FieldError("district", f"no district {district_code!r}")]
            )
        district_id = district.id
    user = User(
        username=username,
        full_name=full_name,
        password_hash=hash_password(password),
        district_id=district_id,
        language=language,
        created_at=now,
        is_active=True,
    )
    user.roles = [UserRole(role_code=r) for r in sorted(set(roles))]
    session.add(user)
    session.flush()
    return user


def set_roles(session: Session, *, username: str, roles: list[str]) -> User:
    user = get_user(session, username)
    _check_roles(session, roles)
    wanted = set(roles)
    user.roles = [r for r in user.roles if r.role_code in wanted] + [
        UserRole(role_code=r) for r in sorted(wanted - {r.role_code for r in user.roles})
    ]
    session.flush()
    return user


def authenticate(session: Session, username: str, password: str) -> User | None:
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.is_active:
        # Spend the same time as a real check so that timing does not reveal user names.
        check_password(_DUMMY_HASH, password)
        return None
    return user if check_password(user.password_hash, password) else None


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)))


_DUMMY_HASH = _hasher.hash("not-a-real-password")
