"""The diagram of a running procedure and which of its elements are done, active or failed.

The XML is the deployed file, byte for byte (``DeploymentFile`` of the instance's version),
and the marks come from the ``human_task`` rows, the audit log and open incidents, so showing
a diagram never loads a workflow.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import audit
from engine.cases import readable_case
from engine.errors import Forbidden, NotFound
from engine.identity import Actor
from engine.models import (
    AuditEvent,
    DeploymentFile,
    HumanTask,
    Incident,
    ProcessInstance,
    ProcessVersion,
)


@dataclass(frozen=True)
class DiagramView:
    instance_id: int
    process_key: str
    file_name: str
    xml: str
    completed: tuple[str, ...]
    active: tuple[str, ...]
    failed: tuple[str, ...]


def _declares(content: bytes, process_key: str) -> bool:
    pattern = rb"<(?:\w+:)?process\b[^>]*\bid=\"" + re.escape(process_key.encode()) + rb"\""
    return re.search(pattern, content) is not None


def _may_see(session: Session, actor: Actor, instance: ProcessInstance) -> None:
    if instance.case_id is not None:
        readable_case(session, instance.case_id, actor)
        return
    if actor.is_system or actor.is_lead or "auditor" in actor.roles:
        return
    if instance.started_by_id is not None and instance.started_by_id == actor.user_id:
        return
    mine = session.scalar(
        select(HumanTask.id)
        .where(
            HumanTask.instance_id == instance.id,
            (HumanTask.assignee_id == actor.user_id)
            | (HumanTask.completed_by_id == actor.user_id)
            | HumanTask.role.in_(sorted(actor.roles)),
        )
        .limit(1)
    )
    if mine is None:
        raise Forbidden(f"{actor.username} may not see process instance {instance.id}")


def process_diagram(session: Session, *, instance_id: int, actor: Actor) -> DiagramView:
    """The instance's BPMN file with its completed, active and failed element ids.

    Raises:
        NotFound: no such instance, or its deployment holds no file declaring the process.
        Forbidden: the actor may not see the instance's case.
    """
    instance = session.get(ProcessInstance, instance_id)
    if instance is None:
        raise NotFound(f"process instance {instance_id} does not exist")
    _may_see(session, actor, instance)
    version = session.get(ProcessVersion, instance.process_version_id)
    assert version is not None  # a foreign key guarantees it
    files = session.scalars(
        select(DeploymentFile)
        .where(DeploymentFile.deployment_id == version.deployment_id, DeploymentFile.kind == "bpmn")
        .order_by(DeploymentFile.name)
    ).all()
    found = next((f for f in files if _declares(f.content, instance.process_key)), None)
    if found is None:
        raise NotFound(f"no deployed file declares process {instance.process_key!r}")

    rows = session.execute(
        select(HumanTask.bpmn_id, HumanTask.status).where(HumanTask.instance_id == instance_id)
    ).all()
    active = {bpmn_id for bpmn_id, status in rows if status == "ready"}
    completed = {bpmn_id for bpmn_id, status in rows if status == "completed"}
    # The audit log also knows tasks whose rows were compacted away in long cases.
    for detail in session.scalars(
        select(AuditEvent.detail).where(
            AuditEvent.chain == audit.instance_chain(instance_id),
            AuditEvent.action == "task.completed",
        )
    ):
        if isinstance(detail, dict) and detail.get("bpmn_id"):
            completed.add(detail["bpmn_id"])
    failed = set(
        session.scalars(
            select(Incident.element_id).where(
                Incident.instance_id == instance_id,
                Incident.resolved_at.is_(None),
                Incident.element_id.is_not(None),
            )
        )
    )
    return DiagramView(
        instance_id=instance_id,
        process_key=instance.process_key,
        file_name=found.name,
        xml=found.content.decode("utf-8"),
        # A task done in an earlier round of a loop and active again shows as active.
        completed=tuple(sorted(completed - active)),
        active=tuple(sorted(active)),
        failed=tuple(sorted(failed)),
    )
