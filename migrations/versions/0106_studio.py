"""the analysts' studio: drafts of process definitions

Revision ID: 0106
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0106"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "studio_draft",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("process_key", sa.String(length=255), nullable=True),
        sa.Column("base_version_id", sa.Integer(), nullable=True),
        sa.Column("bpmn_name", sa.String(length=255), nullable=False),
        sa.Column("bpmn_xml", sa.Text(), nullable=False),
        sa.Column("dmn_files", sa.JSON(), nullable=False),
        sa.Column("forms", sa.JSON(), nullable=False),
        sa.Column("rules_yaml", sa.Text(), nullable=False),
        sa.Column("lacks", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("deployed_version_id", sa.Integer(), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["base_version_id"],
            ["process_version.id"],
            name=op.f("fk_studio_draft_base_version_id_process_version"),
        ),
        sa.ForeignKeyConstraint(
            ["deployed_version_id"],
            ["process_version.id"],
            name=op.f("fk_studio_draft_deployed_version_id_process_version"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["app_user.id"], name=op.f("fk_studio_draft_created_by_id_app_user")
        ),
        sa.ForeignKeyConstraint(
            ["updated_by_id"], ["app_user.id"], name=op.f("fk_studio_draft_updated_by_id_app_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_studio_draft")),
    )
    op.create_index(
        op.f("ix_studio_draft_process_key"), "studio_draft", ["process_key"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_studio_draft_process_key"), table_name="studio_draft")
    op.drop_table("studio_draft")
