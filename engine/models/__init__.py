"""The database tables, as SQLAlchemy 2.0 typed models, one module per area.

Changing a table needs an Alembic migration in ``migrations/versions`` (a test compares the
models with the migrated schema). A new area adds its module here so that the metadata
knows every table.
"""

from engine.models.base import Base, UTCDateTime
from engine.models.core import (
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
    "Deployment",
    "DeploymentFile",
    "District",
    "HumanTask",
    "Incident",
    "MessageSubscription",
    "ProcessInstance",
    "ProcessVersion",
    "Role",
    "UTCDateTime",
    "User",
    "UserRole",
]
