"""knowledge collections, documents and chunks, with each database's full-text index

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 06:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from storage import knowledge_search

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "knowledge_collection",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant", "name", name="uq_knowledge_collection"),
    )
    op.create_table(
        "knowledge_document",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant", sa.String(length=200), nullable=False),
        sa.Column("collection", sa.String(length=100), nullable=False),
        sa.Column("document_id", sa.String(length=200), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=True),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("chunk_count", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant", "collection", "document_id", name="uq_knowledge_document"),
    )
    op.create_table(
        "knowledge_chunk",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("document_key", sa.String(length=40), nullable=False),
        sa.Column("tenant", sa.String(length=200), nullable=False),
        sa.Column("collection", sa.String(length=100), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("heading", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("tokens", sa.Integer(), nullable=False),
        sa.Column("embedding", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["document_key"], ["knowledge_document.id"]),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("knowledge_chunk", schema=None) as batch_op:
        batch_op.create_index(
            "ix_knowledge_chunk_document", ["document_key", "position"], unique=False
        )
        batch_op.create_index("ix_knowledge_chunk_scope", ["tenant", "collection"], unique=False)
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.add_column(sa.Column("citations", sa.JSON(), nullable=True))
    # The full-text index is each database's own: FTS5 on SQLite, tsvector + GIN on PostgreSQL.
    for statement in _statements(
        sqlite=knowledge_search.SQLITE_DDL, postgresql=knowledge_search.POSTGRES_DDL
    ):
        op.execute(statement)


def downgrade() -> None:
    for statement in _statements(
        sqlite=knowledge_search.SQLITE_DROP, postgresql=knowledge_search.POSTGRES_DROP
    ):
        op.execute(statement)
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_column("citations")
    op.drop_table("knowledge_chunk")
    op.drop_table("knowledge_document")
    op.drop_table("knowledge_collection")


def _statements(**by_dialect: tuple[str, ...]) -> tuple[str, ...]:
    # Another database gets the tables but no full-text index; its searches find nothing.
    return by_dialect.get(op.get_bind().dialect.name, ())
