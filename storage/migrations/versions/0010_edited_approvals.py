"""approved (edited) parameters of a confirmation; how a decision was made

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 09:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("confirmation", schema=None) as batch_op:
        batch_op.add_column(sa.Column("approved_params", sa.JSON(), nullable=True))
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("via", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("approved_params", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_column("approved_params")
        batch_op.drop_column("via")
    with op.batch_alter_table("confirmation", schema=None) as batch_op:
        batch_op.drop_column("approved_params")
