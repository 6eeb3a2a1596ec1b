"""Timer throughput and lateness: N due BPMN timers fired by one and by two worker processes.

Each instance of ``bench/data/timers/timer_only.bpmn`` waits on one timer (one hour after its
start) and ends when it fires. The instances are started with a clock set back so that every
timer is already due when the workers start: a backlog, as after a stopped server or a burst.
The workers are separate processes running the scheduler's timer job
(``engine.scheduler.fire_due_timers``: ten instances claimed per transaction with
``FOR UPDATE SKIP LOCKED``, each fired in its own savepoint), each until nothing is due.

Reported per run: timers fired per second (wall time from the workers' start to the last
exit), and lateness, the time from each timer's due moment to the moment it was fired (the
``timers.fired`` audit event), p50 and p95. In a backlog lateness is mostly queueing: p50 is
about half the drain time. Every run also checks that each timer fired exactly once.

Run: ``.venv/bin/python bench/timers.py [--timers 10000]`` (PostgreSQL on 127.0.0.1:5432, or
``QORGAU_TEST_PG_URL``; SQLite with one worker as the baseline). The last line is
``timers/s with 2 workers: N``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, this folder comes first on sys.path, where engine.py and http.py would
# shadow the engine package and the standard library's http.
sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench")]

from sqlalchemy import create_engine, func, make_url, select, text  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402

from engine import definitions, instances  # noqa: E402
from engine.clock import FixedClock  # noqa: E402
from engine.db import make_engine, make_sessionmaker, unit_of_work  # noqa: E402
from engine.identity import SYSTEM  # noqa: E402
from engine.migrate import upgrade  # noqa: E402
from engine.models import AuditEvent, ProcessInstance  # noqa: E402

DATA = ROOT / "bench" / "data" / "timers"
PROCESS = "timer_only"
PG_ADMIN = os.environ.get(
    "QORGAU_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def seed_due_timers(
    sessions: sessionmaker[Session], count: int, due_at: datetime, per_transaction: int = 200
) -> None:
    """Deploy the one-timer process and start ``count`` instances whose timer is due at
    ``due_at`` (they are started one hour before it, by a fixed clock)."""
    clock = FixedClock(due_at - timedelta(hours=1))
    bundle = definitions.read_paths([DATA])
    with unit_of_work(sessions) as session:
        existing = definitions.list_versions(session, PROCESS)
        if not existing:
            definitions.deploy(session, bundle, actor=SYSTEM, now=clock.now())
    left = count
    while left:
        chunk = min(per_transaction, left)
        with unit_of_work(sessions) as session:
            for _ in range(chunk):
                instances.start_process(session, process_key=PROCESS, actor=SYSTEM, clock=clock)
        left -= chunk


def fire_audit(sessions: sessionmaker[Session]) -> tuple[int, int, list[float]]:
    """(instances, timers.fired events, lateness in seconds of each) for the bench process."""
    with unit_of_work(sessions) as session:
        total = session.scalar(
            select(func.count(ProcessInstance.id)).where(ProcessInstance.process_key == PROCESS)
        )
        rows = session.execute(
            select(AuditEvent.at, AuditEvent.detail).where(AuditEvent.action == "timers.fired")
        ).all()
    lateness = []
    for at, detail in rows:
        due = datetime.fromisoformat(str(detail["due_at"]))
        if due.tzinfo is None:
            due = due.replace(tzinfo=UTC)
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        lateness.append((at - due).total_seconds())
    return int(total or 0), len(rows), lateness


def _worker(url: str) -> subprocess.Popen[bytes]:
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
        "from engine import scheduler\n"
        "from engine.db import make_sessionmaker\n"
        f"engine = scheduler.worker_engine({url!r})\n"
        "scheduler.fire_due_timers(make_sessionmaker(engine))\n"
        "engine.dispose()\n"
    )
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)


def run(url: str, count: int, workers: int, label: str) -> float:
    engine = make_engine(url)
    upgrade(engine)
    sessions = make_sessionmaker(engine)
    due = datetime.now(UTC) - timedelta(seconds=1)
    t0 = time.perf_counter()
    seed_due_timers(sessions, count, due)
    seeded = time.perf_counter() - t0
    # Every timer is due; make the workers' start its due moment (``next_timer_at``, which the
    # audit event records as ``due_at``) so that the seeding time does not count as lateness.
    start = datetime.now(UTC)
    with unit_of_work(sessions) as session:
        session.execute(
            ProcessInstance.__table__.update()
            .where(ProcessInstance.process_key == PROCESS)
            .values(next_timer_at=start)
        )
    t0 = time.perf_counter()
    procs = [_worker(url) for _ in range(workers)]
    codes = [p.wait() for p in procs]
    elapsed = time.perf_counter() - t0
    total, fired, lateness = fire_audit(sessions)
    engine.dispose()
    if any(codes):
        raise SystemExit(f"{label}: a worker failed ({codes})")
    if (total, fired) != (count, count):
        raise SystemExit(f"{label}: {count} timers, {fired} fired events: not exactly once")
    late = sorted(lateness)
    p50 = statistics.median(late)
    p95 = late[int(0.95 * (len(late) - 1))]
    rate = count / elapsed
    print(
        f"{label:<28} {count} timers in {elapsed:6.2f} s: {rate:7.1f} timers/s; "
        f"lateness p50 {p50:6.2f} s, p95 {p95:6.2f} s (seeded in {seeded:.1f} s)"
    )
    return rate


def _pg_database() -> tuple[str, str] | None:
    name = f"qorgau_bench_{uuid.uuid4().hex[:8]}"
    try:
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
    except Exception as exc:  # noqa: BLE001 - no PostgreSQL: SQLite only
        print(f"(PostgreSQL not reachable: {exc.__class__.__name__})")
        return None
    return make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False), name


def _drop(name: str) -> None:
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--timers", type=int, default=10_000)
    args = parser.parse_args()
    n = args.timers
    with tempfile.TemporaryDirectory() as tmp:
        run(f"sqlite:///{tmp}/bench.sqlite3", n, 1, "SQLite, 1 worker")
    two = None
    for workers in (1, 2):
        made = _pg_database()
        if made is None:
            break
        url, name = made
        try:
            rate = run(url, n, workers, f"PostgreSQL, {workers} worker(s)")
        finally:
            _drop(name)
        if workers == 2:
            two = rate
    print(f"timers/s with 2 workers: {two:.0f}" if two else "timers/s with 2 workers: n/a")


if __name__ == "__main__":
    main()
