"""view exports and confirmation fields

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 06:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Every row of a table or chart view a tool returned, for its CSV export.
    op.create_table(
        "view_export",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant", sa.String(length=200), nullable=False),
        sa.Column("user_id", sa.String(length=200), nullable=False),
        sa.Column("call_id", sa.String(length=200), nullable=False),
        sa.Column("conversation_id", sa.String(length=40), nullable=False),
        sa.Column("tool", sa.String(length=200), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=True),
        sa.Column("columns", sa.JSON(), nullable=False),
        sa.Column("rows", sa.JSON(), nullable=False),
        sa.Column("total_rows", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant", "user_id", "call_id", name="uq_view_export"),
    )
    with op.batch_alter_table("view_export", schema=None) as batch_op:
        batch_op.create_index(
            "ix_view_export_owner_created", ["tenant", "user_id", "created_at"], unique=False
        )
    # How a confirmation card shows each parameter, for the snapshot of a tab opened later.
    with op.batch_alter_table("confirmation", schema=None) as batch_op:
        batch_op.add_column(sa.Column("fields", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("confirmation", schema=None) as batch_op:
        batch_op.drop_column("fields")
    with op.batch_alter_table("view_export", schema=None) as batch_op:
        batch_op.drop_index("ix_view_export_owner_created")
    op.drop_table("view_export")
