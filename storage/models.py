"""Parley's SQL tables, as SQLModel classes.

Every row carries ``tenant`` and ``user_id`` so each query can be scoped to its owner; ids are
random hex strings, never sequential, so guessing one reveals nothing. Times are UTC.
Alembic migrations under ``storage/migrations`` create these tables; a change here needs a new
migration (``alembic revision --autogenerate``).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Dialect, Index, Numeric, Text, UniqueConstraint
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel
from sqlmodel.sql.sqltypes import AutoString

from storage.confirmation_states import AuditEventKind, ConfirmationState


def new_id(prefix: str) -> str:
    """A random, unguessable id such as ``c_3f9a...``; the prefix tells the kind at a glance."""
    return f"{prefix}_{secrets.token_hex(12)}"


def utcnow() -> datetime:
    return datetime.now(UTC)


def _time_column(*, nullable: bool = False, index: bool = False) -> Any:
    return Field(
        default_factory=utcnow if not nullable else None,
        sa_column=Column(DateTime(timezone=True), nullable=nullable, index=index),
    )


def _json_column(*, nullable: bool = True) -> Any:
    return Field(default=None, sa_column=Column(JSON, nullable=nullable))


class EnumString(TypeDecorator[StrEnum]):
    """A ``StrEnum`` stored as its plain string value (``VARCHAR``), read back as the member.

    SQLAlchemy's own ``Enum`` type would store member names and, on PostgreSQL, create a type;
    this keeps the column a string, so adding a member needs no migration, and rows still come
    back typed. A value that is not a member raises on the way in and on the way out.
    """

    impl = AutoString
    cache_ok = True

    def __init__(self, enum: type[StrEnum], length: int) -> None:
        super().__init__(length=length)
        self.enum = enum
        self.length = length

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else self.enum(value).value

    def process_result_value(self, value: Any, dialect: Dialect) -> StrEnum | None:
        return None if value is None else self.enum(value)


def _enum_column(enum: type[StrEnum], *, default: StrEnum | None = None) -> Any:
    column: Column[Any] = Column(EnumString(enum, 20), nullable=False)
    if default is None:
        return Field(sa_column=column)
    return Field(default=default, sa_column=column)


class Conversation(SQLModel, table=True):
    """One thread between a user and the assistant."""

    __tablename__ = "conversation"
    __table_args__ = (Index("ix_conversation_owner_updated", "tenant", "user_id", "updated_at"),)

    id: str = Field(default_factory=lambda: new_id("c"), primary_key=True, max_length=40)
    tenant: str = Field(max_length=200)
    user_id: str = Field(max_length=200)
    title: str = Field(default="New conversation", max_length=200)
    status: str = Field(default="active", max_length=20)  # active | archived | escalated
    message_count: int = Field(default=0)
    # The assistant profile it runs under (None: started before profiles existed).
    profile: str | None = Field(default=None, max_length=64)
    created_at: datetime = _time_column()
    updated_at: datetime = _time_column()


class Message(SQLModel, table=True):
    """A transcript entry: a user message or an assistant reply (with the tools it used)."""

    __tablename__ = "message"
    __table_args__ = (
        Index("ix_message_conversation_created", "conversation_id", "created_at"),
        UniqueConstraint("tenant", "user_id", "client_msg_id", name="uq_message_client_msg_id"),
    )

    id: str = Field(default_factory=lambda: new_id("m"), primary_key=True, max_length=40)
    conversation_id: str = Field(foreign_key="conversation.id", max_length=40)
    tenant: str = Field(max_length=200)
    user_id: str = Field(max_length=200)
    role: str = Field(max_length=20)  # user | assistant
    text: str = Field(default="", sa_type=Text)
    client_msg_id: str | None = Field(default=None, max_length=200)
    turn_id: str | None = Field(default=None, max_length=40)
    # For an assistant reply that used tools: one entry per model round that called tools,
    # {"text": ..., "calls": [OpenAI tool_call], "results": [{"tool_call_id", "name", "content",
    # "shown"?}]}, where "shown" is the tool_result frame the tabs were sent for that call.
    # ``text`` holds everything the user saw; what follows the rounds' texts is the final answer.
    tool_rounds: list[dict[str, Any]] | None = _json_column()
    # completed | streaming | cancelled | failed | interrupted
    status: str = Field(default="completed", max_length=20)
    usage: dict[str, Any] | None = _json_column()
    # The sources of the ``[n]`` markers in ``text``: [{n, document_id, title, url?, snippet}].
    citations: list[dict[str, Any]] | None = _json_column()
    created_at: datetime = _time_column()


class UsageRecord(SQLModel, table=True):
    """Tokens and cost of one model call, for budgets and cost analytics."""

    __tablename__ = "usage_record"
    __table_args__ = (
        Index("ix_usage_tenant_created", "tenant", "created_at"),
        Index("ix_usage_conversation", "conversation_id"),
    )

    id: str = Field(default_factory=lambda: new_id("u"), primary_key=True, max_length=40)
    tenant: str = Field(max_length=200)
    user_id: str = Field(max_length=200)
    conversation_id: str = Field(max_length=40)
    turn_id: str = Field(max_length=40)
    message_id: str | None = Field(default=None, max_length=40)
    model: str = Field(max_length=200)
    prompt_tokens: int = Field(default=0)
    completion_tokens: int = Field(default=0)
    total_tokens: int = Field(default=0)
    cost_usd: Decimal = Field(default=Decimal(0), sa_column=Column(Numeric(14, 6), nullable=False))
    estimated: bool = Field(default=False)
    # The profile of the conversation the call was made for.
    profile: str | None = Field(default=None, max_length=64)
    created_at: datetime = _time_column()


class Confirmation(SQLModel, table=True):
    """An action the assistant wants to take, waiting for (or decided by) the user.

    Status moves out of ``pending`` (to approved, rejected, expired or cancelled) by a
    conditional UPDATE, and an approved one once more to executed or failed: that is what makes
    an action run at most once however many tabs press Approve. The allowed moves are listed in
    ``storage.confirmation_states``.
    """

    __tablename__ = "confirmation"
    __table_args__ = (
        Index("ix_confirmation_owner_status", "tenant", "user_id", "status"),
        Index("ix_confirmation_status_expires", "status", "expires_at"),
    )

    token: str = Field(primary_key=True, max_length=64)
    tenant: str = Field(max_length=200)
    user_id: str = Field(max_length=200)
    conversation_id: str = Field(max_length=40)
    turn_id: str = Field(max_length=40)
    call_id: str = Field(max_length=200)
    action: str = Field(max_length=200)
    params: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    summary: str = Field(default="", sa_type=Text)
    # How the card shows each parameter (``confirm_request.fields``), kept so that a tab opened
    # later gets the same card from the snapshot.
    fields: Any = _json_column()
    status: ConfirmationState = _enum_column(ConfirmationState, default=ConfirmationState.PENDING)
    created_at: datetime = _time_column()
    expires_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    decided_at: datetime | None = _time_column(nullable=True)
    decided_by_connection: str | None = Field(default=None, max_length=40)
    execution_result: Any = _json_column()
    audit_id: str | None = Field(default=None, max_length=40)
    # As on the card: the tool source (host app) that will run the action (None for a tool of
    # an in-process pack), and whether the host said it may delete or overwrite data.
    source: str | None = Field(default=None, max_length=100)
    destructive: bool | None = Field(default=None)
    # The profile of the conversation that asked, copied onto the action's audit rows.
    profile: str | None = Field(default=None, max_length=64)
    # The parameters the user approved when they edited them on the card (``params`` stays
    # what the assistant proposed); None when approved as proposed.
    approved_params: Any = _json_column()


class AuditEvent(SQLModel, table=True):
    """One step in the life of an action: requested, decided, executed, failed or refused."""

    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_tenant_created", "tenant", "created_at"),)

    id: str = Field(default_factory=lambda: new_id("a"), primary_key=True, max_length=40)
    tenant: str = Field(max_length=200)
    user_id: str = Field(max_length=200)
    tool: str = Field(max_length=200)
    params: Any = _json_column()
    event: AuditEventKind = _enum_column(AuditEventKind)
    decision: str | None = Field(default=None, max_length=20)
    result: Any = _json_column()
    error: str | None = Field(default=None, sa_type=Text)
    via_ai: bool = Field(default=True)
    # The tool source (host app) of the tool; None for a tool of an in-process pack.
    source: str | None = Field(default=None, max_length=100)
    # The profile of the conversation the tool was called in.
    profile: str | None = Field(default=None, max_length=64)
    confirmation_token: str | None = Field(default=None, max_length=64)
    conversation_id: str | None = Field(default=None, max_length=40)
    turn_id: str | None = Field(default=None, max_length=40)
    created_at: datetime = _time_column()
    # How a decision was made (``DecisionVia``): a ``confirm`` frame or a typed yes or no.
    via: str | None = Field(default=None, max_length=20)
    # The parameters the user approved when they differ from ``params`` (the proposed ones).
    approved_params: Any = _json_column()


class Feedback(SQLModel, table=True):
    """A user's rating of one assistant message; a later rating replaces an earlier one."""

    __tablename__ = "feedback"
    __table_args__ = (UniqueConstraint("tenant", "user_id", "message_id", name="uq_feedback"),)

    id: str = Field(default_factory=lambda: new_id("f"), primary_key=True, max_length=40)
    tenant: str = Field(max_length=200)
    user_id: str = Field(max_length=200)
    message_id: str = Field(max_length=40)
    conversation_id: str = Field(max_length=40)
    rating: str = Field(max_length=10)  # "1".."5", "up" or "down"
    comment: str | None = Field(default=None, max_length=2000)
    created_at: datetime = _time_column()


