"""Conversations, messages and usage in SQL, always scoped to their owner.

Every method takes the owner (tenant and user) and filters on it, so an id that belongs to
somebody else behaves exactly like an id that does not exist.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select, update
from sqlmodel.sql.expression import SelectOfScalar

from storage.db import Database
from storage.errors import NotFound
from storage.keys import UserKey
from storage.models import Conversation, Message, UsageRecord, utcnow

TITLE_CHARS = 60

NOTE_ROLE = "note"
"""The role of a transcript line about the conversation itself (a hand-off to another
profile): shown to the user, never sent to the model, not counted as a message."""


class TranscriptStore:
    """Reads and writes the transcript tables for the turn engine and the REST API."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # -- conversations -------------------------------------------------------------------------

    async def conversation(self, owner: UserKey, conversation_id: str) -> Conversation:
        """The owner's conversation.

        Raises:
            NotFound: no such conversation for this owner.
        """
        async with self._db.session() as session:
            found = await session.get(Conversation, conversation_id)
        if found is None or not _owned(found, owner):
            raise NotFound(f"conversation '{conversation_id}'")
        return found

    async def create_conversation(
        self, owner: UserKey, title: str | None = None, profile: str | None = None
    ) -> Conversation:
        conversation = Conversation(
            tenant=owner.tenant,
            user_id=owner.user,
            title=_title(title or "New conversation"),
            profile=profile,
        )
        async with self._db.session() as session:
            session.add(conversation)
            await session.commit()
        return conversation

    async def set_profile(self, owner: UserKey, conversation_id: str, profile: str) -> None:
        """Move the owner's conversation to another profile (a hand-off).

        Raises:
            NotFound: no such conversation for this owner.
        """
        async with self._db.session() as session:
            result = await session.exec(
                update(Conversation)
                .where(
                    col(Conversation.id) == conversation_id,
                    col(Conversation.tenant) == owner.tenant,
                    col(Conversation.user_id) == owner.user,
                )
                .values(profile=profile)
            )
            await session.commit()
        if result.rowcount == 0:
            raise NotFound(f"conversation '{conversation_id}'")

    async def list_conversations(
        self, owner: UserKey, *, limit: int = 20, include_archived: bool = False
    ) -> list[Conversation]:
        """The owner's conversations, most recently active first."""
        query = (
            select(Conversation)
            .where(Conversation.tenant == owner.tenant, Conversation.user_id == owner.user)
            .order_by(col(Conversation.updated_at).desc(), col(Conversation.id).desc())
            .limit(limit)
        )
        if not include_archived:
            query = query.where(Conversation.status != "archived")
        async with self._db.session() as session:
            return list((await session.exec(query)).all())

    # -- messages ------------------------------------------------------------------------------

    async def add_user_message(
        self,
        owner: UserKey,
        conversation_id: str | None,
        *,
        text: str,
        client_msg_id: str,
        profile: str | None = None,
    ) -> tuple[Conversation, Message, bool]:
        """Store a user message, creating the conversation when ``conversation_id`` is None
        (bound to ``profile``).

        Returns the conversation, the message and whether it was new: a ``client_msg_id`` seen
        before returns the message stored then, so a resend is harmless.

        Raises:
            NotFound: ``conversation_id`` is not one of the owner's conversations.
        """
        earlier = await self.message_by_client_msg_id(owner, client_msg_id)
        if earlier is not None:
            return await self.conversation(owner, earlier.conversation_id), earlier, False
        if conversation_id is None:
            conversation = await self.create_conversation(owner, title=text, profile=profile)
        else:
            conversation = await self.conversation(owner, conversation_id)
        message = Message(
            conversation_id=conversation.id,
            tenant=owner.tenant,
            user_id=owner.user,
            role="user",
            text=text,
            client_msg_id=client_msg_id,
        )
        async with self._db.session() as session:
            session.add(message)
            try:
                await _touch(session, conversation.id, added=1)
                await session.commit()
            except IntegrityError:
                # Two workers raced on the same resend; the other one stored it first.
                await session.rollback()
                earlier = await self.message_by_client_msg_id(owner, client_msg_id)
                if earlier is None:
                    raise
                return conversation, earlier, False
        return conversation, message, True

    async def add_note(
        self, owner: UserKey, conversation_id: str, text: str, *, turn_id: str | None = None
    ) -> Message:
        """Keep a note in the conversation's transcript, so that a tab rebuilding from a
        snapshot shows it like the tabs that saw it happen; ``turn_id`` is the turn it came
        from. It neither counts as a message nor moves the conversation's activity time.
        """
        note = Message(
            conversation_id=conversation_id,
            tenant=owner.tenant,
            user_id=owner.user,
            role=NOTE_ROLE,
            text=text,
            turn_id=turn_id,
        )
        async with self._db.session() as session:
            session.add(note)
            await session.commit()
        return note

    async def message_by_client_msg_id(self, owner: UserKey, client_msg_id: str) -> Message | None:
        query = owned_messages(owner).where(Message.client_msg_id == client_msg_id)
        async with self._db.session() as session:
            return (await session.exec(query)).first()

    async def message(self, owner: UserKey, message_id: str) -> Message:
        """The owner's message.

        Raises:
            NotFound: no such message for this owner.
        """
        async with self._db.session() as session:
            found = await session.get(Message, message_id)
        if found is None or found.tenant != owner.tenant or found.user_id != owner.user:
            raise NotFound(f"message '{message_id}'")
        return found

    async def start_assistant_message(
        self, owner: UserKey, conversation_id: str, turn_id: str, message_id: str
    ) -> Message:
        """An empty assistant message in state ``streaming``; its text is saved when the turn
        ends, and meanwhile lives in the turn's partial-text key in Redis."""
        message = _assistant_message(owner, conversation_id, turn_id, message_id, "streaming")
        async with self._db.session() as session:
            session.add(message)
            await _touch(session, conversation_id, added=1)
            await session.commit()
        return message

    async def finish_assistant_message(
        self,
        message_id: str,
        *,
        text: str,
        status: str,
        tool_rounds: list[dict[str, Any]] | None = None,
        usage: dict[str, Any] | None = None,
        citations: list[dict[str, Any]] | None = None,
    ) -> None:
        """Save the final text and status of an assistant message (and the sources it cites)."""
        values: dict[str, Any] = {"text": text, "status": status}
        if tool_rounds:
            values["tool_rounds"] = tool_rounds
        if citations:
            values["citations"] = citations
        if usage is not None:
            values["usage"] = usage
        async with self._db.session() as session:
            query = update(Message).where(col(Message.id) == message_id).values(**values)
            await session.exec(query)
            await session.commit()

    async def interrupt_assistant_message(
        self, owner: UserKey, conversation_id: str, turn_id: str, message_id: str, text: str
    ) -> bool:
        """End the reply of a turn whose worker died as ``interrupted``, keeping its text.

        Only a message still ``streaming`` changes, so a sweeper racing a worker that did
        finish cannot overwrite the real ending. A worker that died after claiming the turn
        but before writing its reply leaves no message at all: an ``interrupted`` one takes
        its place, so that the transcript, like the tabs, shows the turn ended.

        Returns:
            True when the reply was ended here; False when it had ended already (or its
            conversation is gone).
        """
        async with self._db.session() as session:
            result = await session.exec(
                update(Message)
                .where(col(Message.id) == message_id, col(Message.status) == "streaming")
                .values(text=text, status="interrupted")
            )
            if result.rowcount:
                await session.commit()
                return True
            if await session.get(Message, message_id) is not None:
                return False
            conversation = await session.get(Conversation, conversation_id)
            if conversation is None or (conversation.tenant, conversation.user_id) != (
                owner.tenant,
                owner.user,
            ):
                return False
            session.add(
                _assistant_message(
                    owner, conversation_id, turn_id, message_id, "interrupted", text=text
                )
            )
            await _touch(session, conversation_id, added=1)
            try:
                await session.commit()
            except IntegrityError:
                return False  # its worker wrote the row after all: that turn ends itself
        return True

    async def recent_messages(
        self, owner: UserKey, conversation_id: str, *, limit: int
    ) -> list[Message]:
        """The newest ``limit`` messages of a conversation, oldest first."""
        query = (
            owned_messages(owner, conversation_id)
            .order_by(col(Message.created_at).desc(), col(Message.id).desc())
            .limit(limit)
        )
        async with self._db.session() as session:
            newest_first = list((await session.exec(query)).all())
        return newest_first[::-1]

    async def messages_since(
        self, owner: UserKey, conversation_id: str, since: datetime, *, limit: int
    ) -> list[Message]:
        """Messages of a conversation created at or after ``since``, oldest first."""
        query = (
            owned_messages(owner, conversation_id)
            .where(col(Message.created_at) >= since)
            .order_by(col(Message.created_at), col(Message.id))
            .limit(limit)
        )
        async with self._db.session() as session:
            return list((await session.exec(query)).all())

    async def save_partial_text(self, message_id: str, text: str) -> None:
        """Keep a streaming reply's text so far in SQL (the embedded store dies with its
        process, so this copy is what survives a crash there)."""
        async with self._db.session() as session:
            await session.exec(
                update(Message)
                .where(col(Message.id) == message_id, col(Message.status) == "streaming")
                .values(text=text)
            )
            await session.commit()

    async def interrupt_orphans(self) -> int:
        """Mark every reply still ``streaming`` as ``interrupted``, keeping its text.

        Only for a single-process deployment starting up: no other worker can be running
        those turns, so any left streaming belonged to a process that died.
        """
        async with self._db.session() as session:
            result = await session.exec(
                update(Message)
                .where(col(Message.status) == "streaming")
                .values(status="interrupted")
            )
            await session.commit()
        return int(result.rowcount or 0)

    async def streaming_messages(self, owner: UserKey) -> Sequence[Message]:
        """Assistant messages of the owner still marked ``streaming``."""
        query = owned_messages(owner).where(Message.status == "streaming")
        async with self._db.session() as session:
            return list((await session.exec(query)).all())

    # -- usage ---------------------------------------------------------------------------------

    async def record_usage(self, record: UsageRecord) -> None:
        async with self._db.session() as session:
            session.add(record)
            await session.commit()

    async def tokens_used_since(self, owner: UserKey, since: datetime) -> tuple[int, Decimal]:
        """Total tokens and cost of the owner's model calls since ``since``."""
        query = select(
            func.coalesce(func.sum(UsageRecord.total_tokens), 0),
            func.coalesce(func.sum(UsageRecord.cost_usd), 0),
        ).where(
            UsageRecord.tenant == owner.tenant,
            UsageRecord.user_id == owner.user,
            col(UsageRecord.created_at) >= since,
        )
        async with self._db.session() as session:
            tokens, cost = (await session.exec(query)).one()
        return int(tokens), Decimal(cost)

    async def tenant_tokens_used_since(self, tenant: str, since: datetime) -> tuple[int, Decimal]:
        """Total tokens and cost of every model call of the tenant since ``since``."""
        query = select(
            func.coalesce(func.sum(UsageRecord.total_tokens), 0),
            func.coalesce(func.sum(UsageRecord.cost_usd), 0),
        ).where(UsageRecord.tenant == tenant, col(UsageRecord.created_at) >= since)
        async with self._db.session() as session:
            tokens, cost = (await session.exec(query)).one()
        return int(tokens), Decimal(cost)

    async def conversation_tokens_used(
        self, owner: UserKey, conversation_id: str
    ) -> tuple[int, Decimal]:
        """Total tokens and cost of the model calls made for one of the owner's conversations."""
        query = select(
            func.coalesce(func.sum(UsageRecord.total_tokens), 0),
            func.coalesce(func.sum(UsageRecord.cost_usd), 0),
        ).where(
            UsageRecord.tenant == owner.tenant,
            UsageRecord.user_id == owner.user,
            UsageRecord.conversation_id == conversation_id,
        )
        async with self._db.session() as session:
            tokens, cost = (await session.exec(query)).one()
        return int(tokens), Decimal(cost)


def _owned(conversation: Conversation, owner: UserKey) -> bool:
    return conversation.tenant == owner.tenant and conversation.user_id == owner.user


def _title(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1].rstrip() + "…"


def owned_messages(owner: UserKey, conversation_id: str | None = None) -> SelectOfScalar[Message]:
    """A query for the owner's messages (of one conversation, if given): every read of messages
    starts here, so none can forget to filter on the owner."""
    query = select(Message).where(Message.tenant == owner.tenant, Message.user_id == owner.user)
    if conversation_id is not None:
        query = query.where(Message.conversation_id == conversation_id)
    return query


def _assistant_message(
    owner: UserKey,
    conversation_id: str,
    turn_id: str,
    message_id: str,
    status: str,
    *,
    text: str = "",
) -> Message:
    return Message(
        id=message_id,
        conversation_id=conversation_id,
        tenant=owner.tenant,
        user_id=owner.user,
        role="assistant",
        turn_id=turn_id,
        text=text,
        status=status,
    )


async def _touch(session: Any, conversation_id: str, *, added: int) -> None:
    await session.exec(
        update(Conversation)
        .where(col(Conversation.id) == conversation_id)
        .values(
            updated_at=utcnow(),
            message_count=Conversation.message_count + added,
        )
    )
