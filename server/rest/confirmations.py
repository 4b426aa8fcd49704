"""Confirmations: the actions the assistant asked a user to approve, and what became of them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from server.rest.api import ApiCall, ApiRouter
from server.rest.paging import PageQuery, decode_cursor, encode_cursor, page_limit
from storage.confirmation_states import ConfirmationState
from storage.models import Confirmation
from storage.paging import as_utc

router = ApiRouter("confirmations", "Actions waiting for (or decided by) their user.")


class ConfirmationOut(BaseModel):
    """An action the assistant asked to take."""

    token: str = Field(description="the confirmation's id, as in `confirm_request`")
    user: str
    conversation_id: str
    turn_id: str
    action: str
    params: dict[str, Any] = Field(description="the parameters the assistant proposed")
    approved_params: dict[str, Any] | None = Field(
        default=None, description="the parameters the user approved, when they edited them"
    )
    summary: str = Field(description="what the action does (for the approved parameters)")
    status: ConfirmationState
    created_at: datetime
    expires_at: datetime
    decided_at: datetime | None = None
    result: Any = Field(default=None, description="what the action returned, once it ran")
    audit_id: str | None = None


class ConfirmationPage(BaseModel):
    """A page of confirmations, newest first."""

    items: list[ConfirmationOut]
    next_cursor: str | None = Field(default=None, description="absent on the last page")


class ConfirmationQuery(PageQuery):
    status: ConfirmationState | None = Field(default=None, description="only in this state")


class TenantConfirmationQuery(ConfirmationQuery):
    user: str | None = Field(default=None, max_length=200, description="only this user's")


@router.get("/confirmations", response=ConfirmationPage, query=ConfirmationQuery)
async def list_my_confirmations(call: ApiCall[ConfirmationQuery, None]) -> ConfirmationPage:
    """My confirmations, newest first, optionally of one status."""
    return await _page(call, user=call.principal.user)


@router.get(
    "/admin/confirmations", response=ConfirmationPage, query=TenantConfirmationQuery, admin=True
)
async def list_tenant_confirmations(
    call: ApiCall[TenantConfirmationQuery, None],
) -> ConfirmationPage:
    """Confirmations of everyone in my tenant, newest first (administrators)."""
    return await _page(call, user=call.query.user)


async def _page(call: ApiCall[Any, None], *, user: str | None) -> ConfirmationPage:
    query = call.query
    page = await call.rest.activity.confirmations(
        call.principal.tenant,
        user=user,
        status=query.status,
        limit=page_limit(query, call.rest.settings),
        after=decode_cursor("confirmations", query.cursor),
    )
    return ConfirmationPage(
        items=[confirmation_out(row) for row in page.items],
        next_cursor=encode_cursor("confirmations", page.next),
    )


def confirmation_out(row: Confirmation) -> ConfirmationOut:
    execution = row.execution_result or {}
    return ConfirmationOut(
        token=row.token,
        user=row.user_id,
        conversation_id=row.conversation_id,
        turn_id=row.turn_id,
        action=row.action,
        params=row.params,
        approved_params=row.approved_params,
        summary=row.summary,
        status=row.status,
        created_at=as_utc(row.created_at),
        expires_at=as_utc(row.expires_at),
        decided_at=as_utc(row.decided_at) if row.decided_at else None,
        result=execution.get("result") if isinstance(execution, dict) else None,
        audit_id=row.audit_id,
    )