class ViewExport(SQLModel, table=True):
    """All rows of a table or chart view a tool returned, kept for its CSV export.

    The browser gets the view's first rows only; this row holds every one (up to the export
    limit), with the columns that name them, for ``GET /api/v1/exports/{call_id}.csv``.
    ``columns`` is ``[{"key", "label"}]`` in order; ``rows`` a list of objects by key.
    """

    __tablename__ = "view_export"
    __table_args__ = (
        UniqueConstraint("tenant", "user_id", "call_id", name="uq_view_export"),
        Index("ix_view_export_owner_created", "tenant", "user_id", "created_at"),
    )

    id: str = Field(default_factory=lambda: new_id("x"), primary_key=True, max_length=40)
    tenant: str = Field(max_length=200)
    user_id: str = Field(max_length=200)
    call_id: str = Field(max_length=200)
    conversation_id: str = Field(max_length=40)
    tool: str = Field(max_length=200)
    title: str | None = Field(default=None, max_length=500)
    columns: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    rows: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    total_rows: int = Field(default=0)
    created_at: datetime = _time_column()


class Escalation(SQLModel, table=True):
    """A conversation handed to a human, with the reason the user gave.

    ``payload`` is what the help-desk webhook receives, fixed when the escalation is made so
    every delivery attempt sends the same body. The ``webhook_*`` columns are the delivery's
    outbox state: ``pending`` rows are claimed by whichever worker finds them due.
    """

    __tablename__ = "escalation"
    __table_args__ = (
        Index("ix_escalation_tenant_created", "tenant", "created_at"),
        Index("ix_escalation_webhook_due", "webhook_state", "webhook_next_at"),
    )

    id: str = Field(default_factory=lambda: new_id("e"), primary_key=True, max_length=40)
    tenant: str = Field(max_length=200)
    user_id: str = Field(max_length=200)
    conversation_id: str = Field(foreign_key="conversation.id", max_length=40)
    reason: str = Field(max_length=2000)
    payload: dict[str, Any] | None = _json_column()
    # none (no webhook configured) | pending | delivered | failed
    webhook_state: str = Field(default="none", max_length=20)
    webhook_attempts: int = Field(default=0)
    webhook_next_at: datetime | None = _time_column(nullable=True)
    created_at: datetime = _time_column()


