"""Ratings of assistant messages."""

from __future__ import annotations

from sqlmodel import select

from storage.db import Database
from storage.errors import NotFound
from storage.keys import UserKey
from storage.models import Feedback, Message, utcnow


class FeedbackStore:
    """Stores one rating per user and message; rating again replaces the earlier one."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def rate(
        self, owner: UserKey, message_id: str, rating: str, comment: str | None
    ) -> Feedback:
        """Record ``owner``'s rating of one of their assistant messages.

        Raises:
            NotFound: no assistant message with that id belongs to the owner.
        """
        async with self._db.session() as session:
            message = await session.get(Message, message_id)
            if (
                message is None
                or message.role != "assistant"
                or (message.tenant, message.user_id) != (owner.tenant, owner.user)
            ):
                raise NotFound(f"message '{message_id}'")
            existing = (
                await session.exec(
                    select(Feedback).where(
                        Feedback.tenant == owner.tenant,
                        Feedback.user_id == owner.user,
                        Feedback.message_id == message_id,
                    )
                )
            ).first()
            feedback = existing or Feedback(
                tenant=owner.tenant,
                user_id=owner.user,
                message_id=message_id,
                conversation_id=message.conversation_id,
                rating=rating,
            )
            feedback.rating = rating
            feedback.comment = comment
            feedback.created_at = utcnow()
            session.add(feedback)
            await session.commit()
            await session.refresh(feedback)
        return feedback
