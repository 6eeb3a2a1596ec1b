"""The ``qorgau`` command: set up, serve, deploy and administer.

Every command is one unit of work on the database named by ``QORGAU_DATABASE_URL`` (or the
SQLite file under ``var/``). Problems are printed one per line; the exit status is 2 when
input is refused and 1 when a check fails.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from engine import audit, definitions, identity
from engine.clock import SYSTEM_CLOCK
from engine.config import BPMN_DIR, FORMS_DIR
from engine.db import make_engine, make_sessionmaker, unit_of_work
from engine.errors import DeployError, EngineError
from engine.migrate import upgrade


@contextmanager
def _session() -> Iterator[Session]:
    """One unit of work on the configured database; the connections are closed after."""
    engine = make_engine()
    try:
        with unit_of_work(make_sessionmaker(engine)) as session:
            yield session
    finally:
        engine.dispose()


def _fail(message: str, status: int = 2) -> None:
    click.echo(message, err=True)
    sys.exit(status)


@click.group()
def main() -> None:
    """Qorgau: the Department's legal procedures as BPMN processes."""


@main.command()
@click.option("--demo/--no-demo", default=True, help="Create the demo users (default: yes).")
def init(demo: bool) -> None:
    """Migrate the database, seed roles and districts, deploy bpmn/, add demo users."""
    engine = make_engine()
    try:
        _init(engine, demo)
    finally:
        engine.dispose()
    click.echo("database ready")


