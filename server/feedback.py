"""Feedback on answers: one implementation for the socket's ``feedback`` frame and the REST API."""

from __future__ import annotations

from protocol import ErrorCode
from server.errors import ClientError
from storage.errors import NotFound
from storage.feedback import FeedbackStore
from storage.keys import UserKey
from storage.models import Feedback

RATINGS = frozenset({"1", "2", "3", "4", "5", "up", "down"})
COMMENT_MAX_CHARS = 2000


async def record_feedback(
    store: FeedbackStore,
    owner: UserKey,
    message_id: str,
    rating: int | str,
    comment: str | None,
) -> Feedback:
    """Validate and store a rating.

    Raises:
        ClientError: a rating outside 1-5/up/down, an overlong comment, or a message that is not
            one of the owner's assistant messages.
    """
    value = str(rating)
    if isinstance(rating, bool) or value not in RATINGS:
        raise ClientError(
            ErrorCode.INVALID_FIELD, "field 'rating' must be 1-5, 'up' or 'down'", ref=message_id
        )
    if comment is not None and len(comment) > COMMENT_MAX_CHARS:
        raise ClientError(
            ErrorCode.INVALID_FIELD,
            f"field 'comment' is longer than {COMMENT_MAX_CHARS} characters",
            ref=message_id,
        )
    try:
        return await store.rate(owner, message_id, value, comment)
    except NotFound:
        raise ClientError(
            ErrorCode.MESSAGE_NOT_FOUND, f"message '{message_id}' not found", ref=message_id
        ) from None
