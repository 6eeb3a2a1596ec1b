"""HTTP throughput: the two-form case intake driven through the JSON API by concurrent clients.

The process (bench/data/case_intake.bpmn): a user task (register the report) → a script task
(assess) → an exclusive gateway → a user task (review and decide) → end. Each case is three
requests with a personal API token: start, complete the first form, complete the second
(the complete response names the next task, so no polling).

For each database (a fresh SQLite file in a temporary folder; PostgreSQL on 127.0.0.1:5432
when it answers, in a fresh database dropped afterwards) the bench initialises it with
``qorgau init --no-demo``, deploys the process, creates one specialist and one token per
client, starts ``qorgau serve --workers 2`` on a free port as a subprocess, then runs 1, 4
and 8 clients (threads with keep-alive connections) for a fixed time each and prints
completed cases/s, the p50/p95 latency of task submits (the two completes) and the server's
CPU time per case (from /proc), which the rest of the machine's load does not inflate.

Run: ``.venv/bin/python bench/http.py [--seconds S] [--no-postgres]``. The last line is
``cases/s at 8 clients: N`` (SQLite).
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path, and its name would shadow the
# standard library's ``http`` package (which httpx needs): take the folder off the path.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import argparse  # noqa: E402
import os  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from datetime import UTC, datetime  # noqa: E402

import httpx  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, make_url, text  # noqa: E402

from engine import tokens  # noqa: E402
from engine.db import make_engine, make_sessionmaker, unit_of_work  # noqa: E402
from engine.identity import create_user  # noqa: E402

DATA = ROOT / "bench" / "data"
QORGAU = Path(sys.executable).parent / "qorgau"
PG_ADMIN = os.environ.get(
    "QORGAU_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
CLIENTS = (1, 4, 8)
# A valid IIN (15 May 2019, a girl): the start form checks it like a real one.
CHILD = {"child_name": "Аружан Серікқызы", "child_iin": "190515600016", "source": "phone"}
REGISTER = {"child_age": 6, "summary": "Reported by a neighbour; the child is alone at home."}
REVIEW = {"decision": "open_case", "reason": "Check the home within one working day."}


@dataclass
class Tally:
    cases: int = 0
    submits: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prepare(url: str, var_dir: Path, clients: int) -> list[str]:
    """Initialise the database, deploy the process, create users and tokens."""
    env = {**os.environ, "QORGAU_DATABASE_URL": url, "QORGAU_VAR_DIR": str(var_dir)}
    for args in (
        ["init", "--no-demo"],
        ["deploy", str(DATA / "case_intake.bpmn"), "--forms", str(DATA / "forms")],
    ):
        subprocess.run([str(QORGAU), *args], env=env, check=True, capture_output=True)
    engine = make_engine(url)
    secrets = []
    now = datetime.now(UTC)
    with unit_of_work(make_sessionmaker(engine)) as session:
        for n in range(clients):
            name = f"bench{n}"
            create_user(
                session,
                username=name,
                password="bench-password",  # noqa: S106 - a throwaway database
                full_name=f"Bench {n}",
                roles=["specialist"],
                district_code="kostanay_city",
                now=now,
            )
            secrets.append(
                tokens.create_token(session, username=name, name="bench", now=now).secret
            )
    engine.dispose()
    return secrets


def serve(url: str, var_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "QORGAU_DATABASE_URL": url, "QORGAU_VAR_DIR": str(var_dir)}
    # The server's output goes to a file in the temporary folder, shown if it fails.
    log = (var_dir / "serve.log").open("wb")
    server = subprocess.Popen(  # noqa: S603 - our own command
        # No timer jobs in this process: the intake has no timers, and the scheduler's
        # polling would only add load to what is measured.
        [str(QORGAU), "serve", "--port", str(port), "--workers", "2", "--no-scheduler"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        if server.poll() is not None:
            raise RuntimeError("qorgau serve exited:\n" + (var_dir / "serve.log").read_text())
        time.sleep(0.2)
    server.kill()
    raise RuntimeError("qorgau serve did not answer within 60 s")


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            text_ = Path(f"/proc/{current}/task/{current}/children").read_text()
        except OSError:
            continue
        todo.extend(int(c) for c in text_.split())
    return found


def server_cpu(pid: int) -> float:
    """CPU seconds used so far by the server, its web workers and their script workers
    (Linux /proc): a figure that the machine's other load does not inflate."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in _descendants(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def one_case(client: httpx.Client, tally: Tally) -> bool:
    try:
        return _one_case(client, tally)
    except httpx.HTTPError as exc:
        tally.errors.append(f"{exc.__class__.__name__}: {exc}")
        return False


