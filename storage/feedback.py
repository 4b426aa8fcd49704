"""Ratings of assistant messages."""

from __future__ import annotations

from sqlalchemy.dialects import postgresql, sqlite

from storage.db import Database
from storage.errors import NotFound
from storage.keys import UserKey
from storage.models import Feedback, Message, new_id, utcnow

# The columns that name one rating: the table's unique constraint ``uq_feedback``.
_RATING_KEY = ("tenant", "user_id", "message_id")


class FeedbackStore:
    """Stores one rating per user and message; rating again replaces the earlier one."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def rate(
        self, owner: UserKey, message_id: str, rating: str, comment: str | None
    ) -> Feedback:
        """Record ``owner``'s rating of one of their assistant messages.

        One atomic upsert, so tabs rating the same message at the same moment all succeed and
        the last write wins (a read-then-insert would lose the race at commit).

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
            insert = postgresql.insert if not self._db.is_sqlite else sqlite.insert
            changes = {"rating": rating, "comment": comment, "created_at": utcnow()}
            statement = insert(Feedback).values(
                id=new_id("f"),
                tenant=owner.tenant,
                user_id=owner.user,
                message_id=message_id,
                conversation_id=message.conversation_id,
                **changes,
            )
            upsert = statement.on_conflict_do_update(index_elements=_RATING_KEY, set_=changes)
            result = await session.exec(upsert.returning(Feedback))
            stored: Feedback = result.scalar_one()
            await session.commit()
        return stored
