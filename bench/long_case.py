"""Cost per step of a long case: does round 2,000 cost what round 10 did?

One case of bench/data/loop.bpmn (user task → script → gateway back) is driven through
the engine's services on a SQLite file for 2,000 rounds, each completion its own
transaction. The engine compacts finished history out of the task tree after every step
(engine/spiff/compaction.py); without it SpiffWorkflow stops seeing the loop at round 333.

Run: ``.venv/bin/python bench/long_case.py [--rounds N]``. The last line is
``last/first step cost ratio: R`` (median of the last 100 steps over the first 100).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, this folder comes first on sys.path, where engine.py and http.py would
# shadow the engine package and the standard library's http.
sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench")]

from engine import definitions, instances, tasks  # noqa: E402
from engine.clock import SYSTEM_CLOCK  # noqa: E402
from engine.db import make_engine, make_sessionmaker, unit_of_work  # noqa: E402
from engine.identity import SYSTEM, actor_for, create_user  # noqa: E402
from engine.migrate import upgrade  # noqa: E402
from engine.models import ProcessInstance  # noqa: E402
from engine.seed import seed_reference_data  # noqa: E402

DATA = ROOT / "bench" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    rounds = parser.parse_args().rounds
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/long.sqlite3")
        upgrade(engine)
        sessions = make_sessionmaker(engine)
        with unit_of_work(sessions) as session:
            seed_reference_data(session)
            user = create_user(
                session,
                username="bench",
                password="bench password",  # noqa: S106
                full_name="Bench",
                roles=["specialist"],
                now=SYSTEM_CLOCK.now(),
            )
            actor = actor_for(user)
        bundle = definitions.read_paths([DATA / "loop.bpmn"], forms_dir=DATA / "forms")
        with unit_of_work(sessions) as session:
            definitions.deploy(session, bundle, actor=SYSTEM, now=SYSTEM_CLOCK.now())
        with unit_of_work(sessions) as session:
            view = instances.start_process(session, process_key="bench_loop", actor=actor)
        task_id = view.ready_tasks[0].id
        costs, sizes = [], []
        for n in range(1, rounds + 1):
            t0 = time.perf_counter()
            with unit_of_work(sessions) as session:
                tasks.complete_task(
                    session, task_id=task_id, actor=actor, data={"complete": n == rounds}
                )
                ready = instances.get_instance(session, instance_id=view.id).ready_tasks
            costs.append(time.perf_counter() - t0)
            with unit_of_work(sessions) as session:
                sizes.append(len(session.get(ProcessInstance, view.id).state_json))
            if ready:
                task_id = ready[0].id
        engine.dispose()
    first, last = statistics.median(costs[:100]), statistics.median(costs[-100:])
    print(f"rounds: {rounds}")
    print(f"step, median of rounds 1-100:      {first * 1000:.2f} ms, state {sizes[99]} bytes")
    print(f"step, median of the last 100:      {last * 1000:.2f} ms, state {sizes[-2]} bytes")
    print(f"last/first step cost ratio: {last / first:.2f}")


if __name__ == "__main__":
    main()
