"""``qorgau tokens``: personal API tokens from the command line.

Attached to the ``qorgau`` command by ``web/cli.py`` (``main.add_command(tokens)``). The
secret is printed once, on creation; only its SHA-256 is stored.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click
from sqlalchemy.orm import Session

from engine import tokens as engine_tokens
from engine.clock import SYSTEM_CLOCK
from engine.db import make_engine, make_sessionmaker, unit_of_work
from engine.errors import EngineError
from engine.identity import SYSTEM


@contextmanager
def _session() -> Iterator[Session]:
    engine = make_engine()
    try:
        with unit_of_work(make_sessionmaker(engine)) as session:
            yield session
    finally:
        engine.dispose()


@click.group("tokens")
def tokens() -> None:
    """Personal API tokens (Authorization: Bearer …)."""


@tokens.command("create")
@click.argument("username")
@click.argument("name")
def create(username: str, name: str) -> None:
    """Create a token for USERNAME called NAME; the secret is shown only now."""
    try:
        with _session() as session:
            issued = engine_tokens.create_token(
                session, username=username, name=name, now=SYSTEM_CLOCK.now()
            )
    except EngineError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    click.echo(f"token {issued.token.id} for {username}: {issued.secret}")
    click.echo("Keep it now: it cannot be shown again.", err=True)


@tokens.command("list")
@click.argument("username")
def list_(username: str) -> None:
    """List USERNAME's tokens (never their secrets)."""
    try:
        with _session() as session:
            found = engine_tokens.list_tokens(session, username=username)
    except EngineError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    for t in found:
        used = t.last_used_at.isoformat(timespec="minutes") if t.last_used_at else "never used"
        state = f"revoked {t.revoked_at:%Y-%m-%d}" if t.revoked_at else "active"
        click.echo(f"{t.id}\t{t.name}\t{t.created_at:%Y-%m-%d}\t{used}\t{state}")


@tokens.command("revoke")
@click.argument("token_id", type=int)
def revoke(token_id: int) -> None:
    """Revoke the token TOKEN_ID (an administrator's action from the server's shell)."""
    try:
        with _session() as session:
            engine_tokens.revoke_token(
                session, token_id=token_id, actor=SYSTEM, now=SYSTEM_CLOCK.now()
            )
    except EngineError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    click.echo(f"token {token_id} revoked")
