"""Migration of running cases to a newer version: cases per second, dry run and real move.

N cases of the test intake process wait at their first task on version 1; version 2 adds a
task further on. The dry run checks every case against version 2; the real run moves them
all in one transaction (restore, re-predict, save, inbox rows, audit events). On a SQLite
file in a temporary folder.

Run: ``.venv/bin/python bench/migration.py [--cases N]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, this folder comes first on sys.path, where engine.py and http.py would
# shadow the engine package and the standard library's http.
sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench")]

from engine import definitions, instances  # noqa: E402
from engine.clock import FixedClock  # noqa: E402
from engine.db import make_engine, make_sessionmaker, unit_of_work  # noqa: E402
from engine.identity import SYSTEM, actor_for, create_user  # noqa: E402
from engine.migrate import upgrade  # noqa: E402
from engine.migration import migrate_instances  # noqa: E402
from engine.seed import seed_reference_data  # noqa: E402
from engine.spiff.parsing import SourceFile  # noqa: E402

DATA = ROOT / "tests" / "data" / "engine"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=200)
    args = parser.parse_args()
    clock = FixedClock(datetime(2026, 3, 2, 5, 0, tzinfo=UTC))
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.sqlite3'}")
        upgrade(engine)
        sessions = make_sessionmaker(engine)
        with unit_of_work(sessions) as s:
            seed_reference_data(s)
            user = create_user(
                s,
                username="bench",
                password="bench-password-1",  # noqa: S106
                full_name="Bench",
                roles=["specialist", "admin"],
                district_code="kostanay_city",
                now=clock.now(),
            )
            actor = actor_for(user)
        xml = (DATA / "test_intake.bpmn").read_text(encoding="utf-8")

        def deploy(content: str) -> int:
            bundle = definitions.Bundle(
                sources=[SourceFile("test_intake.bpmn", content.encode())],
                rules_files=[("deadlines.yaml", (DATA / "deadlines.yaml").read_bytes())],
                forms_dir=DATA / "forms",
            )
            with unit_of_work(sessions) as s:
                [version] = definitions.deploy(s, bundle, actor=SYSTEM, now=clock.now())
                return version.id

        deploy(xml)
        ids = []
        with unit_of_work(sessions) as s:
            for _ in range(args.cases):
                view = instances.start_process(
                    s, process_key="test_intake", actor=actor, clock=clock
                )
                ids.append(view.id)
        target = deploy(xml.replace('name="Legal check"', 'name="Legal check (2026)"'))
        for dry_run in (True, False):
            started = time.perf_counter()
            with unit_of_work(sessions) as s:
                result = migrate_instances(
                    s,
                    instance_ids=ids,
                    target_version_id=target,
                    actor=actor,
                    dry_run=dry_run,
                    clock=clock,
                )
            elapsed = time.perf_counter() - started
            label = "dry run" if dry_run else "migration"
            print(
                f"{label}: {len(result.moved)} cases in {elapsed:.2f} s "
                f"({len(result.moved) / elapsed:.0f} cases/s, {elapsed / len(ids) * 1000:.1f} ms "
                "per case)"
            )
        engine.dispose()


if __name__ == "__main__":
    main()
