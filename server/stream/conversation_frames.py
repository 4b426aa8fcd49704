"""The ``conversation_updated`` frames that tell every tab of a user about a conversation:
that it exists (with its title and profile), or that it changed."""

from __future__ import annotations

from protocol import ConversationUpdated, UserMessage, encode
from storage.models import Conversation


def conversation_update(conversation: Conversation) -> str:
    """The encoded frame that states the conversation as stored: status, title, profile."""
    return encode(
        ConversationUpdated(
            conversation_id=conversation.id,
            status=conversation.status,
            title=conversation.title,
            profile=conversation.profile,
        )
    )


def announce_started(frame: UserMessage, conversation: Conversation) -> list[str]:
    """The frame announcing ``conversation`` when ``frame`` is the message that started it,
    to publish right after that message's mirror (in the same log step); nothing for a
    message to an existing one.

    The tab that sent the message knows the profile it asked for; its user's other tabs learn
    it here, and a resend of the starting message announces it again, which changes nothing.
    """
    if frame.conversation_id is not None:
        return []
    return [conversation_update(conversation)]
