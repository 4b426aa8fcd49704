"""Confirmations and the audit trail in SQL.

The one rule that matters here: a confirmation leaves a state only through ``transition``, a
single conditional UPDATE (``... WHERE token = :token AND status = :expected``). Of any number
of concurrent callers, across tabs and workers, exactly one sees its row change; that caller
alone may act on the decision. ``transition`` takes only the moves listed in
``storage.confirmation_states.TRANSITIONS``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlmodel import col, select, update

from storage.confirmation_states import AuditEventKind, ConfirmationState, check_transition
from storage.db import Database
from storage.keys import UserKey
from storage.models import AuditEvent, Confirmation, utcnow


class ConfirmationStore:
    """Reads and moves confirmations; writes audit events."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, confirmation: Confirmation, audit: AuditEvent) -> Confirmation:
        """Store a new pending confirmation together with its ``requested`` audit event."""
        async with self._db.session() as session:
            session.add(confirmation)
            session.add(audit)
            await session.commit()
        return confirmation

    async def get(self, token: str) -> Confirmation | None:
        """The confirmation with ``token``, whoever owns it (callers check ownership)."""
        async with self._db.session() as session:
            return await session.get(Confirmation, token)

    async def transition(
        self, token: str, expected: ConfirmationState, new: ConfirmationState, **values: Any
    ) -> Confirmation | None:
        """Move ``token`` from ``expected`` to ``new`` if it is still ``expected``, setting
        ``values`` (other columns) in the same UPDATE.

        Returns the updated row, or None when another caller moved it first.

        Raises:
            RuntimeError: ``expected`` -> ``new`` is not an allowed move, or ``values`` tries to
                set the status itself; nothing is written.
        """
        check_transition(expected, new)
        if "status" in values:
            raise RuntimeError("the status is set by 'new', not among the other values")
        values["status"] = new
        async with self._db.session() as session:
            result = await session.exec(
                update(Confirmation)
                .where(col(Confirmation.token) == token, col(Confirmation.status) == expected)
                .values(**values)
            )
            await session.commit()
            if result.rowcount != 1:
                return None
            row = await session.get(Confirmation, token, populate_existing=True)
        return row

    async def pending_for(
        self, owner: UserKey, *, now: datetime | None = None
    ) -> list[Confirmation]:
        """The owner's confirmations still waiting for a decision and not yet expired."""
        query = (
            select(Confirmation)
            .where(
                Confirmation.tenant == owner.tenant,
                Confirmation.user_id == owner.user,
                Confirmation.status == ConfirmationState.PENDING,
                col(Confirmation.expires_at) > (now or utcnow()),
            )
            .order_by(col(Confirmation.created_at))
        )
        async with self._db.session() as session:
            return list((await session.exec(query)).all())

    async def pending_in(
        self, owner: UserKey, conversation_id: str, *, now: datetime | None = None, limit: int = 50
    ) -> list[Confirmation]:
        """The owner's undecided, unexpired confirmations in one conversation, oldest first
        (at most ``limit``)."""
        query = (
            select(Confirmation)
            .where(
                Confirmation.tenant == owner.tenant,
                Confirmation.user_id == owner.user,
                Confirmation.conversation_id == conversation_id,
                Confirmation.status == ConfirmationState.PENDING,
                col(Confirmation.expires_at) > (now or utcnow()),
            )
            .order_by(col(Confirmation.created_at))
            .limit(limit)
        )
        async with self._db.session() as session:
            return list((await session.exec(query)).all())

    async def overdue(
        self, *, now: datetime | None = None, limit: int = 100
    ) -> Sequence[Confirmation]:
        """Pending confirmations past their expiry, of any owner (for the sweeper)."""
        query = (
            select(Confirmation)
            .where(
                Confirmation.status == ConfirmationState.PENDING,
                col(Confirmation.expires_at) <= (now or utcnow()),
            )
            .limit(limit)
        )
        async with self._db.session() as session:
            return list((await session.exec(query)).all())

    async def list_for(
        self,
        tenant: str,
        *,
        user: str | None = None,
        status: ConfirmationState | None = None,
        limit: int = 50,
        before: datetime | None = None,
    ) -> list[Confirmation]:
        """A tenant's confirmations (one user's when ``user`` is given), newest first."""
        query = select(Confirmation).where(Confirmation.tenant == tenant)
        if user is not None:
            query = query.where(Confirmation.user_id == user)
        if status is not None:
            query = query.where(Confirmation.status == status)
        if before is not None:
            query = query.where(col(Confirmation.created_at) < before)
        query = query.order_by(col(Confirmation.created_at).desc()).limit(limit)
        async with self._db.session() as session:
            return list((await session.exec(query)).all())

    async def audit(self, event: AuditEvent) -> str:
        async with self._db.session() as session:
            session.add(event)
            await session.commit()
        return event.id

    async def audit_events(
        self,
        tenant: str,
        *,
        user: str | None = None,
        tool: str | None = None,
        event: AuditEventKind | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 50,
    ) -> list[AuditEvent]:
        """A tenant's audit trail with optional filters, newest first."""
        query = select(AuditEvent).where(AuditEvent.tenant == tenant)
        if user is not None:
            query = query.where(AuditEvent.user_id == user)
        if tool is not None:
            query = query.where(AuditEvent.tool == tool)
        if event is not None:
            query = query.where(AuditEvent.event == event)
        if since is not None:
            query = query.where(col(AuditEvent.created_at) >= since)
        if until is not None:
            query = query.where(col(AuditEvent.created_at) < until)
        query = query.order_by(col(AuditEvent.created_at).desc()).limit(limit)
        async with self._db.session() as session:
            return list((await session.exec(query)).all())