def _init(engine: Engine, demo: bool) -> None:
    from engine.seed import seed_demo_users, seed_reference_data

    upgrade(engine)
    sessions = make_sessionmaker(engine)
    now = SYSTEM_CLOCK.now()

    with unit_of_work(sessions) as session:
        seed_reference_data(session)
        if demo:
            created = seed_demo_users(session, now)
            if created:
                click.echo(f"demo users created: {', '.join(created)}")
    bundle = definitions.read_paths([BPMN_DIR], forms_dir=FORMS_DIR)
    if bundle.sources:
        try:
            with unit_of_work(sessions) as session:
                versions = definitions.deploy(
                    session, bundle, actor=identity.SYSTEM, now=now, comment="qorgau init"
                )
        except DeployError as exc:
            _fail(str(exc))
        for v in versions:
            click.echo(f"deployed {v.process_key} version {v.version}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int)
@click.option(
    "--scheduler/--no-scheduler",
    default=True,
    show_default=True,
    help="Run the scheduler's jobs in this server (off when separate `qorgau worker`s do).",
)
def serve(host: str, port: int, workers: int, scheduler: bool) -> None:
    """Serve the web application (gunicorn), with the scheduler's jobs."""
    from gunicorn.app.base import BaseApplication

    from web import create_app

    jobs: dict[str, Any] = {}

    def when_ready(_server: Any) -> None:
        # One scheduler for the whole server, in a child process of its own: gunicorn
        # forks its web workers from the master, and a master running scheduler threads
        # forks workers that can hang on locks those threads held.
        if scheduler:
            jobs["worker"] = subprocess.Popen(  # noqa: S603 - our own command, no shell
                [sys.executable, "-m", "web.cli", "worker"]
            )

    def on_exit(_server: Any) -> None:
        worker = jobs.get("worker")
        if worker is not None:
            worker.terminate()
            try:
                worker.wait(timeout=10)
            except subprocess.TimeoutExpired:
                worker.kill()

    class _Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("threads", 4)
            self.cfg.set("accesslog", "-")
            self.cfg.set("when_ready", when_ready)
            self.cfg.set("on_exit", on_exit)

        def load(self):  # type: ignore[no-untyped-def]
            return create_app()

    click.echo(f"Qorgau on http://{host}:{port}")
    _Server().run()


def _bundle(paths: tuple[str, ...], forms: str | None) -> definitions.Bundle:
    missing = [p for p in paths if not Path(p).exists()]
    if missing:
        _fail("\n".join(f"{p}: no such file or folder" for p in missing))
    return definitions.read_paths([Path(p) for p in paths], Path(forms) if forms else FORMS_DIR)


@main.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--forms", help="Folder of form schemas (default: forms/).")
def validate(paths: tuple[str, ...], forms: str | None) -> None:
    """Check BPMN/DMN files, their forms and deadline rules; deploy nothing."""
    bundle = _bundle(paths, forms)
    try:
        with _session() as session:
            problems = definitions.validate(bundle, session)
    except Exception as exc:  # noqa: BLE001 - no database: validate the files alone
        click.echo(f"(calls to deployed processes not checked: {exc.__class__.__name__})", err=True)
        problems = definitions.validate(bundle, None)
    if problems:
        _fail("\n".join(str(p) for p in problems))
    click.echo(f"{len(bundle.sources)} file(s) valid")


@main.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--forms", help="Folder of form schemas (default: forms/).")
@click.option("--comment", help="Why this deployment (kept with it).")
def deploy(paths: tuple[str, ...], forms: str | None, comment: str | None) -> None:
    """Deploy BPMN/DMN files as new process versions (all or nothing)."""
    bundle = _bundle(paths, forms)
    try:
        with _session() as session:
            versions = definitions.deploy(
                session, bundle, actor=identity.SYSTEM, now=SYSTEM_CLOCK.now(), comment=comment
            )
    except DeployError as exc:
        _fail(str(exc))
    if not versions:
        click.echo("nothing changed: every process is already deployed as it is")
    for v in versions:
        click.echo(f"deployed {v.process_key} version {v.version}")


@main.group()
def users() -> None:
    """Users and their roles."""


@users.command("add")
@click.argument("username")
@click.option("--full-name", required=True)
@click.option("--role", "roles", multiple=True, required=True, help="Repeat for several roles.")
@click.option("--district", help="District code for district staff.")
@click.option("--language", default="kk", type=click.Choice(["kk", "ru", "en"]))
@click.password_option(envvar="QORGAU_PASSWORD")
def users_add(
    username: str,
    full_name: str,
    roles: tuple[str, ...],
    district: str | None,
    language: str,
    password: str,
) -> None:
    """Add a user (the password is asked for, or read from QORGAU_PASSWORD)."""
    try:
        with _session() as session:
            identity.ensure_roles(session)
            user = identity.create_user(
                session,
                username=username,
                password=password,
                full_name=full_name,
                roles=list(roles),
                district_code=district,
                language=language,
                now=SYSTEM_CLOCK.now(),
            )
            audit.append_system_event(
                session,
                identity.SYSTEM,
                "user.created",
                {"username": user.username, "roles": sorted(roles)},
                SYSTEM_CLOCK.now(),
            )
    except EngineError as exc:
        _fail(str(exc))
    click.echo(f"user {username} added")


@users.command("list")
def users_list() -> None:
    """List users with their roles."""
    with _session() as session:
        for user in identity.list_users(session):
            roles = ",".join(sorted(r.role_code for r in user.roles))
            state = "" if user.is_active else " (inactive)"
            click.echo(f"{user.username}\t{user.full_name}\t{roles}{state}")


@users.command("set-role")
@click.argument("username")
@click.argument("roles", nargs=-1, required=True)
def users_set_role(username: str, roles: tuple[str, ...]) -> None:
    """Replace a user's roles."""
    try:
        with _session() as session:
            identity.set_roles(session, username=username, roles=list(roles))
            audit.append_system_event(
                session,
                identity.SYSTEM,
                "user.roles_set",
                {"username": username, "roles": sorted(roles)},
                SYSTEM_CLOCK.now(),
            )
    except EngineError as exc:
        _fail(str(exc))
    click.echo(f"{username}: {', '.join(roles)}")


@main.group("audit")
def audit_group() -> None:
    """The audit log."""


@audit_group.command("verify")
def audit_verify() -> None:
    """Check every hash chain; name the first bad event of each broken chain."""
    with _session() as session:
        bad = audit.verify_all(session)
        total = audit.count_events(session)
    if bad:
        _fail("\n".join(f"BAD {b}" for b in bad), status=1)
    click.echo(f"audit log intact: {total} events")


@main.command("versions")
@click.argument("process_key", required=False)
def versions_cmd(process_key: str | None) -> None:
    """List deployed process versions."""
    with _session() as session:
        for v in definitions.list_versions(session, process_key):
            click.echo(f"{v.process_key}\tv{v.version}\t{v.deployed_at:%Y-%m-%d %H:%M}\t{v.name}")


# --- legal time: the calendar, the scheduler's worker ----------------------------------------

_UNITS = {"working-days": "working_days", "days": "calendar_days", "hours": "hours"}


def _parse_moment(text: str) -> datetime:
    """A date or date-time; without a zone it is the Department's (Asia/Qostanay)."""
    from engine.calendar import DEPARTMENT_TZ

    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        _fail(f"{text}: not a date (YYYY-MM-DD) or date-time (YYYY-MM-DDTHH:MM)")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=DEPARTMENT_TZ)
    return moment


@main.group("calendar")
def calendar_group() -> None:
    """Kazakhstan's working-day calendar and its overrides (transfer decrees, Kurban Ait)."""


