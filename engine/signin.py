"""Signing in, with a brake on repeated failures per user name and per network address.

Five wrong passwords for one user name within 15 minutes lock that name for 15 minutes;
twenty failures from one address lock the address. While locked, the password is not even
checked, so guessing goes no further. The counters live in the database (``login_brake``),
so every web process and every host sees the same brake.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from engine.identity import authenticate
from engine.models.workspace import LoginBrake

USER_LIMIT = 5
ADDRESS_LIMIT = 20
WINDOW = timedelta(minutes=15)
LOCK = timedelta(minutes=15)


@dataclass(frozen=True)
class SignInResult:
    """``user_id`` when the password was right; ``locked_until`` when the brake is on."""

    user_id: int | None
    locked_until: datetime | None = None

    @property
    def ok(self) -> bool:
        return self.user_id is not None


def _keys(username: str, address: str | None) -> list[tuple[str, int]]:
    keys = [(f"user:{username.strip().lower()[:100]}", USER_LIMIT)]
    if address:
        keys.append((f"ip:{address[:100]}", ADDRESS_LIMIT))
    return keys


def sign_in(
    session: Session, *, username: str, password: str, address: str | None, now: datetime
) -> SignInResult:
    """Check a user name and password unless the brake is on; count a failure.

    The caller commits even when the sign-in failed: the failure must be remembered.
    """
    keys = _keys(username, address)
    rows = {key: session.get(LoginBrake, key) for key, _ in keys}
    locks = [r.locked_until for r in rows.values() if r and r.locked_until and r.locked_until > now]
    if locks:
        return SignInResult(None, max(locks))
    user = authenticate(session, username, password)
    if user is not None:
        # A right password clears the user's count, never the address's: one known account
        # must not reset the brake on an address that guesses at others.
        user_row = rows[keys[0][0]]
        if user_row is not None:
            session.delete(user_row)
        session.flush()
        return SignInResult(user.id)
    locked_until = None
    for key, limit in keys:
        row = rows[key]
        if row is None:
            row = LoginBrake(key=key, failures=0, window_start=now, locked_until=None)
            session.add(row)
        if now - row.window_start > WINDOW:
            row.failures, row.window_start, row.locked_until = 0, now, None
        row.failures += 1
        if row.failures >= limit:
            row.locked_until = now + LOCK
            row.failures, row.window_start = 0, now
            locked_until = max(locked_until or row.locked_until, row.locked_until)
    session.flush()
    return SignInResult(None, locked_until)
