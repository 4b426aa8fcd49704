"""Paged reads of confirmations and the audit trail, for the REST API.

Writes and state changes of both tables live in ``ConfirmationStore``; this module only lists
them, newest first, always within one tenant and, unless the caller is an administrator,
within one user.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select

from storage.confirmation_states import AuditEventKind, ConfirmationState
from storage.db import Database
from storage.models import AuditEvent, Confirmation
from storage.paging import Page, PagePosition, as_utc, before, page_of


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which audit events to list; every field left None matches everything."""

    user: str | None = None
    tool: str | None = None
    event: AuditEventKind | None = None
    decision: str | None = None
    since: datetime | None = None
    until: datetime | None = None


class ActivityStore:
    """Lists confirmations and audit events."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def confirmations(
        self,
        tenant: str,
        *,
        user: str | None,
        status: ConfirmationState | None,
        limit: int,
        after: PagePosition | None = None,
    ) -> Page[Confirmation]:
        """A tenant's confirmations (one user's when ``user`` is given), newest first."""
        query = select(Confirmation).where(
            Confirmation.tenant == tenant,
            before(col(Confirmation.created_at), col(Confirmation.token), after),
        )
        if user is not None:
            query = query.where(Confirmation.user_id == user)
        if status is not None:
            query = query.where(Confirmation.status == status)
        query = query.order_by(
            col(Confirmation.created_at).desc(), col(Confirmation.token).desc()
        ).limit(limit + 1)
        async with self._db.session() as session:
            rows = list((await session.exec(query)).all())
        return page_of(rows, limit, lambda row: (row.created_at, row.token))

    async def audit_events(
        self,
        tenant: str,
        matching: AuditFilter,
        *,
        limit: int,
        after: PagePosition | None = None,
    ) -> Page[AuditEvent]:
        """A tenant's audit events that match the filter, newest first; ``until`` is exclusive."""
        query = select(AuditEvent).where(
            AuditEvent.tenant == tenant,
            before(col(AuditEvent.created_at), col(AuditEvent.id), after),
        )
        if matching.user is not None:
            query = query.where(AuditEvent.user_id == matching.user)
        if matching.tool is not None:
            query = query.where(AuditEvent.tool == matching.tool)
        if matching.event is not None:
            query = query.where(AuditEvent.event == matching.event)
        if matching.decision is not None:
            query = query.where(AuditEvent.decision == matching.decision)
        if matching.since is not None:
            query = query.where(col(AuditEvent.created_at) >= as_utc(matching.since))
        if matching.until is not None:
            query = query.where(col(AuditEvent.created_at) < as_utc(matching.until))
        query = query.order_by(col(AuditEvent.created_at).desc(), col(AuditEvent.id).desc()).limit(
            limit + 1
        )
        async with self._db.session() as session:
            rows = list((await session.exec(query)).all())
        return page_of(rows, limit, lambda row: (row.created_at, row.id))