class WebhookDelivery(SQLModel, table=True):
    """One attempt to deliver an escalation to the help-desk webhook, and how it went."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (Index("ix_webhook_delivery_escalation", "escalation_id", "attempt"),)

    id: str = Field(default_factory=lambda: new_id("d"), primary_key=True, max_length=40)
    escalation_id: str = Field(foreign_key="escalation.id", max_length=40)
    tenant: str = Field(max_length=200)
    attempt: int
    url: str = Field(max_length=2000)
    ok: bool = Field(default=False)
    status_code: int | None = Field(default=None)
    error: str | None = Field(default=None, max_length=2000)
    duration_ms: int = Field(default=0)
    created_at: datetime = _time_column()


class KnowledgeCollection(SQLModel, table=True):
    """A named set of documents of one tenant that the assistant may search.

    ``roles`` lists the roles of which a user needs one to search it; empty means every user
    of the tenant.
    """

    __tablename__ = "knowledge_collection"
    __table_args__ = (UniqueConstraint("tenant", "name", name="uq_knowledge_collection"),)

    id: str = Field(default_factory=lambda: new_id("kc"), primary_key=True, max_length=40)
    tenant: str = Field(max_length=200)
    name: str = Field(max_length=100)
    title: str = Field(default="", max_length=200)
    roles: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = _time_column()


class KnowledgeDocument(SQLModel, table=True):
    """One document of a collection, known by the id its owner gave it.

    ``content_hash`` covers the extracted text, the title and the URL: adding the document
    again with the same hash changes nothing.
    """

    __tablename__ = "knowledge_document"
    __table_args__ = (
        UniqueConstraint("tenant", "collection", "document_id", name="uq_knowledge_document"),
    )

    id: str = Field(default_factory=lambda: new_id("kd"), primary_key=True, max_length=40)
    tenant: str = Field(max_length=200)
    collection: str = Field(max_length=100)
    document_id: str = Field(max_length=200)
    title: str = Field(max_length=500)
    url: str | None = Field(default=None, max_length=2000)
    content_hash: str = Field(max_length=64)
    chunk_count: int = Field(default=0)
    created_at: datetime = _time_column()
    updated_at: datetime = _time_column()


class KnowledgeChunk(SQLModel, table=True):
    """A passage of a document: what a search finds and an answer cites.

    The integer key doubles as the full-text index's row id (SQLite FTS5 ``content_rowid``), so
    it must stay stable; chunks are never updated, only deleted and inserted again. The search
    engines' own objects (the FTS5 table, PostgreSQL's ``search_vector`` column and its GIN
    index) are made by the migration, outside these models: see ``storage/knowledge_search.py``.
    """

    __tablename__ = "knowledge_chunk"
    __table_args__ = (
        Index("ix_knowledge_chunk_document", "document_key", "position"),
        Index("ix_knowledge_chunk_scope", "tenant", "collection"),
        # Keys are never reused, so a chunk id seen in an old answer never names another text.
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    document_key: str = Field(foreign_key="knowledge_document.id", max_length=40)
    tenant: str = Field(max_length=200)
    collection: str = Field(max_length=100)
    position: int
    # The headings above the passage, outermost first, joined by " > ".
    heading: str = Field(default="", sa_type=Text)
    text: str = Field(sa_type=Text)
    tokens: int = Field(default=0)
    # The passage's embedding (a JSON list of floats) when an embeddings endpoint is configured.
    embedding: list[float] | None = _json_column()
