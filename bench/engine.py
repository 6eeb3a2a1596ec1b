"""Engine throughput: Qorgau against raw SpiffWorkflow, measured in one run.

The reference process (bench/data/reference.bpmn) has five user tasks, one script task and
one exclusive gateway. Each instance is started and its five tasks completed, three ways:

1. raw SpiffWorkflow in memory: the library alone, the ceiling;
2. raw SpiffWorkflow with a state-only save and load around every step: what any
   persistent engine must at least pay;
3. the Qorgau engine through its services, one database transaction per step (start and
   each completion): restricted scripts in the sandbox's worker processes, form validation,
   inbox rows, audit chain, revision checks. On a SQLite file, and on PostgreSQL when one
   answers on 127.0.0.1:5432.

Run: ``.venv/bin/python bench/engine.py [--instances N] [--rounds R]``. The last line is
``engine/raw-save-load ratio: R`` (engine on SQLite over way 2). Figures vary with the
machine; the ratio is what to compare, since both run in the same process. Ways 2 and 3 on
SQLite run interleaved, in rounds of N/R instances each, and each rate is the total of its
rounds: a machine that slows down for a while then slows both alike, where running one way
after the other would charge the slowdown to whichever ran during it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, this folder comes first on sys.path, where engine.py and http.py would
# shadow the engine package and the standard library's http.
sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench")]

from SpiffWorkflow.bpmn import BpmnWorkflow  # noqa: E402
from SpiffWorkflow.spiff.parser import SpiffBpmnParser  # noqa: E402
from SpiffWorkflow.util.task import TaskState  # noqa: E402
from sqlalchemy import create_engine, make_url, text  # noqa: E402

from engine import definitions, instances, tasks  # noqa: E402
from engine.db import make_engine, make_sessionmaker, unit_of_work  # noqa: E402
from engine.identity import SYSTEM, actor_for, create_user  # noqa: E402
from engine.migrate import upgrade  # noqa: E402
from engine.seed import seed_reference_data  # noqa: E402
from engine.spiff.workflow import dump_state, restore_state  # noqa: E402

DATA = ROOT / "bench" / "data"
PROCESS = "bench_reference"
PG_ADMIN = os.environ.get(
    "QORGAU_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def _raw_spec():
    parser = SpiffBpmnParser()
    parser.add_bpmn_files([str(DATA / "reference.bpmn")])
    return parser.get_spec(PROCESS), parser.get_subprocess_specs(PROCESS)


def raw_in_memory(n: int) -> float:
    spec, subs = _raw_spec()
    t0 = time.perf_counter()
    for i in range(n):
        wf = BpmnWorkflow(spec, subs)
        wf.do_engine_steps()
        while not wf.is_completed():
            task = wf.get_tasks(state=TaskState.READY, manual=True)[0]
            task.set_data(value=i % 7)
            task.run()
            wf.do_engine_steps()
    return n / (time.perf_counter() - t0)


def raw_save_load(n: int, spec_and_subs: tuple | None = None) -> float:
    spec, subs = spec_and_subs or _raw_spec()
    t0 = time.perf_counter()
    for i in range(n):
        wf = BpmnWorkflow(spec, subs)
        wf.do_engine_steps()
        state = dump_state(wf)
        while True:
            wf = restore_state(state, spec, subs)
            if wf.is_completed():
                break
            task = wf.get_tasks(state=TaskState.READY, manual=True)[0]
            task.set_data(value=i % 7)
            task.run()
            wf.do_engine_steps()
            state = dump_state(wf)
    return n / (time.perf_counter() - t0)


def _prepare(url: str):
    engine = make_engine(url)
    upgrade(engine)
    sessions = make_sessionmaker(engine)
    from engine.clock import SYSTEM_CLOCK

    now = SYSTEM_CLOCK.now()
    with unit_of_work(sessions) as session:
        seed_reference_data(session)
        user = create_user(
            session,
            username="bench",
            password="bench password",  # noqa: S106
            full_name="Bench",
            roles=["specialist"],
            now=now,
        )
        actor = actor_for(user)
    bundle = definitions.read_paths([DATA / "reference.bpmn"], forms_dir=DATA / "forms")
    with unit_of_work(sessions) as session:
        definitions.deploy(session, bundle, actor=SYSTEM, now=now)
    return engine, sessions, actor


def qorgau_engine(url: str, n: int) -> tuple[float, list[float]]:
    engine, sessions, actor = _prepare(url)
    steps: list[float] = []
    # Warm up the spec cache and the sandbox's worker processes outside the timing.
    _one_instance(sessions, actor, 0, [])
    t0 = time.perf_counter()
    for i in range(n):
        _one_instance(sessions, actor, i, steps)
    rate = n / (time.perf_counter() - t0)
    engine.dispose()
    return rate, steps


def interleaved(url: str, n: int, rounds: int) -> tuple[float, float, list[float]]:
    """Ways 2 and 3 in alternating rounds; (raw save/load rate, engine rate, engine steps)."""
    engine, sessions, actor = _prepare(url)
    spec_and_subs = _raw_spec()
    steps: list[float] = []
    _one_instance(sessions, actor, 0, [])
    raw_save_load(10, spec_and_subs)
    per_round = max(1, n // rounds)
    raw_seconds = engine_seconds = 0.0
    done = 0
    for _ in range(rounds):
        raw_seconds += per_round / raw_save_load(per_round, spec_and_subs)
        t0 = time.perf_counter()
        for i in range(done, done + per_round):
            _one_instance(sessions, actor, i, steps)
        engine_seconds += time.perf_counter() - t0
        done += per_round
    engine.dispose()
    return done / raw_seconds, done / engine_seconds, steps


def _one_instance(sessions, actor, i: int, steps: list[float]) -> None:
    t = time.perf_counter()
    with unit_of_work(sessions) as session:
        view = instances.start_process(session, process_key=PROCESS, actor=actor)
    steps.append(time.perf_counter() - t)
    ready = view.ready_tasks
    while ready:
        t = time.perf_counter()
        with unit_of_work(sessions) as session:
            done = tasks.complete(session, task_id=ready[0].id, actor=actor, data={"value": i % 7})
            ready = done.instance.ready_tasks
        steps.append(time.perf_counter() - t)


def _pg_database():
    try:
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        name = f"qorgau_bench_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - PostgreSQL is optional here
        print(f"PostgreSQL not reachable ({exc.__class__.__name__}): skipped")
        return None, None
    url = make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False)

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url, drop


def _ms(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=300, help="engine instances per run")
    parser.add_argument("--rounds", type=int, default=5, help="alternations of ways 2 and 3")
    args = parser.parse_args()
    n = args.instances

    raw = raw_in_memory(max(n * 3, 300))
    print(f"raw SpiffWorkflow in memory:        {raw:8.1f} instances/s")
    with tempfile.TemporaryDirectory() as tmp:
        raw_sl, rate, steps = interleaved(f"sqlite:///{tmp}/bench.sqlite3", n, args.rounds)
    print(f"raw SpiffWorkflow + save/load:      {raw_sl:8.1f} instances/s")
    print(
        f"Qorgau engine, SQLite file:         {rate:8.1f} instances/s"
        f"  (step p50 {_ms(steps, 50):.2f} ms, p95 {_ms(steps, 95):.2f} ms)"
    )
    url, drop = _pg_database()
    if url:
        try:
            pg_rate, pg_steps = qorgau_engine(url, n)
            print(
                f"Qorgau engine, PostgreSQL:          {pg_rate:8.1f} instances/s"
                f"  (step p50 {_ms(pg_steps, 50):.2f} ms, p95 {_ms(pg_steps, 95):.2f} ms)"
            )
        finally:
            drop()
    print(f"engine/raw-in-memory ratio: {rate / raw:.2f}")
    print(f"engine/raw-save-load ratio: {rate / raw_sl:.2f}")


if __name__ == "__main__":
    main()
