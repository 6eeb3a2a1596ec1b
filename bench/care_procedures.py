"""The guardianship procedure end to end through the engine: what one real case costs.

Each case of ``guardianship_appointment`` is started and driven to its end: completeness
check, examination, the facts, the eligibility DMN (19 columns, 19 rows), the order of the
head as a call activity (draft, legal review, signature, registration, publication) and the
notice to the applicant: 1 start and 9 task completions, each in its own transaction on a
SQLite file, with restricted scripts, form validation, inbox rows and the audit chain.

Run: ``.venv/bin/python bench/care_procedures.py [--cases N]``. It prints cases per second
and the latency of each kind of step (median and 95th percentile).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, this folder comes first on sys.path, where engine.py and http.py would
# shadow the engine package and the standard library's http.
sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench")]

from engine import definitions, instances, tasks  # noqa: E402
from engine.clock import FixedClock  # noqa: E402
from engine.config import BPMN_DIR, FORMS_DIR  # noqa: E402
from engine.db import make_engine, make_sessionmaker, unit_of_work  # noqa: E402
from engine.identity import SYSTEM, actor_for, create_user  # noqa: E402
from engine.migrate import upgrade  # noqa: E402
from engine.seed import seed_reference_data  # noqa: E402

FILES = (
    "head_order.bpmn",
    "guardianship_appointment.bpmn",
    "guardianship_eligibility.dmn",
    "deadlines.yaml",
)
APPLICATION = {
    "application_date": "2026-03-02",
    "channel": "egov",
    "applicant_name": "Applicant",
    "applicant_iin": "791028302728",
    "applicant_address": "Kostanay",
    "applicant_married": True,
    "relationship": "grandparent",
    "child_name": "Child",
    "child_iin": None,
    "child_birth_date": "2018-05-15",
}
STEPS = [
    ("check_completeness", "specialist", {f"doc_{d}": True for d in (
        "identity", "spouse_consent", "medical", "no_parental_care", "income", "housing",
        "training", "registers")}),
    ("examine_living_conditions", "specialist", {
        "exam_date": "2026-03-04", "exam_act_number": "1", "permanent_residence": True,
        "housing_adequate": True, "exam_findings": "ok"}),
    ("record_eligibility_facts", "specialist", {
        "assessed_on": "2026-03-05", "legally_capable": True,
        "parental_rights_restricted": False, "removed_as_guardian": False,
        "adoption_cancelled_by_fault": False, "health_bar": False, "conviction_bar": False,
        "stateless": False, "income_below_minimum": False, "on_narcology_register": False,
        "on_psychiatric_register": False, "years_raising_child": 0,
        "applicant_consents": True, "child_opinion": "not_heard"}),
    ("draft", "specialist", {
        "order_title_kk": "k", "order_title_ru": "r", "order_text_kk": "k",
        "order_text_ru": "r", "order_legal_basis": "Reg 7"}),
    ("legal_review", "lawyer", {"legal_decision": "approve"}),
    ("sign", "head", {"sign_decision": "sign"}),
    ("register", "specialist", {"order_number": "1", "order_date": "2026-03-10"}),
    ("publish", "specialist", {
        "order_delivery": "notified", "order_notified_to": "applicant",
        "order_delivered_on": "2026-03-11"}),
    ("notify_appointment", "specialist", {"notified_on": "2026-03-12", "notice_channel": "egov"}),
]  # fmt: skip


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=50)
    args = parser.parse_args()
    clock = FixedClock(datetime(2026, 3, 2, 5, 0, tzinfo=UTC))
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.sqlite3'}")
        upgrade(engine)
        sessions = make_sessionmaker(engine)
        actors = {}
        with unit_of_work(sessions) as s:
            seed_reference_data(s)
            for role in ("specialist", "lawyer", "head"):
                user = create_user(
                    s,
                    username=role,
                    password="bench password 1",  # noqa: S106 - a throwaway database
                    full_name=role,
                    roles=[role],
                    district_code=None,
                    now=clock.now(),
                )
                actors[role] = actor_for(user)
            bundle = definitions.read_paths([BPMN_DIR / f for f in FILES], forms_dir=FORMS_DIR)
            definitions.deploy(s, bundle, actor=SYSTEM, now=clock.now())

        timings: dict[str, list[float]] = defaultdict(list)
        started = time.perf_counter()
        for n in range(args.cases):
            t0 = time.perf_counter()
            with unit_of_work(sessions) as s:
                view = instances.start_process(
                    s,
                    process_key="guardianship_appointment",
                    actor=actors["specialist"],
                    data=APPLICATION,
                    business_key=f"B-{n}",
                    clock=clock,
                )
            timings["start"].append(time.perf_counter() - t0)
            for bpmn_id, role, data in STEPS:
                [task] = view.ready_tasks
                assert task.bpmn_id == bpmn_id, (task.bpmn_id, bpmn_id)
                t0 = time.perf_counter()
                with unit_of_work(sessions) as s:
                    tasks.complete_task(
                        s, task_id=task.id, actor=actors[role], data=data, clock=clock
                    )
                    view = instances.get_instance(s, instance_id=view.id)
                timings[bpmn_id].append(time.perf_counter() - t0)
            assert view.status == "completed"
        elapsed = time.perf_counter() - started
        engine.dispose()

    print(f"guardianship_appointment, {args.cases} cases on SQLite, 10 commands each")
    print(f"cases/s: {args.cases / elapsed:.2f}   commands/s: {10 * args.cases / elapsed:.1f}")
    for step, values in timings.items():
        print(
            f"  {step:28s} median {statistics.median(values) * 1000:6.1f} ms"
            f"   p95 {_percentile(values, 0.95) * 1000:6.1f} ms"
        )


if __name__ == "__main__":
    main()
