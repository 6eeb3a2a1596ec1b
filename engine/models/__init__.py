"""The database tables, as SQLAlchemy 2.0 typed models, one module per area.

Changing a table needs an Alembic migration in ``migrations/versions`` (a test compares the
models with the migrated schema). A new area adds its module here so that the metadata
knows every table.
"""

from engine.models import (
    cases,  # noqa: F401 - case files and API tokens
    orders,  # noqa: F401 - orders of the head, registers, delegations
    studio,  # noqa: F401 - the analysts' studio: definition drafts
    workspace,  # noqa: F401 - drafts, saved filters, absences, brake
)
from engine.models.base import Base, UTCDateTime
from engine.models.calendar import CalendarOverride, Notification
from engine.models.core import (
    TASK_IS_OPEN,
    AuditEvent,
    Deployment,
    DeploymentFile,
    District,
    HumanTask,
    Incident,
    MessageSubscription,
    ProcessInstance,
    ProcessVersion,
    Role,
    User,
    UserRole,
)

__all__ = [
    "AuditEvent",
    "Base",
    "CalendarOverride",
    "Deployment",
    "DeploymentFile",
    "District",
    "HumanTask",
    "Incident",
    "MessageSubscription",
    "Notification",
    "ProcessInstance",
    "ProcessVersion",
    "Role",
    "TASK_IS_OPEN",
    "UTCDateTime",
    "User",
    "UserRole",
]
