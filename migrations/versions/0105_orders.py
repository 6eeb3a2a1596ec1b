"""orders of the head: registers, yearly counters, templates, orders, signing delegations

Revision ID: 0105
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0105"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "order_register",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name_kk", sa.String(length=200), nullable=False),
        sa.Column("name_ru", sa.String(length=200), nullable=False),
        sa.Column("pattern", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_order_register")),
    )
    op.create_table(
        "order_counter",
        sa.Column("register_code", sa.String(length=32), nullable=False),
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["register_code"],
            ["order_register.code"],
            name=op.f("fk_order_counter_register_code_order_register"),
        ),
        sa.PrimaryKeyConstraint("register_code", "year", name=op.f("pk_order_counter")),
    )
    op.create_table(
        "order_template",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("register_code", sa.String(length=32), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["register_code"],
            ["order_register.code"],
            name=op.f("fk_order_template_register_code_order_register"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_template")),
        sa.UniqueConstraint("code", "version", name=op.f("uq_order_template_code")),
    )
    with op.batch_alter_table("order_template", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_order_template_code"), ["code"], unique=False)

    op.create_table(
        "signing_delegation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("head_id", sa.Integer(), nullable=False),
        sa.Column("deputy_id", sa.Integer(), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["deputy_id"], ["app_user.id"], name=op.f("fk_signing_delegation_deputy_id_app_user")
        ),
        sa.ForeignKeyConstraint(
            ["head_id"], ["app_user.id"], name=op.f("fk_signing_delegation_head_id_app_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signing_delegation")),
    )
    with op.batch_alter_table("signing_delegation", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_signing_delegation_deputy_id"), ["deputy_id"], unique=False
        )

    op.create_table(
        "department_order",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("register_code", sa.String(length=32), nullable=False),
        sa.Column("template_id", sa.Integer(), nullable=False),
        sa.Column("instance_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.Column("drafted_by_id", sa.Integer(), nullable=False),
        sa.Column("signed_by_id", sa.Integer(), nullable=True),
        sa.Column("on_behalf_of_id", sa.Integer(), nullable=True),
        sa.Column("delegation_id", sa.Integer(), nullable=True),
        sa.Column("year", sa.Integer(), nullable=True),
        sa.Column("seq", sa.Integer(), nullable=True),
        sa.Column("number", sa.String(length=40), nullable=True),
        sa.Column("signed_on", sa.Date(), nullable=True),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("pdf", sa.LargeBinary(), nullable=True),
        sa.Column("pdf_sha256", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["delegation_id"],
            ["signing_delegation.id"],
            name=op.f("fk_department_order_delegation_id_signing_delegation"),
        ),
        sa.ForeignKeyConstraint(
            ["drafted_by_id"],
            ["app_user.id"],
            name=op.f("fk_department_order_drafted_by_id_app_user"),
        ),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["process_instance.id"],
            name=op.f("fk_department_order_instance_id_process_instance"),
        ),
        sa.ForeignKeyConstraint(
            ["on_behalf_of_id"],
            ["app_user.id"],
            name=op.f("fk_department_order_on_behalf_of_id_app_user"),
        ),
        sa.ForeignKeyConstraint(
            ["register_code"],
            ["order_register.code"],
            name=op.f("fk_department_order_register_code_order_register"),
        ),
        sa.ForeignKeyConstraint(
            ["signed_by_id"],
            ["app_user.id"],
            name=op.f("fk_department_order_signed_by_id_app_user"),
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["order_template.id"],
            name=op.f("fk_department_order_template_id_order_template"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_department_order")),
        sa.UniqueConstraint(
            "register_code", "year", "seq", name=op.f("uq_department_order_register_code")
        ),
    )
    with op.batch_alter_table("department_order", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_department_order_case_id"), ["case_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_department_order_instance_id"), ["instance_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_department_order_pdf_sha256"), ["pdf_sha256"], unique=False
        )
        batch_op.create_index("ix_department_order_status", ["status", "created_at"], unique=False)

    op.create_table(
        "order_step",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("on_behalf_of", sa.String(length=150), nullable=True),
        sa.Column("comments", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["app_user.id"], name=op.f("fk_order_step_actor_id_app_user")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["department_order.id"],
            name=op.f("fk_order_step_order_id_department_order"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_step")),
    )
    with op.batch_alter_table("order_step", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_order_step_order_id"), ["order_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("order_step", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_order_step_order_id"))

    op.drop_table("order_step")
    with op.batch_alter_table("department_order", schema=None) as batch_op:
        batch_op.drop_index("ix_department_order_status")
        batch_op.drop_index(batch_op.f("ix_department_order_pdf_sha256"))
        batch_op.drop_index(batch_op.f("ix_department_order_instance_id"))
        batch_op.drop_index(batch_op.f("ix_department_order_case_id"))

    op.drop_table("department_order")
    with op.batch_alter_table("signing_delegation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_signing_delegation_deputy_id"))

    op.drop_table("signing_delegation")
    with op.batch_alter_table("order_template", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_order_template_code"))

    op.drop_table("order_template")
    op.drop_table("order_counter")
    op.drop_table("order_register")
