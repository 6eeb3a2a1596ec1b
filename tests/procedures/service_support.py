"""Helpers for the tests of procedures 3, 5, 6, 7 and 8 (adaptation centre, guest family,
property certificate, bullying help, information request).

Every step goes through the engine's services on a real database, one unit of work per
command, so the workflow is saved and restored between steps. ``ServiceWorld.complete``
also proves at each step that people of other roles are refused and that their attempt
changed nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine import definitions, instances, tasks
from engine.clock import FixedClock
from engine.config import BPMN_DIR, FORMS_DIR
from engine.db import unit_of_work
from engine.errors import Forbidden
from engine.identity import SYSTEM, Actor, actor_for, create_user
from engine.iin import check_digit
from engine.models import HumanTask, ProcessInstance
from engine.views import InstanceView, TaskView
from tests.factories import make_people

SERVICE_FILES = (
    "head_order.bpmn",
    "adaptation_centre_placement.bpmn",
    "guest_family_placement.bpmn",
    "property_disposal_certificate.bpmn",
    "bullying_help.bpmn",
    "information_request.bpmn",
    "deadlines.yaml",
    "deadlines-services.yaml",
)

# Who must be refused on a task of each role. "rudny_spec" is a specialist of another
# district: district-scoped roles see only their district's cases.
SERVICE_OUTSIDERS = {
    "specialist": ("maria", "head", "dinara", "rudny_spec"),
    "lawyer": ("aigul", "head", "dinara"),
    "head": ("aigul", "maria", "dinara"),
    "psychologist": ("aigul", "maria", "head", "rudny_psy"),
}

# Who does the work of each role in these tests.
SERVICE_DOER = {"specialist": "aigul", "lawyer": "maria", "head": "head", "psychologist": "dinara"}


def service_iin(born: date, sex: str = "female") -> str:
    """A valid IIN for a birth date and sex (the first serial that has a check digit)."""
    century = {18: 1, 19: 3, 20: 5}[born.year // 100] + (1 if sex == "female" else 0)
    for serial in range(1, 10000):
        first = f"{born:%y%m%d}{century}{serial:04d}"
        digit = check_digit(first)
        if digit is not None:
            return f"{first}{digit}"
    raise AssertionError("no serial gives a check digit")  # pragma: no cover


def local(text: str) -> datetime:
    """A time in Kostanay (UTC+5), e.g. ``local("2026-03-12T09:00")``."""
    return datetime.fromisoformat(text + "+05:00")


@dataclass
class ServiceWorld:
    sessions: sessionmaker[Session]
    clock: FixedClock
    people: dict[str, Actor]

    @classmethod
    def create(cls, sessions: sessionmaker[Session], clock: FixedClock) -> ServiceWorld:
        people = make_people(sessions, clock)
        with unit_of_work(sessions) as session:
            for username, district in (("dinara", "kostanay_city"), ("rudny_psy", "rudny_city")):
                user = create_user(
                    session,
                    username=username,
                    password="correct horse battery",  # noqa: S106
                    full_name=username.title(),
                    roles=["psychologist"],
                    district_code=district,
                    now=clock.now(),
                )
                people[username] = actor_for(user)
        bundle = definitions.read_paths([BPMN_DIR / n for n in SERVICE_FILES], forms_dir=FORMS_DIR)
        with unit_of_work(sessions) as session:
            definitions.deploy(session, bundle, actor=SYSTEM, now=clock.now())
        return cls(sessions, clock, people)

    # --- commands -----------------------------------------------------------------------

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
        return sorted(t.bpmn_id for t in self.instance(instance_id).ready_tasks)

    def task(self, instance_id: int, bpmn_id: str) -> TaskView:
        found = [t for t in self.instance(instance_id).ready_tasks if t.bpmn_id == bpmn_id]
        assert found, f"{bpmn_id} is not ready; ready: {self.ready(instance_id)}"
        return found[0]

    def _state(self, instance_id: int) -> tuple[Any, ...]:
        with unit_of_work(self.sessions) as s:
            row = s.get(ProcessInstance, instance_id)
            rows = s.scalars(select(HumanTask).where(HumanTask.instance_id == instance_id))
            return (
                row.revision,
                row.state_json,
                sorted((r.id, r.status, r.assignee_id) for r in rows),
            )

    def complete(
        self, instance_id: int, bpmn_id: str, data: dict[str, Any], role: str | None = None
    ) -> TaskView:
        """Complete a ready task as the doer of its role, after proving that the people of
        other roles are refused and leave the case as it was."""
        task = self.task(instance_id, bpmn_id)
        if role is not None:
            assert task.role == role, (bpmn_id, task.role)
        before = self._state(instance_id)
        for outsider in SERVICE_OUTSIDERS[task.role or ""]:
            with pytest.raises(Forbidden):
                with unit_of_work(self.sessions) as s:
                    tasks.complete_task(
                        s,
                        task_id=task.id,
                        actor=self.people[outsider],
                        data=data,
                        clock=self.clock,
                    )
        assert self._state(instance_id) == before
        doer = self.people[SERVICE_DOER[task.role or ""]]
        with unit_of_work(self.sessions) as s:
            return tasks.complete_task(s, task_id=task.id, actor=doer, data=data, clock=self.clock)

    def advance_to(self, instance_id: int, when: datetime) -> InstanceView:
        """Move the clock to ``when`` and fire the instance's due timers, as the scheduler
        does: only when the stored next timer is due."""
        self.clock.set(when)
        with unit_of_work(self.sessions) as s:
            due = instances.due_timer_instances(s, now=self.clock.now())
        assert instance_id in due, f"no timer of case {instance_id} is due at {when}"
        with unit_of_work(self.sessions) as s:
            return instances.fire_timers(s, instance_id=instance_id, clock=self.clock)

    def not_due_at(self, instance_id: int, when: datetime) -> None:
        with unit_of_work(self.sessions) as s:
            assert instance_id not in instances.due_timer_instances(s, now=when)

    def sign_order(self, instance_id: int, template: str) -> None:
        """Take the order of the head (call activity ``head_order``) through to the end:
        draft, legal review, signature, registration, publication."""
        data = self.data(instance_id)
        assert data["order_template"] == template
        self.complete(
            instance_id,
            "draft",
            {
                "order_title_kk": "Бұйрық",
                "order_title_ru": "Приказ",
                "order_text_kk": "Бұйырамын: " + template,
                "order_text_ru": "Приказываю: " + template,
                "order_legal_basis": "Reg 7, 18.9",
            },
            role="specialist",
        )
        self.complete(instance_id, "legal_review", {"legal_decision": "approve"}, role="lawyer")
        self.complete(instance_id, "sign", {"sign_decision": "sign"}, role="head")
        self.complete(
            instance_id,
            "register",
            {"order_number": f"{instance_id}-НҚ", "order_date": "2026-03-02"},
        )
        self.complete(
            instance_id,
            "publish",
            {
                "order_delivery": "notified",
                "order_notified_to": "applicant",
                "order_delivered_on": "2026-03-02",
            },
        )
