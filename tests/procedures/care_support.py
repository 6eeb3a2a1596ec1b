"""Helpers for the tests of procedures 1, 2 and 4 (child without care, guardianship, orders).

``CareWorld`` is a ``ProcedureWorld`` (see ``world.py``) in which the test names who does
each step; ``CareWorld.complete`` proves at each step that the people who must not act are
refused and that their attempt changed nothing.
"""

from __future__ import annotations

from typing import Any

from engine.views import InstanceView, TaskView
from tests.procedures.world import DOERS, ProcedureWorld, order_steps


class CareWorld(ProcedureWorld):
    FILES = (
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

    def task(self, instance_id: int, bpmn_id: str) -> TaskView:
        """The one ready task of the case, which must be ``bpmn_id``."""
        ready = self.ready_tasks(instance_id)
        assert [t.bpmn_id for t in ready] == [bpmn_id], [t.bpmn_id for t in ready]
        return ready[0]

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
        self.complete_as(task, who, data, check_outsiders=check_outsiders)
        return self.instance(instance_id)


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
    steps = order_steps(
        DRAFT,
        number=number,
        order_date="2026-03-10",
        notified_to="the applicant",
        delivered_on="2026-03-11",
    )
    for bpmn_id, role, data in steps:
        world.complete(instance_id, bpmn_id, DOERS[role], data)
    return world.instance(instance_id)
