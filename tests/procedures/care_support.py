"""Helpers for the tests of procedures 1, 2 and 4 (child without care, guardianship, orders).

Every step goes through the engine's services on a real database, one unit of work per
command, so the workflow is saved and restored between steps. ``CareWorld.complete``
also proves at each step that the people who must not act are refused and that their
attempt changed nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine import definitions, instances, tasks
from engine.clock import FixedClock
from engine.config import BPMN_DIR, FORMS_DIR
from engine.db import unit_of_work
from engine.errors import Forbidden
from engine.identity import SYSTEM, Actor
from engine.iin import check_digit
from engine.models import HumanTask, ProcessInstance
from engine.views import InstanceView, TaskView
from tests.factories import make_people

CARE_FILES = (
    "head_order.bpmn",
    "guardianship_appointment.bpmn",
    "guardianship_eligibility.dmn",
    "child_without_care.bpmn",
    "deadlines.yaml",
)

# Who may not act on a task of each role (besides the specialist of another district).
OUTSIDERS = {
    "specialist": ("maria", "head", "rudny_spec"),
    "lawyer": ("aigul", "head"),
    "head": ("aigul", "maria"),
}


def care_iin(born: date, sex: str) -> str:
    """A valid IIN for a birth date and sex (the first serial that has a check digit)."""
    century = {18: 1, 19: 3, 20: 5}[born.year // 100] + (1 if sex == "female" else 0)
    for serial in range(1, 10000):
        first = f"{born:%y%m%d}{century}{serial:04d}"
        digit = check_digit(first)
        if digit is not None:
            return f"{first}{digit}"
    raise AssertionError("no serial gives a check digit")  # pragma: no cover


@dataclass
class CareWorld:
    sessions: sessionmaker[Session]
    clock: FixedClock
    people: dict[str, Actor]

    @classmethod
    def create(cls, sessions: sessionmaker[Session], clock: FixedClock) -> CareWorld:
        people = make_people(sessions, clock)
        bundle = definitions.read_paths([BPMN_DIR / n for n in CARE_FILES], forms_dir=FORMS_DIR)
        with unit_of_work(sessions) as session:
            definitions.deploy(session, bundle, actor=SYSTEM, now=clock.now())
        return cls(sessions, clock, people)

    def start(self, key: str, who: str, data: dict[str, Any], **kw: Any) -> InstanceView:
        with unit_of_work(self.sessions) as s:
            return instances.start_process(
                s, process_key=key, actor=self.people[who], data=data, clock=self.clock, **kw
            )

    def instance(self, instance_id: int) -> InstanceView:
        with unit_of_work(self.sessions) as s:
            return instances.get_instance(s, instance_id=instance_id)

    def data(self, instance_id: int) -> dict[str, Any]:
        with unit_of_work(self.sessions) as s:
            return instances.instance_data(s, instance_id=instance_id)

    def ready(self, instance_id: int) -> list[str]:
        return [t.bpmn_id for t in self.instance(instance_id).ready_tasks]

    def task(self, instance_id: int, bpmn_id: str) -> TaskView:
        """The one ready task of the case, which must be ``bpmn_id``."""
        ready = self.instance(instance_id).ready_tasks
        assert [t.bpmn_id for t in ready] == [bpmn_id], [t.bpmn_id for t in ready]
        return ready[0]

    def _snapshot(self, instance_id: int) -> tuple[Any, ...]:
        with unit_of_work(self.sessions) as s:
            inst = s.get(ProcessInstance, instance_id)
            rows = s.scalars(select(HumanTask).where(HumanTask.instance_id == instance_id))
            return (
                inst.revision,
                inst.state_json,
                sorted((r.id, r.status, r.assignee_id) for r in rows),
            )

    def complete(
        self,
        instance_id: int,
        bpmn_id: str,
        who: str,
        data: dict[str, Any],
        *,
        check_outsiders: bool = True,
    ) -> InstanceView:
        """Complete the ready task ``bpmn_id`` as ``who``, after checking that every outsider
        to the task's role is refused and leaves the case untouched."""
        task = self.task(instance_id, bpmn_id)
        before = self._snapshot(instance_id)
        for outsider in OUTSIDERS[task.role or ""] if check_outsiders else ():
            with pytest.raises(Forbidden):
                with unit_of_work(self.sessions) as s:
                    tasks.complete_task(
                        s, task_id=task.id, actor=self.people[outsider], data=data, clock=self.clock
                    )
        assert self._snapshot(instance_id) == before
        with unit_of_work(self.sessions) as s:
            tasks.complete_task(
                s, task_id=task.id, actor=self.people[who], data=data, clock=self.clock
            )
        return self.instance(instance_id)

    def task_row(self, task_id: int) -> TaskView:
        with unit_of_work(self.sessions) as s:
            return tasks.get_task(s, task_id=task_id, actor=self.people["head"])


# --- the order of the head (head_order), as every procedure that calls it drives it ---------

DRAFT = {
    "order_title_kk": "Қорғаншылық белгілеу туралы",
    "order_title_ru": "Об установлении опеки",
    "order_text_kk": "Қорғаншы болып тағайындалсын.",
    "order_text_ru": "Назначить опекуном.",
    "order_legal_basis": "Неке және отбасы туралы кодекс; Ереже 7, 15.2",
}


def drive_order(
    world: CareWorld,
    instance_id: int,
    *,
    legal_returns: int = 0,
    head_returns: int = 0,
    number: str = "17",
) -> InstanceView:
    """Draft, review, sign, register and publish an order, with the given return loops.

    Each task must be done by its role: the specialist drafts, registers and publishes, the
    lawyer reviews, the head signs.
    """
    for _ in range(legal_returns):
        world.complete(instance_id, "draft", "aigul", DRAFT)
        world.complete(
            instance_id,
            "legal_review",
            "maria",
            {"legal_decision": "return", "legal_comments": "Cite the article of the Code."},
        )
    for _ in range(head_returns):
        world.complete(instance_id, "draft", "aigul", DRAFT)
        world.complete(instance_id, "legal_review", "maria", {"legal_decision": "approve"})
        world.complete(
            instance_id,
            "sign",
            "head",
            {"sign_decision": "return", "head_comments": "Add the control clause."},
        )
    world.complete(instance_id, "draft", "aigul", DRAFT)
    world.complete(instance_id, "legal_review", "maria", {"legal_decision": "approve"})
    world.complete(instance_id, "sign", "head", {"sign_decision": "sign"})
    world.complete(
        instance_id, "register", "aigul", {"order_number": number, "order_date": "2026-03-10"}
    )
    return world.complete(
        instance_id,
        "publish",
        "aigul",
        {
            "order_delivery": "notified",
            "order_notified_to": "the applicant",
            "order_delivered_on": "2026-03-11",
        },
    )