@calendar_group.command("list")
@click.option("--year", type=int, help="Only this year's overrides.")
def calendar_list(year: int | None) -> None:
    """List the overrides: date, kind, reason, legal act, what the package says."""
    from engine.calendar_overrides import list_overrides, load_calendar

    with _session() as session:
        rows = list_overrides(session, year=year)
        version = load_calendar(session).version
    for o in rows:
        click.echo(f"{o.day.isoformat()}\t{o.kind}\t{o.reason}\t{o.legal_act}\t{o.package_says}")
    click.echo(f"calendar {version}", err=True)


@calendar_group.command("add")
@click.argument("day", type=click.DateTime(formats=["%Y-%m-%d"]))
@click.argument("kind", type=click.Choice(["holiday", "working_day", "working-day"]))
@click.option("--reason", required=True, help="Why, e.g. 'Kurban Ait 2027'.")
@click.option("--legal-act", required=True, help="The decree or announcement.")
def calendar_add(day: datetime, kind: str, reason: str, legal_act: str) -> None:
    """Declare DAY a holiday or a working day."""
    from engine.calendar_overrides import add_override, load_calendar

    try:
        with _session() as session:
            add_override(
                session,
                actor=identity.SYSTEM,
                day=day.date(),
                kind=kind.replace("-", "_"),
                reason=reason,
                legal_act=legal_act,
                now=SYSTEM_CLOCK.now(),
            )
            version = load_calendar(session).version
    except EngineError as exc:
        _fail(str(exc))
    click.echo(f"{day.date().isoformat()} is now a {kind.replace('_', ' ')}; calendar {version}")


@calendar_group.command("remove")
@click.argument("day", type=click.DateTime(formats=["%Y-%m-%d"]))
def calendar_remove(day: datetime) -> None:
    """Remove DAY's override; the package's calendar applies again."""
    from engine.calendar_overrides import load_calendar, remove_override

    try:
        with _session() as session:
            remove_override(session, actor=identity.SYSTEM, day=day.date(), now=SYSTEM_CLOCK.now())
            version = load_calendar(session).version
    except EngineError as exc:
        _fail(str(exc))
    click.echo(f"override of {day.date().isoformat()} removed; calendar {version}")


@calendar_group.command("due")
@click.argument("start")
@click.argument("value", type=int)
@click.argument("unit")
def calendar_due(start: str, value: int, unit: str) -> None:
    """When a term of VALUE UNIT from START runs out (UNIT: working-days, days, hours).

    Prints three lines, for people and scripts alike: the due moment in Asia/Qostanay (ISO
    8601), the same in UTC, and the calendar version that counted it.
    """
    from engine.calendar import DEPARTMENT_TZ, Term
    from engine.calendar_overrides import load_calendar

    if unit not in _UNITS:
        _fail(f"{unit}: unknown unit; use one of {', '.join(_UNITS)}")
    moment = _parse_moment(start)
    with _session() as session:
        calendar = load_calendar(session)
    try:
        due = calendar.due_at(moment, Term(value, _UNITS[unit]))
    except ValueError as exc:
        _fail(str(exc))
    click.echo(due.astimezone(DEPARTMENT_TZ).isoformat())
    click.echo(due.astimezone(UTC).isoformat())
    click.echo(f"calendar {calendar.version}")


def _scheduler_settings() -> Any:
    from engine.notifications import SmtpSettings
    from engine.scheduler import Settings

    return Settings(smtp=SmtpSettings.from_env())


@main.command()
@click.option("--once", is_flag=True, help="Run every job once and exit (cron, scripts).")
def worker(once: bool) -> None:
    """Run the scheduler's jobs: BPMN timers, reminders, overdue, escalations, e-mail.

    Start as many as you like, on any hosts sharing the PostgreSQL database: they claim
    work with row locks and never fire a timer twice.
    """
    import logging

    from engine import scheduler

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    engine = scheduler.worker_engine()
    sessions = make_sessionmaker(engine)
    settings = _scheduler_settings()
    try:
        if once:
            fired = scheduler.fire_due_timers(sessions)
            follow = scheduler.follow_deadlines(sessions, settings=settings)
            sent = scheduler.send_emails(sessions, settings=settings)
            click.echo(f"timers fired: {len(fired.fired)}; {follow}; e-mails sent: {sent}")
            return
        click.echo("qorgau worker: scheduler running (Ctrl+C stops)")
        scheduler.build_scheduler(sessions, settings=settings, blocking=True).start()
    except KeyboardInterrupt:
        pass
    finally:
        engine.dispose()


from web import orders_cli  # noqa: E402 - the head's orders and the Department's keys

orders_cli.add_to(main)

from web.tokens_cli import tokens  # noqa: E402 - personal API tokens

main.add_command(tokens)


if __name__ == "__main__":
    main()
