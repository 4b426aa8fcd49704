"""Conversations and messages as the REST API reads and edits them: paged, owner-scoped.

Like ``TranscriptStore``, every query filters on the owner (tenant and user), so another
user's id behaves exactly like an id that does not exist.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import col, select, update

from storage.db import Database
from storage.errors import NotFound
from storage.keys import UserKey
from storage.models import Conversation, Message
from storage.paging import Page, PagePosition, before, page_of
from storage.transcripts import owned_messages

ARCHIVED = "archived"
ACTIVE = "active"


class HistoryStore:
    """Paged reads and edits of a user's conversations and their messages."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def conversations(
        self,
        owner: UserKey,
        *,
        limit: int,
        after: PagePosition | None = None,
        status: str | None = None,
    ) -> Page[Conversation]:
        """The owner's conversations, most recently active first.

        Without ``status`` archived conversations are left out; with it, only that status.
        Ordering is by last activity, so a conversation that gets a message while a reader
        pages moves to the front: it is then missed by the later pages, never repeated.
        """
        query = select(Conversation).where(
            Conversation.tenant == owner.tenant,
            Conversation.user_id == owner.user,
            before(col(Conversation.updated_at), col(Conversation.id), after),
        )
        if status is None:
            query = query.where(Conversation.status != ARCHIVED)
        else:
            query = query.where(Conversation.status == status)
        query = query.order_by(
            col(Conversation.updated_at).desc(), col(Conversation.id).desc()
        ).limit(limit + 1)
        async with self._db.session() as session:
            rows = list((await session.exec(query)).all())
        return page_of(rows, limit, lambda row: (row.updated_at, row.id))

    async def messages(
        self,
        owner: UserKey,
        conversation_id: str,
        *,
        limit: int,
        after: PagePosition | None = None,
    ) -> Page[Message]:
        """Messages of one of the owner's conversations, newest first.

        Raises:
            NotFound: the conversation is not the owner's.
        """
        await self.conversation(owner, conversation_id)
        query = (
            owned_messages(owner, conversation_id)
            .where(before(col(Message.created_at), col(Message.id), after))
            .order_by(col(Message.created_at).desc(), col(Message.id).desc())
            .limit(limit + 1)
        )
        async with self._db.session() as session:
            rows = list((await session.exec(query)).all())
        return page_of(rows, limit, lambda row: (row.created_at, row.id))

    async def create_conversation(
        self, owner: UserKey, title: str, profile: str | None = None
    ) -> Conversation:
        """A new, empty conversation of the owner with the title as given, bound to
        ``profile``."""
        conversation = Conversation(
            tenant=owner.tenant, user_id=owner.user, title=title, profile=profile
        )
        async with self._db.session() as session:
            session.add(conversation)
            await session.commit()
        return conversation

    async def conversation(self, owner: UserKey, conversation_id: str) -> Conversation:
        """The owner's conversation.

        Raises:
            NotFound: no such conversation for this owner.
        """
        async with self._db.session() as session:
            found = await session.get(Conversation, conversation_id)
        if found is None or (found.tenant, found.user_id) != (owner.tenant, owner.user):
            raise NotFound(f"conversation '{conversation_id}'")
        return found

    async def update_conversation(
        self,
        owner: UserKey,
        conversation_id: str,
        *,
        title: str | None = None,
        archived: bool | None = None,
    ) -> Conversation:
        """Rename and/or archive (or restore) one of the owner's conversations.

        Restoring only changes an archived conversation (back to active); an escalated one
        keeps its status. The conversation's activity time is left alone: renaming is not
        activity.

        Raises:
            NotFound: no such conversation for this owner.
        """
        values: dict[str, Any] = {}
        if title is not None:
            values["title"] = title
        conditions = [
            col(Conversation.id) == conversation_id,
            col(Conversation.tenant) == owner.tenant,
            col(Conversation.user_id) == owner.user,
        ]
        async with self._db.session() as session:
            if values:
                await session.exec(update(Conversation).where(*conditions).values(**values))
            if archived is True:
                await session.exec(update(Conversation).where(*conditions).values(status=ARCHIVED))
            elif archived is False:
                await session.exec(
                    update(Conversation)
                    .where(*conditions, col(Conversation.status) == ARCHIVED)
                    .values(status=ACTIVE)
                )
            await session.commit()
            found = await session.get(Conversation, conversation_id, populate_existing=True)
        if found is None or (found.tenant, found.user_id) != (owner.tenant, owner.user):
            raise NotFound(f"conversation '{conversation_id}'")
        return found
