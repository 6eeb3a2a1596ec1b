"""Personal API tokens: ``Authorization: Bearer <secret>`` for the JSON API.

The secret is random (256 bits), shown once when it is created, and only its SHA-256 is
stored: a stolen database does not give working tokens. A plain hash (not a password hash)
is enough because the secret is random, and it keeps every API request cheap.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from engine import audit
from engine.errors import FieldError, Forbidden, NotFound, ValidationFailed
from engine.identity import Actor, actor_for, get_user
from engine.models import User, UserRole
from engine.models.cases import ApiToken

PREFIX = "qg_"
# Writing "last used" on every request would make every read a write; a minute is precise
# enough to tell a token in use from a forgotten one.
LAST_USED_PRECISION = timedelta(minutes=1)


@dataclass(frozen=True)
class TokenView:
    id: int
    user_id: int
    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, row: ApiToken) -> TokenView:
        return cls(
            id=row.id,
            user_id=row.user_id,
            name=row.name,
            created_at=row.created_at,
            last_used_at=row.last_used_at,
            revoked_at=row.revoked_at,
        )


@dataclass(frozen=True)
class IssuedToken:
    token: TokenView
    secret: str  # shown once, never stored


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create_token(session: Session, *, username: str, name: str, now: datetime) -> IssuedToken:
    """Create a token for ``username``; the returned secret cannot be shown again."""
    user = get_user(session, username)
    label = (name or "").strip()
    if not label or len(label) > 100:
        raise ValidationFailed(
            "the token needs a name", [FieldError("name", "required, at most 100 characters")]
        )
    secret = PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(user_id=user.id, name=label, token_hash=hash_secret(secret), created_at=now)
    session.add(row)
    session.flush()
    audit.append_system_event(
        session,
        actor_for(user),
        "api_token.created",
        {"token_id": row.id, "user": user.username, "name": label},
        now,
    )
    return IssuedToken(TokenView.of(row), secret)


def list_tokens(session: Session, *, username: str) -> list[TokenView]:
    user = get_user(session, username)
    rows = session.scalars(
        select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id)
    )
    return [TokenView.of(r) for r in rows]


def revoke_token(session: Session, *, token_id: int, actor: Actor, now: datetime) -> TokenView:
    """Revoke a token: its owner or an administrator may. Revoking twice changes nothing."""
    row = session.get(ApiToken, token_id)
    if row is None:
        raise NotFound(f"token {token_id} does not exist")
    if not (actor.is_system or actor.user_id == row.user_id or "admin" in actor.roles):
        raise Forbidden(f"{actor.username} may not revoke token {token_id}")
    if row.revoked_at is None:
        row.revoked_at = now
        session.flush()
        audit.append_system_event(
            session, actor, "api_token.revoked", {"token_id": row.id, "user_id": row.user_id}, now
        )
    return TokenView.of(row)


@dataclass(frozen=True)
class TokenHolder:
    """Who a bearer secret stands for: the actor, the language they chose, and whether
    "last used" was moved on (then the caller commits)."""

    actor: Actor
    language: str | None
    touched: bool


_HOLDER = (
    select(
        ApiToken.id,
        ApiToken.revoked_at,
        ApiToken.last_used_at,
        User.id.label("user_id"),
        User.username,
        User.district_id,
        User.is_active,
        User.language,
    )
    .join(User, User.id == ApiToken.user_id)
    .where(ApiToken.token_hash == bindparam("token_hash"))
)
_ROLES = select(UserRole.role_code).where(UserRole.user_id == bindparam("user_id"))
_TOUCH = (
    update(ApiToken.__table__)
    .where(ApiToken.__table__.c.id == bindparam("_id"))
    .values(last_used_at=bindparam("_at"))
)


def authenticate_token(session: Session, *, secret: str, now: datetime) -> TokenHolder | None:
    """Who a bearer secret stands for, or None (unknown, revoked, inactive user).

    Two small reads on every API request (the token with its user, then the roles), and a
    write of "last used" at most once a minute; the caller commits it.
    """
    if not secret.startswith(PREFIX) or len(secret) > 200:
        return None
    connection = session.connection()
    found = connection.execute(_HOLDER, {"token_hash": hash_secret(secret)}).first()
    if found is None or found.revoked_at is not None or not found.is_active:
        return None
    roles = connection.execute(_ROLES, {"user_id": found.user_id}).scalars()
    actor = Actor(
        user_id=found.user_id,
        username=found.username,
        roles=frozenset(roles),
        district_id=found.district_id,
    )
    touched = found.last_used_at is None or now - found.last_used_at >= LAST_USED_PRECISION
    if touched:
        connection.execute(_TOUCH, {"_id": found.id, "_at": now})
    return TokenHolder(actor, found.language, touched)
