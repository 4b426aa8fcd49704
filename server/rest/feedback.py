"""Feedback on an assistant message: the same ``record_feedback`` the socket's ``feedback``
frame uses, so both channels accept and refuse exactly the same ratings."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from server.feedback import record_feedback
from server.rest.api import ApiCall, ApiRouter
from storage.paging import as_utc

router = ApiRouter("feedback", "Ratings of the assistant's answers.")


class FeedbackIn(BaseModel):
    """A rating: a score from 1 to 5, or a thumb."""

    model_config = ConfigDict(extra="forbid")

    # Any JSON value: record_feedback decides what is a rating, one rule for socket and REST.
    rating: Any = Field(
        description="1 to 5, or `up` / `down`",
        json_schema_extra={
            "anyOf": [
                {"type": "integer", "minimum": 1, "maximum": 5},
                {"type": "string", "enum": ["up", "down"]},
            ]
        },
    )
    comment: str | None = Field(default=None, description="at most 2000 characters")


class FeedbackOut(BaseModel):
    """A stored rating; rating a message again replaces it."""

    message_id: str
    conversation_id: str
    rating: str = Field(description="`1`..`5`, `up` or `down`")
    comment: str | None = None
    created_at: datetime


@router.post("/messages/{message_id}/feedback", response=FeedbackOut, body=FeedbackIn)
async def rate_message(call: ApiCall[None, FeedbackIn]) -> FeedbackOut:
    """Rate one of the assistant's answers to me."""
    stored = await record_feedback(
        call.rest.feedback,
        call.owner,
        call.path("message_id"),
        call.body.rating,
        call.body.comment,
    )
    return FeedbackOut(
        message_id=stored.message_id,
        conversation_id=stored.conversation_id,
        rating=stored.rating,
        comment=stored.comment,
        created_at=as_utc(stored.created_at),
    )
