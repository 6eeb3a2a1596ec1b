"""``qorgau keys`` (the Department CA and the signers' keys) and ``qorgau orders`` (registers,
delegations, verification of signed orders).

Passphrases are asked at the terminal (hidden, or from ``--passphrase-file`` for scripts) and
never stored. ``qorgau orders verify FILE.pdf`` exits 0 only when the signature is intact,
issued by the Department CA, covers the whole file, and the bytes are the register's record;
otherwise it prints every reason and exits 1.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path

import click
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import delegations, orders, signing
from engine.db import make_engine, make_sessionmaker, unit_of_work
from engine.errors import EngineError
from engine.identity import SYSTEM, actor_for, get_user
from engine.models.orders import OrderRegister
from engine.order_templates import ensure_registers


@contextmanager
def _session() -> Iterator[Session]:
    engine = make_engine()
    try:
        with unit_of_work(make_sessionmaker(engine)) as session:
            yield session
    finally:
        engine.dispose()


def _passphrase(prompt: str, from_file: Path | None, confirm: bool = False) -> str:
    if from_file is not None:
        return from_file.read_text(encoding="utf-8").strip()
    return str(click.prompt(prompt, hide_input=True, confirmation_prompt=confirm))


def _folder(value: Path | None) -> Path:
    return value or signing.keys_dir()


def _fail(message: str, status: int = 2) -> None:
    click.echo(message, err=True)
    sys.exit(status)


KEYS_DIR = click.option(
    "--keys-dir", type=click.Path(path_type=Path), default=None, help="Default: var/keys."
)


@click.group()
def keys() -> None:
    """The Department CA and the signers' keys (private keys encrypted, passphrases unstored)."""


@keys.command("init-ca")
@KEYS_DIR
@click.option("--passphrase-file", type=click.Path(path_type=Path, exists=True), default=None)
def init_ca(keys_dir: Path | None, passphrase_file: Path | None) -> None:
    """Create the Department CA (once)."""
    try:
        cert = signing.create_ca(
            passphrase=_passphrase("CA passphrase", passphrase_file, confirm=True),
            folder=_folder(keys_dir),
        )
    except EngineError as exc:
        _fail(str(exc))
    click.echo(f"Department CA created, valid until {cert.not_valid_after_utc:%Y-%m-%d}")


@keys.command("issue")
@click.argument("username")
@KEYS_DIR
@click.option("--ca-passphrase-file", type=click.Path(path_type=Path, exists=True), default=None)
@click.option("--passphrase-file", type=click.Path(path_type=Path, exists=True), default=None)
@click.option("--days", type=int, default=365, show_default=True)
def issue(
    username: str,
    keys_dir: Path | None,
    ca_passphrase_file: Path | None,
    passphrase_file: Path | None,
    days: int,
) -> None:
    """Issue USERNAME a signing key and certificate (replaces an earlier one)."""
    try:
        with _session() as session:
            full_name = get_user(session, username).full_name
        issued = signing.issue_signer_key(
            username=username,
            full_name=full_name,
            ca_passphrase=_passphrase("CA passphrase", ca_passphrase_file),
            passphrase=_passphrase(f"new passphrase for {username}", passphrase_file, True),
            folder=_folder(keys_dir),
            days=days,
        )
    except EngineError as exc:
        _fail(str(exc))
    click.echo(
        f"key issued to {issued.username} ({issued.subject}), valid until "
        f"{issued.not_after:%Y-%m-%d}"
    )


@keys.command("list")
@KEYS_DIR
def list_keys(keys_dir: Path | None) -> None:
    """The signers' certificates."""
    for item in signing.list_signer_keys(_folder(keys_dir)):
        click.echo(f"{item.username}\t{item.subject}\tvalid until {item.not_after:%Y-%m-%d}")


@click.group()
def orders_group() -> None:
    """Orders of the head: registers, delegations, verification."""


@orders_group.command("verify")
@click.argument("pdf", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@KEYS_DIR
def verify(pdf: Path, keys_dir: Path | None) -> None:
    """Verify a signed order: signature, Department CA, and the register's record."""
    try:
        root = signing.load_ca_certificate(_folder(keys_dir))
    except EngineError as exc:
        _fail(str(exc))
    with _session() as session:
        result = orders.verify_order_pdf(session, data=pdf.read_bytes(), trust_roots=[root])
    check = result.signature
    if check.signer:
        click.echo(f"signed by: {check.signer} ({check.signer_username})")
    if check.signed_at:
        click.echo(f"signed at: {check.signed_at:%Y-%m-%d %H:%M:%S} UTC")
    if result.number:
        click.echo(
            f"register: {result.register_code}, № {result.number} of {result.signed_on:%d.%m.%Y}"
        )
    click.echo(
        f"signature intact: {'yes' if check.intact else 'no'}; "
        f"Department CA: {'yes' if check.trusted else 'no'}; "
        f"matches the register: {'yes' if result.matches_register else 'no'}"
    )
    if result.ok:
        click.echo("VALID")
        return
    for problem in result.problems:
        click.echo(f"INVALID: {problem}", err=True)
    sys.exit(1)


@orders_group.command("registers")
@click.option("--set-pattern", nargs=2, metavar="REGISTER PATTERN", default=None)
def registers(set_pattern: tuple[str, str] | None) -> None:
    """List the registers; --set-pattern core '{seq}-НҚ' changes how numbers are written."""
    try:
        with _session() as session:
            if set_pattern:
                orders.set_register_pattern(
                    session, actor=SYSTEM, register=set_pattern[0], pattern=set_pattern[1]
                )
            ensure_registers(session)
            for row in session.scalars(select(OrderRegister).order_by(OrderRegister.code)):
                click.echo(f"{row.code}\t{row.pattern}\t{row.name_kk} / {row.name_ru}")
    except EngineError as exc:
        _fail(str(exc))


@orders_group.command("delegate")
@click.argument("head")
@click.argument("deputy")
@click.argument("starts_on", type=click.DateTime(formats=["%Y-%m-%d"]))
@click.argument("ends_on", type=click.DateTime(formats=["%Y-%m-%d"]))
@click.option("--reason", default=None)
def delegate(
    head: str, deputy: str, starts_on: datetime, ends_on: datetime, reason: str | None
) -> None:
    """Record HEAD's delegation of signing to DEPUTY from STARTS_ON to ENDS_ON (audited)."""
    try:
        with _session() as session:
            view = delegations.grant_delegation(
                session,
                actor=actor_for(get_user(session, head)),
                deputy=deputy,
                starts_on=date.fromordinal(starts_on.toordinal()),
                ends_on=date.fromordinal(ends_on.toordinal()),
                now=datetime.now(UTC),
                reason=reason,
            )
    except EngineError as exc:
        _fail(str(exc))
    click.echo(
        f"delegation {view.id}: {view.deputy} signs for {view.head} "
        f"from {view.starts_on} to {view.ends_on}"
    )


def add_to(main: click.Group) -> None:
    """Attach ``keys`` and ``orders`` to the ``qorgau`` command."""
    main.add_command(keys, "keys")
    main.add_command(orders_group, "orders")
