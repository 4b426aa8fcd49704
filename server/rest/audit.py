"""The audit trail of actions, for administrators: who asked for what, who decided, what ran."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, Field

from protocol import Decision
from server.rest.api import ApiCall, ApiRouter
from server.rest.errors import invalid
from server.rest.paging import PageQuery, decode_cursor, encode_cursor, page_limit
from storage.activity import AuditFilter
from storage.confirmation_states import AuditEventKind
from storage.models import AuditEvent
from storage.paging import as_utc

router = ApiRouter("audit", "The audit trail of the assistant's actions.")


class AuditEventOut(BaseModel):
    """One step in the life of an action."""

    audit_id: str
    user: str
    tool: str
    event: AuditEventKind
    decision: str | None = Field(default=None, description="`approve` or `reject`")
    via: str | None = Field(
        default=None, description="how a decision was made: `button` or `typed` (a yes/no message)"
    )
    params: Any = Field(default=None, description="the parameters the assistant proposed")
    approved_params: Any = Field(
        default=None, description="the parameters the user approved, when they edited them"
    )
    result: Any = None
    error: str | None = None
    via_ai: bool = Field(description="the assistant proposed it (as opposed to the host app)")
    source: str | None = Field(
        default=None, description="the tool source (host app) of the tool; unset for a built-in"
    )
    confirmation_token: str | None = None
    conversation_id: str | None = None
    turn_id: str | None = None
    created_at: datetime


class AuditPage(BaseModel):
    """A page of audit events, newest first."""

    items: list[AuditEventOut]
    next_cursor: str | None = Field(default=None, description="absent on the last page")


class AuditQuery(PageQuery):
    user: str | None = Field(default=None, max_length=200, description="only this user's")
    tool: str | None = Field(default=None, max_length=200, description="only this tool's")
    event: AuditEventKind | None = Field(default=None, description="only this kind of step")
    decision: Decision | None = Field(default=None, description="only this decision")
    since: AwareDatetime | None = Field(
        default=None, description="from this time on (ISO 8601 with offset)"
    )
    until: AwareDatetime | None = Field(
        default=None, description="before this time (ISO 8601 with offset)"
    )


@router.get("/admin/audit", response=AuditPage, query=AuditQuery, admin=True)
async def list_audit_events(call: ApiCall[AuditQuery, None]) -> AuditPage:
    """Audit events of my tenant, newest first, with filters (administrators)."""
    query = call.query
    if query.since and query.until and query.since >= query.until:
        raise invalid("until", "must be later than 'since'")
    page = await call.rest.activity.audit_events(
        call.principal.tenant,
        AuditFilter(
            user=query.user,
            tool=query.tool,
            event=query.event,
            decision=query.decision.value if query.decision else None,
            since=query.since,
            until=query.until,
        ),
        limit=page_limit(query, call.rest.settings),
        after=decode_cursor("audit", query.cursor),
    )
    return AuditPage(
        items=[audit_out(row) for row in page.items],
        next_cursor=encode_cursor("audit", page.next),
    )


def audit_out(row: AuditEvent) -> AuditEventOut:
    return AuditEventOut(
        audit_id=row.id,
        user=row.user_id,
        tool=row.tool,
        event=row.event,
        decision=row.decision,
        via=row.via,
        params=row.params,
        approved_params=row.approved_params,
        result=row.result,
        error=row.error,
        via_ai=row.via_ai,
        source=row.source,
        confirmation_token=row.confirmation_token,
        conversation_id=row.conversation_id,
        turn_id=row.turn_id,
        created_at=as_utc(row.created_at),
    )