def _one_case(client: httpx.Client, tally: Tally) -> bool:
    started = client.post("/procedures/case_intake/start", json={"data": CHILD})
    if started.status_code != 201:
        tally.errors.append(f"start {started.status_code} {started.text[:200]}")
        return False
    task_id = started.json()["ready_tasks"][0]["id"]
    latencies = []
    for data in (REGISTER, REVIEW):
        t0 = time.perf_counter()
        reply = client.post(f"/tasks/{task_id}/complete", json={"data": data})
        latencies.append(time.perf_counter() - t0)
        if reply.status_code != 200:
            tally.errors.append(f"complete {reply.status_code} {reply.text[:200]}")
            return False
        instance = reply.json()["instance"]
        if instance["status"] == "completed":
            break
        task_id = instance["ready_tasks"][0]["id"]
    else:
        tally.errors.append("the case did not complete after two forms")
        return False
    with tally.lock:
        tally.cases += 1
        tally.submits.extend(latencies)
    return True


def run_level(base: str, secrets: list[str], clients: int, seconds: float) -> Tally:
    tally = Tally()
    stop = threading.Event()
    ready = threading.Barrier(clients + 1)

    def worker(secret: str) -> None:
        headers = {"Authorization": f"Bearer {secret}"}
        with httpx.Client(base_url=f"{base}/api/v1", headers=headers, timeout=30) as client:
            one_case(client, Tally())  # warm the connection and the worker's caches
            ready.wait()
            while not stop.is_set():
                if not one_case(client, tally):
                    stop.set()

    threads = [threading.Thread(target=worker, args=(s,)) for s in secrets[:clients]]
    for t in threads:
        t.start()
    ready.wait()
    t0 = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    tally.elapsed = time.perf_counter() - t0  # type: ignore[attr-defined]
    return tally


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def bench_database(label: str, url: str, seconds: float) -> dict[int, float]:
    results = {}
    with tempfile.TemporaryDirectory(prefix="qorgau-bench-") as tmp:
        var_dir = Path(tmp)
        secrets = prepare(url, var_dir, max(CLIENTS))
        port = free_port()
        server = serve(url, var_dir, port)
        try:
            for clients in CLIENTS:
                cpu_before = server_cpu(server.pid)
                tally = run_level(f"http://127.0.0.1:{port}", secrets, clients, seconds)
                cpu = server_cpu(server.pid) - cpu_before
                elapsed = tally.elapsed  # type: ignore[attr-defined]
                rate = tally.cases / elapsed
                results[clients] = rate
                p50 = statistics.median(tally.submits) * 1000 if tally.submits else float("nan")
                p95 = percentile(tally.submits, 95) * 1000
                print(
                    f"{label:<10} clients={clients}  cases={tally.cases:<5} "
                    f"cases/s={rate:7.1f}  submit p50={p50:6.1f} ms  p95={p95:6.1f} ms  "
                    # Includes the warm-up cases: an upper bound of the server's cost.
                    f"server CPU/case={cpu / max(tally.cases, 1) * 1000:5.1f} ms"
                    + (f"  ERRORS: {tally.errors[:3]}" if tally.errors else ""),
                    flush=True,
                )
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
    return results


def postgres_url() -> tuple[str, str] | None:
    """A fresh database on the local PostgreSQL, or None when it does not answer."""
    name = f"qorgau_bench_{uuid.uuid4().hex[:10]}"
    try:
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
    except Exception as exc:  # noqa: BLE001 - no PostgreSQL here: skip it
        print(f"postgresql: skipped ({exc.__class__.__name__})")
        return None
    return make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False), name


def drop_postgres(name: str) -> None:
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per client count")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    print(f"case intake over HTTP, qorgau serve --workers 2, {args.seconds:.0f} s per level")
    with tempfile.TemporaryDirectory(prefix="qorgau-bench-db-") as tmp:
        sqlite = bench_database("sqlite", f"sqlite:///{Path(tmp) / 'bench.sqlite3'}", args.seconds)
    if not args.no_postgres:
        found = postgres_url()
        if found is not None:
            url, name = found
            try:
                bench_database("postgresql", url, args.seconds)
            finally:
                drop_postgres(name)
    print(f"cases/s at 8 clients: {sqlite[8]:.1f}")


if __name__ == "__main__":
    main()
