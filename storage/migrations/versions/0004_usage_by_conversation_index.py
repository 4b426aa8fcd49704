"""usage by conversation index

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 20:15:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The conversation budget sums a conversation's usage before every model call; without
    # this index that is a scan of everything the tenant ever spent.
    with op.batch_alter_table("usage_record", schema=None) as batch_op:
        batch_op.create_index("ix_usage_conversation", ["conversation_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("usage_record", schema=None) as batch_op:
        batch_op.drop_index("ix_usage_conversation")
