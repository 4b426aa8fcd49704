"""conversation, usage, confirmation and audit profile

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 06:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The assistant profile a conversation runs under, and the profile usage and audit rows were
# recorded under (None: before profiles existed).
_TABLES = ("conversation", "usage_record", "confirmation", "audit_event")


def upgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("profile", sa.String(length=64), nullable=True))


def downgrade() -> None:
    for table in reversed(_TABLES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("profile")
