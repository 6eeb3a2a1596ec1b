"""inbox indexes over open tasks only, search indexes over present values only; audit
events found by their chain

Revision ID: 0107
Revises: 0103

The four inbox indexes led with ``status``, so completing a task moved its entry in each
from the ready range to the completed range, and the completed entries, which only grow,
were never read. They become partial indexes over open tasks (``WHERE status = 'ready'``),
one per queue the inbox walks: offered in a district, offered across the region, claimed by
a user, every open task. The search indexes (case number, IIN, child's name) leave out
tasks without the value, which nothing searches for. ``audit_event.instance_id`` loses its index: an instance's events
are its chain, ``instance:<id>``, which the unique (chain, seq) key already finds.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0107"
down_revision = "0103"
branch_labels = None
depends_on = None

_OPEN = "status = 'ready'"

# name -> columns, each WHERE status = 'ready'; status last, so that SQLite finds every
# column a queue's query names in the index itself.
_OPEN_INDEXES = {
    "ix_open_task_offered": ["role", "district_id", "assignee_id", "due_at", "id", "status"],
    "ix_open_task_role": ["role", "assignee_id", "due_at", "id", "status"],
    "ix_open_task_claimed": ["assignee_id", "due_at", "id", "status"],
    "ix_open_task_due": ["due_at", "id", "status"],
}
_SEARCHED = ("case_number", "child_iin", "child_name")


def upgrade() -> None:
    op.drop_index("ix_human_task_queue", table_name="human_task")
    op.drop_index("ix_human_task_assignee", table_name="human_task")
    op.drop_index("ix_human_task_offered", table_name="human_task")
    op.drop_index("ix_human_task_status_due", table_name="human_task")
    for name, columns in _OPEN_INDEXES.items():
        op.create_index(
            name,
            "human_task",
            columns,
            sqlite_where=sa.text(_OPEN),
            postgresql_where=sa.text(_OPEN),
        )
    for column in _SEARCHED:
        name = f"ix_human_task_{column}"
        present = sa.text(f"{column} IS NOT NULL")
        op.drop_index(name, table_name="human_task")
        op.create_index(
            name, "human_task", [column], sqlite_where=present, postgresql_where=present
        )
    op.drop_index("ix_audit_event_instance_id", table_name="audit_event")


def downgrade() -> None:
    op.create_index("ix_audit_event_instance_id", "audit_event", ["instance_id"])
    for column in _SEARCHED:
        op.drop_index(f"ix_human_task_{column}", table_name="human_task")
        op.create_index(f"ix_human_task_{column}", "human_task", [column])
    for name in reversed(_OPEN_INDEXES):
        op.drop_index(name, table_name="human_task")
    op.create_index("ix_human_task_status_due", "human_task", ["status", "due_at", "id"])
    op.create_index(
        "ix_human_task_offered",
        "human_task",
        ["status", "role", "district_id", "assignee_id", "due_at", "id"],
    )
    op.create_index("ix_human_task_assignee", "human_task", ["assignee_id", "status", "due_at"])
    op.create_index("ix_human_task_queue", "human_task", ["status", "role", "district_id", "due_at"])
