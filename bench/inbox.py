"""The inbox with a hundred thousand open tasks: how long one page takes.

Fills a database with 100,000 open tasks (three roles, six districts, due dates spread over
two months, one in ten undated, one in five claimed) and as many completed ones (history),
then times the inbox queries of ``engine/worklist.py`` as the web pages run them: the first
page and the 50th page (keyset cursor) of a district specialist, of a regional lawyer, of a
lead's "every open task", and searches by IIN, case number and child's name. On a SQLite
file, and on PostgreSQL when one answers on 127.0.0.1:5432.

Run: ``.venv/bin/python bench/inbox.py [--tasks N]``. Prints the median milliseconds of
each query; the last line is ``inbox page p50 at N open tasks: X ms`` (SQLite, first page
of a specialist).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
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

from sqlalchemy import create_engine, insert, make_url, select, text  # noqa: E402

from engine import definitions, worklist  # noqa: E402
from engine.db import make_engine, make_sessionmaker, unit_of_work  # noqa: E402
from engine.identity import SYSTEM, Actor  # noqa: E402
from engine.iin import check_digit  # noqa: E402
from engine.migrate import upgrade  # noqa: E402
from engine.models import District, HumanTask, ProcessInstance, ProcessVersion, User  # noqa: E402
from engine.seed import seed_reference_data  # noqa: E402

PG_ADMIN = os.environ.get(
    "QORGAU_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
NOW = datetime(2026, 3, 2, 5, 0, tzinfo=UTC)
ROLES = ("specialist", "lawyer", "psychologist")


def _iin(n: int) -> str:
    while True:
        first = f"{15 + n % 9:02d}{(n % 12) + 1:02d}{(n % 28) + 1:02d}5{n % 10000:04d}"
        digit = check_digit(first)
        if digit is not None:
            return first + str(digit)
        n += 1


def fill(url: str, open_tasks: int) -> dict[str, int]:
    engine = make_engine(url)
    upgrade(engine)
    sessions = make_sessionmaker(engine)
    rng = random.Random(7)
    with unit_of_work(sessions) as s:
        seed_reference_data(s)
        bundle = definitions.read_paths(
            [ROOT / "tests/data/engine"], forms_dir=ROOT / "tests/data/engine/forms"
        )
        definitions.deploy(s, bundle, actor=SYSTEM, now=NOW)
        version = s.scalars(select(ProcessVersion)).first()
        districts = list(s.scalars(select(District.id)))
        # Users without the (slow on purpose) password hashing.
        s.execute(
            insert(User),
            [
                {
                    "username": f"u{i}",
                    "full_name": f"User {i}",
                    "password_hash": "-",
                    "is_active": True,
                    "district_id": districts[i % len(districts)],
                    "language": "kk",
                    "created_at": NOW,
                }
                for i in range(60)
            ],
        )
        users = list(s.scalars(select(User.id)))
        s.execute(
            insert(ProcessInstance),
            [
                {
                    "process_version_id": version.id,
                    "process_key": version.process_key,
                    "status": "running",
                    "state_json": "",
                    "serializer_version": "1",
                    "revision": 1,
                    "started_at": NOW,
                    "updated_at": NOW,
                    "audit_seq": 0,
                    "audit_head": "",
                }
                for _ in range(1000)
            ],
        )
        instance_ids = list(s.scalars(select(ProcessInstance.id)))
    batch: list[dict] = []

    def flush() -> None:
        with unit_of_work(sessions) as s:
            s.execute(insert(HumanTask), batch)
        batch.clear()

    for n in range(open_tasks * 2):
        done = n >= open_tasks
        role = ROLES[n % 3]
        due = None if n % 10 == 0 else NOW + timedelta(minutes=rng.randint(-30 * 1440, 30 * 1440))
        batch.append(
            {
                "instance_id": instance_ids[n % len(instance_ids)],
                "task_guid": str(uuid.uuid4()),
                "bpmn_id": "register",
                "name": f"Task {n}",
                "process_key": "test_intake",
                "role": role,
                "district_id": None if role == "lawyer" else districts[n % len(districts)],
                "assignee_id": users[n % len(users)] if (n % 5 == 0 or done) else None,
                "status": "completed" if done else "ready",
                "due_at": due,
                "created_at": NOW,
                "completed_at": NOW if done else None,
                "case_number": f"KST-{n:07d}",
                "child_name": f"Бала{n}",
                "child_iin": _iin(n),
            }
        )
        if len(batch) == 5000:
            flush()
    if batch:
        flush()
    with engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
        conn.commit()
    engine.dispose()
    return {"district": districts[0], "user": users[0]}


def measure(url: str, ids: dict[str, int], repeat: int) -> dict[str, float]:
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    specialist = Actor(ids["user"], "u0", frozenset({"specialist"}), ids["district"])
    lawyer = Actor(ids["user"] + 1, "u1", frozenset({"lawyer"}), None)
    head = Actor(ids["user"] + 2, "u2", frozenset({"head"}), None)
    cases = {
        "specialist, page 1": (specialist, worklist.InboxQuery(), 1),
        "specialist, page 50": (specialist, worklist.InboxQuery(), 50),
        "specialist, overdue, latest first": (
            specialist,
            worklist.InboxQuery(overdue=True, sort="-due"),
            1,
        ),
        "lawyer (regional), page 1": (lawyer, worklist.InboxQuery(), 1),
        "lead, every open task, page 1": (head, worklist.InboxQuery(scope="everyone"), 1),
        "lead, every open task, page 50": (head, worklist.InboxQuery(scope="everyone"), 50),
        "search by IIN": (head, worklist.InboxQuery(scope="everyone", search=_iin(4242)), 1),
        "search by case number": (
            head,
            worklist.InboxQuery(scope="everyone", search="KST-0004242"),
            1,
        ),
        "search by child's name": (specialist, worklist.InboxQuery(search="Бала4242"), 1),
    }
    results = {}
    for name, (actor, query, pages) in cases.items():
        cursor = None
        with unit_of_work(sessions) as s:
            for _ in range(pages - 1):  # walk to the page (not timed)
                cursor = worklist.search_inbox(
                    s, actor=actor, now=NOW, query=query, cursor=cursor, principals=[]
                ).next_cursor
        times = []
        for _ in range(repeat):
            with unit_of_work(sessions) as s:
                start = time.perf_counter()
                page = worklist.search_inbox(
                    s, actor=actor, now=NOW, query=query, cursor=cursor, principals=[]
                )
                times.append((time.perf_counter() - start) * 1000)
        results[name] = statistics.median(times)
        print(f"  {name:40s} {results[name]:7.2f} ms  ({len(page.items)} rows)")
    engine.dispose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/inbox.sqlite3"
        print(f"SQLite, {args.tasks} open + {args.tasks} completed tasks, 50 per page")
        sqlite_results = measure(url, fill(url, args.tasks), args.repeat)
    try:
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        name = f"qorgau_bench_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - no PostgreSQL: SQLite figures only
        print(f"PostgreSQL skipped: {exc.__class__.__name__}")
    else:
        url = make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False)
        try:
            print(f"PostgreSQL, {args.tasks} open + {args.tasks} completed tasks")
            measure(url, fill(url, args.tasks), args.repeat)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
    print(
        f"inbox page p50 at {args.tasks} open tasks: {sqlite_results['specialist, page 1']:.1f} ms"
    )


if __name__ == "__main__":
    main()
