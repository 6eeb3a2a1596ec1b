"""The base of the procedure test worlds: a database with people and deployed procedures,
driven through the engine's services.

Every step is its own unit of work, so the workflow is saved and restored between steps.
``complete_as`` also proves at each step that the outsiders to the task's role are refused
and that their attempt changed nothing. Each world names its files, its people and who is
an outsider to each role; the helpers of its procedures live in its own module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Self

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine import definitions, instances, tasks
from engine.clock import FixedClock
from engine.config import BPMN_DIR, FORMS_DIR
from engine.db import unit_of_work
from engine.errors import Forbidden
from engine.identity import SYSTEM, Actor
from engine.models import HumanTask, ProcessInstance
from engine.views import InstanceView, TaskView
from tests.factories import PEOPLE, make_people

# Who does the work of each role in these tests.
DOERS = {"specialist": "aigul", "lawyer": "maria", "head": "head"}


@dataclass
class ProcedureWorld:
    sessions: sessionmaker[Session]
    clock: FixedClock
    people: dict[str, Actor]

    # The files deployed from bpmn/, the people created, and who must be refused on a task
    # of each role.
    FILES: ClassVar[tuple[str, ...]] = ()
    PEOPLE: ClassVar[dict[str, tuple[list[str], str | None]]] = PEOPLE
    OUTSIDERS: ClassVar[dict[str, tuple[str, ...]]] = {}

    @classmethod
    def create(cls, sessions: sessionmaker[Session], clock: FixedClock) -> Self:
        people = make_people(sessions, clock, cls.PEOPLE)
        bundle = definitions.read_paths([BPMN_DIR / n for n in cls.FILES], forms_dir=FORMS_DIR)
        with unit_of_work(sessions) as session:
            definitions.deploy(session, bundle, actor=SYSTEM, now=clock.now())
        return cls(sessions, clock, people)

    # --- commands and reads -------------------------------------------------------------

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

    def ready_tasks(self, instance_id: int) -> list[TaskView]:
        """The ready tasks of the case, by BPMN id (the engine's order is not part of the
        contract)."""
        return sorted(self.instance(instance_id).ready_tasks, key=lambda t: t.bpmn_id)

    def ready(self, instance_id: int) -> list[str]:
        return [t.bpmn_id for t in self.ready_tasks(instance_id)]

    def task(self, instance_id: int, bpmn_id: str) -> TaskView:
        ready = self.ready_tasks(instance_id)
        found = [t for t in ready if t.bpmn_id == bpmn_id]
        assert found, f"{bpmn_id} is not ready; ready: {[t.bpmn_id for t in ready]}"
        return found[0]

    def task_row(self, task_id: int) -> TaskView:
        with unit_of_work(self.sessions) as s:
            return tasks.get_task(s, task_id=task_id, actor=self.people["head"])

    def complete_as(
        self, task: TaskView, who: str, data: dict[str, Any], *, check_outsiders: bool = True
    ) -> TaskView:
        """Complete ``task`` as ``who``, after checking that every outsider to the task's role
        is refused and leaves the case untouched."""
        before = self._snapshot(task.instance_id)
        for outsider in self.OUTSIDERS[task.role or ""] if check_outsiders else ():
            with pytest.raises(Forbidden):
                with unit_of_work(self.sessions) as s:
                    tasks.complete_task(
                        s, task_id=task.id, actor=self.people[outsider], data=data, clock=self.clock
                    )
        assert self._snapshot(task.instance_id) == before
        with unit_of_work(self.sessions) as s:
            return tasks.complete_task(
                s, task_id=task.id, actor=self.people[who], data=data, clock=self.clock
            )

    def _snapshot(self, instance_id: int) -> tuple[Any, ...]:
        with unit_of_work(self.sessions) as s:
            inst = s.get(ProcessInstance, instance_id)
            rows = s.scalars(select(HumanTask).where(HumanTask.instance_id == instance_id))
            return (
                inst.revision,
                inst.state_json,
                sorted((r.id, r.status, r.assignee_id) for r in rows),
            )


def order_steps(
    draft: dict[str, Any],
    *,
    number: str,
    order_date: str,
    notified_to: str,
    delivered_on: str,
) -> list[tuple[str, str, dict[str, Any]]]:
    """The tasks of an order of the head (call activity ``head_order``) that go straight
    through: draft, legal review, signature, registration, publication; each as
    (BPMN id, role, the data that completes it)."""
    return [
        ("draft", "specialist", draft),
        ("legal_review", "lawyer", {"legal_decision": "approve"}),
        ("sign", "head", {"sign_decision": "sign"}),
        ("register", "specialist", {"order_number": number, "order_date": order_date}),
        (
            "publish",
            "specialist",
            {
                "order_delivery": "notified",
                "order_notified_to": notified_to,
                "order_delivered_on": delivered_on,
            },
        ),
    ]
