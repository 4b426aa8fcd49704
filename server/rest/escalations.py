"""Escalating a conversation to a human, and the administrators' list of escalations.

Escalating marks the conversation ``escalated`` and stores an ``escalation`` row (one SQL
transaction), sends ``conversation_updated`` to every tab of the user, and, when a help-desk
webhook is configured, queues its delivery (``server.rest.webhooks``).
"""

from __future__ import annotations

from datetime import datetime
from http import HTTPStatus
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from server.rest.api import ApiCall, ApiRouter
from server.rest.conversations import publish_update
from server.rest.errors import ApiError, RestErrorCode, not_found
from server.rest.paging import PageQuery, decode_cursor, encode_cursor, page_limit
from storage.errors import Conflict, NotFound
from storage.models import Escalation
from storage.paging import as_utc

router = ApiRouter("escalations", "Handing a conversation over to a human.")


class EscalateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)
    ] = Field(description="why a human should take over, in the user's words")


class EscalationOut(BaseModel):
    """An escalation and where its help-desk delivery stands."""

    escalation_id: str
    conversation_id: str
    user: str
    reason: str
    created_at: datetime
    webhook: str = Field(
        description="`none` (no webhook configured), `pending`, `delivered` or `failed`"
    )
    webhook_attempts: int


class EscalationPage(BaseModel):
    """A page of escalations, newest first."""

    items: list[EscalationOut]
    next_cursor: str | None = Field(default=None, description="absent on the last page")


class EscalationListQuery(PageQuery):
    user: str | None = Field(default=None, max_length=200, description="only this user's")


@router.post(
    "/conversations/{conversation_id}/escalate",
    response=EscalationOut,
    body=EscalateIn,
    status=HTTPStatus.CREATED,
    errors=(404, 409),
)
async def escalate_conversation(call: ApiCall[None, EscalateIn]) -> EscalationOut:
    """Hand one of my conversations to a human.

    The conversation's status becomes `escalated`, every tab of mine gets a
    `conversation_updated` frame, and the configured help-desk webhook is called (signed, and
    retried until it answers 2xx). Only an active conversation can be escalated (409 otherwise).
    """
    conversation_id = call.path("conversation_id")
    webhook = call.rest.webhook
    try:
        escalation, conversation = await call.rest.escalations.escalate(
            call.owner, conversation_id, call.body.reason, webhook=webhook.configured
        )
    except NotFound:
        raise not_found("conversation", conversation_id) from None
    except Conflict as exc:
        raise ApiError(HTTPStatus.CONFLICT, RestErrorCode.CONFLICT, str(exc)) from None
    webhook.kick()
    await publish_update(call.rest, call.owner, conversation)
    return escalation_out(escalation)


@router.get("/admin/escalations", response=EscalationPage, query=EscalationListQuery, admin=True)
async def list_escalations(call: ApiCall[EscalationListQuery, None]) -> EscalationPage:
    """Escalations in my tenant, newest first (administrators)."""
    page = await call.rest.escalations.list_for(
        call.principal.tenant,
        user=call.query.user,
        limit=page_limit(call.query, call.rest.settings),
        after=decode_cursor("escalations", call.query.cursor),
    )
    return EscalationPage(
        items=[escalation_out(row) for row in page.items],
        next_cursor=encode_cursor("escalations", page.next),
    )


def escalation_out(row: Escalation) -> EscalationOut:
    return EscalationOut(
        escalation_id=row.id,
        conversation_id=row.conversation_id,
        user=row.user_id,
        reason=row.reason,
        created_at=as_utc(row.created_at),
        webhook=row.webhook_state,
        webhook_attempts=row.webhook_attempts,
    )
