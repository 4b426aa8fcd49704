"""confirmation source and destructive

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 06:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # What the card said of a pending action, kept so a tab that connects later shows the same:
    # the host app that will carry it out, and whether the host called it destructive.
    with op.batch_alter_table("confirmation", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("destructive", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("confirmation", schema=None) as batch_op:
        batch_op.drop_column("destructive")
        batch_op.drop_column("source")
