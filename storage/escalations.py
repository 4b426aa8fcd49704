"""Escalations to a human and the outbox of their help-desk webhook deliveries.

Escalating is one transaction: the conversation moves from ``active`` to ``escalated`` by a
conditional UPDATE (so of two concurrent requests exactly one escalates) and the escalation row
is inserted with it.

The webhook is an outbox in the escalation row itself: ``webhook_state`` is ``pending`` until
a delivery succeeds or the attempts run out, and ``webhook_next_at`` says when the next attempt
is due. Any worker may deliver; it first *claims* a due row by pushing ``webhook_next_at`` past
the attempt's own time limit with a conditional UPDATE, so two workers never send the same
attempt, and a worker that dies mid-attempt only delays the next one until the claim lapses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import col, select, update

from storage.db import Database
from storage.errors import Conflict, NotFound
from storage.keys import UserKey
from storage.models import Conversation, Escalation, Message, WebhookDelivery, utcnow
from storage.paging import Page, PagePosition, as_utc, before, page_of
from storage.transcripts import owned_messages

PAYLOAD_MESSAGES = 20  # newest messages copied into the webhook payload
PAYLOAD_MESSAGE_CHARS = 2000  # of each message's text


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """How one delivery attempt went."""

    ok: bool
    status_code: int | None
    error: str | None
    duration_ms: int


class EscalationStore:
    """Creates escalations, lists them, and keeps their webhook outbox."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def escalate(
        self, owner: UserKey, conversation_id: str, reason: str, *, webhook: bool
    ) -> tuple[Escalation, Conversation]:
        """Mark an active conversation of the owner escalated and record why.

        With ``webhook`` the escalation is queued for delivery at once.

        Raises:
            NotFound: the conversation is not the owner's.
            Conflict: the conversation is not active (already escalated, or archived).
        """
        now = utcnow()
        async with self._db.session() as session:
            moved = await session.exec(
                update(Conversation)
                .where(
                    col(Conversation.id) == conversation_id,
                    col(Conversation.tenant) == owner.tenant,
                    col(Conversation.user_id) == owner.user,
                    col(Conversation.status) == "active",
                )
                .values(status="escalated")
            )
            conversation = await session.get(Conversation, conversation_id, populate_existing=True)
            if conversation is None or (conversation.tenant, conversation.user_id) != (
                owner.tenant,
                owner.user,
            ):
                raise NotFound(f"conversation '{conversation_id}'")
            if moved.rowcount != 1:
                raise Conflict(f"conversation '{conversation_id}' is {conversation.status}")
            messages = (
                await session.exec(
                    owned_messages(owner, conversation_id)
                    .order_by(col(Message.created_at).desc(), col(Message.id).desc())
                    .limit(PAYLOAD_MESSAGES)
                )
            ).all()
            escalation = Escalation(
                tenant=owner.tenant,
                user_id=owner.user,
                conversation_id=conversation_id,
                reason=reason,
                created_at=now,
                webhook_state="pending" if webhook else "none",
                webhook_next_at=now if webhook else None,
            )
            escalation.payload = _payload(escalation, conversation, list(messages)[::-1])
            session.add(escalation)
            await session.commit()
        return escalation, conversation

    async def list_for(
        self,
        tenant: str,
        *,
        user: str | None,
        limit: int,
        after: PagePosition | None = None,
    ) -> Page[Escalation]:
        """A tenant's escalations (one user's when ``user`` is given), newest first."""
        query = select(Escalation).where(
            Escalation.tenant == tenant,
            before(col(Escalation.created_at), col(Escalation.id), after),
        )
        if user is not None:
            query = query.where(Escalation.user_id == user)
        query = query.order_by(col(Escalation.created_at).desc(), col(Escalation.id).desc()).limit(
            limit + 1
        )
        async with self._db.session() as session:
            rows = list((await session.exec(query)).all())
        return page_of(rows, limit, lambda row: (row.created_at, row.id))

    # -- webhook outbox ------------------------------------------------------------------------

    async def claim_due(
        self, *, hold_s: float, limit: int = 10, now: datetime | None = None
    ) -> list[Escalation]:
        """Claim pending deliveries that are due: each is held for ``hold_s`` by this caller.

        Returns the claimed rows; a row another caller claimed first is left out.
        """
        now = now or utcnow()
        due = (
            select(Escalation.id, Escalation.webhook_next_at)
            .where(
                Escalation.webhook_state == "pending",
                col(Escalation.webhook_next_at) <= now,
            )
            .order_by(col(Escalation.webhook_next_at))
            .limit(limit)
        )
        claimed: list[Escalation] = []
        async with self._db.session() as session:
            candidates = list((await session.exec(due)).all())
            for escalation_id, next_at in candidates:
                result = await session.exec(
                    update(Escalation)
                    .where(
                        col(Escalation.id) == escalation_id,
                        col(Escalation.webhook_state) == "pending",
                        col(Escalation.webhook_next_at) == next_at,
                    )
                    .values(webhook_next_at=now + timedelta(seconds=hold_s))
                )
                await session.commit()
                if result.rowcount == 1:
                    row = await session.get(Escalation, escalation_id, populate_existing=True)
                    if row is not None:
                        claimed.append(row)
        return claimed

    async def record_attempt(
        self,
        escalation: Escalation,
        *,
        attempt: int,
        url: str,
        result: DeliveryResult,
        retry_at: datetime | None,
    ) -> WebhookDelivery:
        """Record one attempt and move the outbox on: delivered, failed for good (no
        ``retry_at``), or pending again until ``retry_at``."""
        delivery = WebhookDelivery(
            escalation_id=escalation.id,
            tenant=escalation.tenant,
            attempt=attempt,
            url=url[:2000],
            ok=result.ok,
            status_code=result.status_code,
            error=result.error[:2000] if result.error else None,
            duration_ms=result.duration_ms,
        )
        if result.ok:
            values: dict[str, Any] = {"webhook_state": "delivered", "webhook_next_at": None}
        elif retry_at is None:
            values = {"webhook_state": "failed", "webhook_next_at": None}
        else:
            values = {"webhook_state": "pending", "webhook_next_at": as_utc(retry_at)}
        values["webhook_attempts"] = attempt
        async with self._db.session() as session:
            session.add(delivery)
            await session.exec(
                update(Escalation).where(col(Escalation.id) == escalation.id).values(**values)
            )
            await session.commit()
        return delivery

    async def deliveries(self, escalation_id: str) -> list[WebhookDelivery]:
        """Every recorded attempt of one escalation's webhook, first attempt first."""
        query = (
            select(WebhookDelivery)
            .where(WebhookDelivery.escalation_id == escalation_id)
            .order_by(col(WebhookDelivery.attempt))
        )
        async with self._db.session() as session:
            return list((await session.exec(query)).all())


def _payload(
    escalation: Escalation, conversation: Conversation, messages: list[Message]
) -> dict[str, Any]:
    """The webhook body: who escalated what and why, with the conversation's recent messages."""
    return {
        "event": "conversation.escalated",
        "escalation_id": escalation.id,
        "tenant": escalation.tenant,
        "user": escalation.user_id,
        "conversation_id": conversation.id,
        "title": conversation.title,
        "reason": escalation.reason,
        "created_at": _iso(escalation.created_at),
        "messages": [
            {
                "message_id": message.id,
                "role": message.role,
                "text": message.text[:PAYLOAD_MESSAGE_CHARS],
                "created_at": _iso(message.created_at),
            }
            for message in messages
        ],
    }


def _iso(moment: datetime) -> str:
    return as_utc(moment).isoformat(timespec="seconds").replace("+00:00", "Z")
