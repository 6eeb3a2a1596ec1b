"""Helpers for the tests of procedures 3, 5, 6, 7 and 8 (adaptation centre, guest family,
property certificate, bullying help, information request).

``ServiceWorld`` is a ``ProcedureWorld`` (see ``world.py``) with psychologists, in which
each task is done by the doer of its role; ``ServiceWorld.complete`` proves at each step
that people of other roles are refused and that their attempt changed nothing. Timers fire
as the scheduler fires them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from engine import instances
from engine.db import unit_of_work
from engine.views import InstanceView, TaskView
from tests.factories import PEOPLE
from tests.procedures.world import DOERS, ProcedureWorld, order_steps

# Who does the work of each role in these tests.
SERVICE_DOER = {**DOERS, "psychologist": "dinara"}


def local(text: str) -> datetime:
    """A time in Kostanay (UTC+5), e.g. ``local("2026-03-12T09:00")``."""
    return datetime.fromisoformat(text + "+05:00")


class ServiceWorld(ProcedureWorld):
    FILES = (
        "head_order.bpmn",
        "adaptation_centre_placement.bpmn",
        "guest_family_placement.bpmn",
        "property_disposal_certificate.bpmn",
        "bullying_help.bpmn",
        "information_request.bpmn",
        "deadlines.yaml",
        "deadlines-services.yaml",
    )
    PEOPLE = {
        **PEOPLE,
        "dinara": (["psychologist"], "kostanay_city"),
        "rudny_psy": (["psychologist"], "rudny_city"),
    }
    # "rudny_spec" and "rudny_psy" work in another district: district-scoped roles see only
    # their district's cases.
    OUTSIDERS = {
        "specialist": ("maria", "head", "dinara", "rudny_spec"),
        "lawyer": ("aigul", "head", "dinara"),
        "head": ("aigul", "maria", "dinara"),
        "psychologist": ("aigul", "maria", "head", "rudny_psy"),
    }

    def complete(
        self, instance_id: int, bpmn_id: str, data: dict[str, Any], role: str | None = None
    ) -> TaskView:
        """Complete a ready task as the doer of its role, after proving that the people of
        other roles are refused and leave the case as it was."""
        task = self.task(instance_id, bpmn_id)
        if role is not None:
            assert task.role == role, (bpmn_id, task.role)
        return self.complete_as(task, SERVICE_DOER[task.role or ""], data)

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
        draft = {
            "order_title_kk": "Бұйрық",
            "order_title_ru": "Приказ",
            "order_text_kk": "Бұйырамын: " + template,
            "order_text_ru": "Приказываю: " + template,
            "order_legal_basis": "Reg 7, 18.9",
        }
        steps = order_steps(
            draft,
            number=f"{instance_id}-НҚ",
            order_date="2026-03-02",
            notified_to="applicant",
            delivered_on="2026-03-02",
        )
        for bpmn_id, role, step_data in steps:
            self.complete(instance_id, bpmn_id, step_data, role=role)
