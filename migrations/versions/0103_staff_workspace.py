"""staff workspace: sign-in brake, task drafts, saved filters, absences, inbox indexes

Revision ID: 0103
Revises: 0001

The inbox pages through each queue in due order by walking one index range, so that a
page costs the same with 100,000 open tasks as with 100. ix_human_task_offered serves the
queue of a role in a district (unclaimed); the core's ix_human_task_assignee the tasks a
user claimed; ix_human_task_status_due a lead's list of every open task,
which would otherwise sort all open tasks for every page; ix_human_task_child_name serves
the search by a child's name.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0103"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "login_brake",
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_login_brake")),
    )
    op.create_table(
        "task_draft",
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("saved_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["task_id"], ["human_task.id"], name=op.f("fk_task_draft_task_id_human_task")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["app_user.id"], name=op.f("fk_task_draft_user_id_app_user")
        ),
        sa.PrimaryKeyConstraint("task_id", "user_id", name=op.f("pk_task_draft")),
    )
    op.create_table(
        "saved_filter",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("shared_role", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["app_user.id"], name=op.f("fk_saved_filter_owner_id_app_user")
        ),
        sa.ForeignKeyConstraint(
            ["shared_role"], ["role.code"], name=op.f("fk_saved_filter_shared_role_role")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_saved_filter")),
    )
    op.create_index(op.f("ix_saved_filter_owner_id"), "saved_filter", ["owner_id"])
    op.create_index(op.f("ix_saved_filter_shared_role"), "saved_filter", ["shared_role"])
    op.create_table(
        "absence",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("deputy_id", sa.Integer(), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["app_user.id"], name=op.f("fk_absence_user_id_app_user")
        ),
        sa.ForeignKeyConstraint(
            ["deputy_id"], ["app_user.id"], name=op.f("fk_absence_deputy_id_app_user")
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["app_user.id"], name=op.f("fk_absence_created_by_id_app_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_absence")),
    )
    op.create_index(op.f("ix_absence_user_id"), "absence", ["user_id"])
    op.create_index("ix_absence_deputy", "absence", ["deputy_id", "starts_on", "ends_on"])
    op.create_index(
        "ix_human_task_offered",
        "human_task",
        ["status", "role", "district_id", "assignee_id", "due_at", "id"],
    )
    op.create_index("ix_human_task_status_due", "human_task", ["status", "due_at", "id"])
    # Search by the child's name: a prefix range on this index.
    op.create_index("ix_human_task_child_name", "human_task", ["child_name"])


def downgrade() -> None:
    op.drop_index("ix_human_task_child_name", table_name="human_task")
    op.drop_index("ix_human_task_status_due", table_name="human_task")
    op.drop_index("ix_human_task_offered", table_name="human_task")
    op.drop_table("absence")
    op.drop_table("saved_filter")
    op.drop_table("task_draft")
    op.drop_table("login_brake")
