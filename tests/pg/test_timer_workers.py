"""Several worker processes on PostgreSQL: every due timer fires exactly once, none is lost.

The workers are real processes (``qorgau worker --once``, or the same timer job with a hook
that stops in the middle of a batch), sharing one database; they coordinate only through
row locks (engine/scheduler.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from bench.timers import PROCESS, seed_due_timers
from engine.db import make_engine, make_sessionmaker, unit_of_work
from engine.models import AuditEvent, ProcessInstance

ROOT = Path(__file__).resolve().parent.parent.parent
WAIT = 60.0  # an upper bound for a process to reach a point, never a timing assumption


@pytest.fixture
def pg_sessions(postgres_url):
    engine = make_engine(postgres_url)
    yield make_sessionmaker(engine)
    engine.dispose()


def _env(url: str) -> dict[str, str]:
    env = dict(os.environ)
    env["QORGAU_DATABASE_URL"] = url
    env.pop("QORGAU_SMTP_HOST", None)
    return env


def _qorgau_worker_once(url: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", "from web.cli import main; main()", "worker", "--once"],
        cwd=ROOT,
        env=_env(url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _fired_per_instance(sessions) -> dict[int, int]:
    with unit_of_work(sessions) as s:
        rows = s.execute(
            select(AuditEvent.instance_id, func.count(AuditEvent.id))
            .where(AuditEvent.action == "timers.fired")
            .group_by(AuditEvent.instance_id)
        ).all()
    return dict(rows)


def _instance_states(sessions) -> dict[str, int]:
    with unit_of_work(sessions) as s:
        rows = s.execute(
            select(ProcessInstance.status, func.count(ProcessInstance.id))
            .where(ProcessInstance.process_key == PROCESS)
            .group_by(ProcessInstance.status)
        ).all()
    return dict(rows)


def test_three_workers_fire_1000_timers_exactly_once(postgres_url, pg_sessions):
    seed_due_timers(pg_sessions, 1000, datetime.now(UTC) - timedelta(minutes=1))
    assert _instance_states(pg_sessions) == {"waiting": 1000}
    workers = [_qorgau_worker_once(postgres_url) for _ in range(3)]
    outputs = [w.communicate(timeout=WAIT * 3) for w in workers]
    for worker, (_out, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err.decode()
    fired = _fired_per_instance(pg_sessions)
    assert len(fired) == 1000
    assert set(fired.values()) == {1}  # exactly once each
    assert _instance_states(pg_sessions) == {"completed": 1000}
    # The work was shared: every worker reports what it fired, and they add up.
    counts = [int(out.decode().split("timers fired: ")[1].split(";")[0]) for out, _ in outputs]
    assert sum(counts) == 1000
    assert sum(1 for c in counts if c > 0) >= 2


_STOPPING_WORKER = """
import sys, time
from pathlib import Path
from engine import scheduler
from engine.db import make_sessionmaker

url, stop_after, marker = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
fired = []

def before_commit(instance_id):
    fired.append(instance_id)
    if len(fired) == stop_after + 1:
        # Hold this instance's claim, uncommitted, until the test kills us.
        marker.write_text(str(instance_id))
        while True:
            time.sleep(1)

engine = scheduler.worker_engine(url)
scheduler.fire_due_timers(make_sessionmaker(engine), batch=10, before_commit=before_commit)
"""


def _wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def test_a_worker_killed_mid_batch_loses_nothing(postgres_url, pg_sessions, tmp_path):
    seed_due_timers(pg_sessions, 200, datetime.now(UTC) - timedelta(minutes=1))
    marker = tmp_path / "holding"
    victim = subprocess.Popen(
        [sys.executable, "-c", _STOPPING_WORKER, postgres_url, "50", str(marker)],
        cwd=ROOT,
        env=_env(postgres_url),
    )
    try:
        _wait_for(marker.exists, "the worker to reach the middle of its batch")
        held = int(marker.read_text())
        # Five batches of ten committed; the sixth is fired in memory, uncommitted, its
        # claims held.
        committed = _fired_per_instance(pg_sessions)
        assert len(committed) == 50
        assert held not in committed
        with unit_of_work(pg_sessions) as s:
            assert s.get(ProcessInstance, held).status == "waiting"
            backends = s.scalars(
                text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                    "AND state = 'idle in transaction'"
                )
            ).all()
        assert len(backends) == 1
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=WAIT)
    finally:
        if victim.poll() is None:
            victim.kill()
            victim.wait()

    def backend_gone() -> bool:
        with unit_of_work(pg_sessions) as s:
            return not s.scalar(
                text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"),
                {"pid": backends[0]},
            )

    # PostgreSQL ends the dead worker's transaction when its connection drops.
    _wait_for(backend_gone, "PostgreSQL to drop the killed worker's connection")
    rescuer = _qorgau_worker_once(postgres_url)
    out, err = rescuer.communicate(timeout=WAIT * 2)
    assert rescuer.returncode == 0, err.decode()
    assert "timers fired: 150" in out.decode()
    fired = _fired_per_instance(pg_sessions)
    assert len(fired) == 200 and set(fired.values()) == {1}
    assert fired[held] == 1
    assert _instance_states(pg_sessions) == {"completed": 200}
