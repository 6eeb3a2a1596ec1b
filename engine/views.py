"""What leaves the engine: frozen values, never ORM rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from engine.models import HumanTask, Incident, ProcessInstance, ProcessVersion


@dataclass(frozen=True)
class TaskView:
    id: int
    guid: str
    instance_id: int
    process_key: str
    bpmn_id: str
    name: str
    role: str | None
    district_id: int | None
    assignee_id: int | None
    status: str
    form_key: str | None
    deadline_rule: str | None
    due_at: datetime | None
    created_at: datetime
    claimed_at: datetime | None
    completed_at: datetime | None
    completed_by_id: int | None

    @classmethod
    def of(cls, row: HumanTask) -> TaskView:
        return cls(
            id=row.id,
            guid=row.task_guid,
            instance_id=row.instance_id,
            process_key=row.process_key,
            bpmn_id=row.bpmn_id,
            name=row.name,
            role=row.role,
            district_id=row.district_id,
            assignee_id=row.assignee_id,
            status=row.status,
            form_key=row.form_key,
            deadline_rule=row.deadline_rule,
            due_at=row.due_at,
            created_at=row.created_at,
            claimed_at=row.claimed_at,
            completed_at=row.completed_at,
            completed_by_id=row.completed_by_id,
        )


@dataclass(frozen=True)
class IncidentView:
    id: int
    instance_id: int
    element_id: str | None
    kind: str
    message: str
    created_at: datetime
    resolved_at: datetime | None

    @classmethod
    def of(cls, row: Incident) -> IncidentView:
        return cls(
            id=row.id,
            instance_id=row.instance_id,
            element_id=row.element_id,
            kind=row.kind,
            message=row.message,
            created_at=row.created_at,
            resolved_at=row.resolved_at,
        )


@dataclass(frozen=True)
class InstanceView:
    id: int
    process_key: str
    process_version_id: int
    version: int
    status: str
    business_key: str | None
    district_id: int | None
    revision: int
    started_at: datetime
    ended_at: datetime | None
    next_timer_at: datetime | None
    ready_tasks: tuple[TaskView, ...]
    incident: IncidentView | None

    @classmethod
    def of(
        cls,
        row: ProcessInstance,
        version: ProcessVersion,
        ready: list[HumanTask],
        incident: Incident | None,
    ) -> InstanceView:
        return cls(
            id=row.id,
            process_key=row.process_key,
            process_version_id=row.process_version_id,
            version=version.version,
            status=row.status,
            business_key=row.business_key,
            district_id=row.district_id,
            revision=row.revision,
            started_at=row.started_at,
            ended_at=row.ended_at,
            next_timer_at=row.next_timer_at,
            ready_tasks=tuple(TaskView.of(t) for t in ready),
            incident=IncidentView.of(incident) if incident else None,
        )


@dataclass(frozen=True)
class ProcessVersionView:
    id: int
    process_key: str
    version: int
    name: str
    content_hash: str
    deployed_at: datetime
    starter_roles: tuple[str, ...]

    @classmethod
    def of(cls, row: ProcessVersion) -> ProcessVersionView:
        return cls(
            id=row.id,
            process_key=row.process_key,
            version=row.version,
            name=row.name,
            content_hash=row.content_hash,
            deployed_at=row.deployed_at,
            starter_roles=tuple(row.starter_roles or ()),
        )
