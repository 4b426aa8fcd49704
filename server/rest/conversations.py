"""Conversations and their messages: list, create, read, rename, archive.

Every change is also sent to the user's tabs as a logged ``conversation_updated`` frame, so a
rename in one place shows in every open tab.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from http import HTTPStatus
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from protocol import ErrorCode, ToolLine, tool_line_to_dict
from server.errors import ClientError
from server.ops import metrics
from server.rest.api import ApiCall, ApiRouter
from server.rest.errors import ApiError, from_client_error, not_found
from server.rest.paging import PageQuery, decode_cursor, encode_cursor, page_limit
from server.rest.resources import RestResources
from server.stream.conversation_frames import conversation_update
from server.stream.tool_lines import tool_lines
from storage.errors import NotFound, StateUnavailable
from storage.keys import UserKey
from storage.models import Conversation, Message
from storage.paging import as_utc

logger = logging.getLogger(__name__)

router = ApiRouter("conversations", "A user's conversations with the assistant and their messages.")

Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class ConversationStatus(StrEnum):
    ACTIVE = "active"
    ARCHIVED = "archived"
    ESCALATED = "escalated"


# -- models ------------------------------------------------------------------------------------


class ConversationOut(BaseModel):
    """A conversation."""

    conversation_id: str
    title: str
    status: ConversationStatus
    message_count: int = Field(description="user and assistant messages in it")
    created_at: datetime
    updated_at: datetime = Field(description="time of its latest message")
    profile: str | None = Field(
        default=None,
        description="the assistant profile it runs under (absent: started before profiles)",
    )


class ConversationPage(BaseModel):
    """A page of conversations, most recently active first."""

    items: list[ConversationOut]
    next_cursor: str | None = Field(default=None, description="absent on the last page")


class MessageUsage(BaseModel):
    """Tokens and cost of the model calls behind an assistant message."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost: float = Field(description="estimated cost in USD")
    model: str
    estimated: bool = Field(description="token counts were estimated, not reported")


class MessageOut(BaseModel):
    """A user message, an assistant reply, or a note about the conversation (a hand-off)."""

    message_id: str
    conversation_id: str
    role: str = Field(
        description="`user`, `assistant`, or `note`: a line about the conversation itself, "
        "such as why it was handed over to another profile"
    )
    text: str
    status: str = Field(
        description="`completed`, `streaming`, `cancelled`, `failed` or `interrupted`"
    )
    created_at: datetime
    client_msg_id: str | None = None
    turn_id: str | None = None
    tools: list[str] | None = Field(
        default=None, description="names of the tools the assistant called for this reply"
    )
    tool_lines: list[dict[str, Any]] | None = Field(
        default=None,
        description="what each read-only tool call of this reply showed the user, as the "
        "`tools` of a message in the WebSocket `ready` snapshot: `call_id`, `name`, `ok`, "
        "`summary`, and `view` / `export` when it had them. Bounded per page like the "
        "snapshot (`PARLEY_SNAPSHOT_TOOL_LINES`, `PARLEY_SNAPSHOT_TOOL_VIEWS`)",
    )
    usage: MessageUsage | None = None


class MessagePage(BaseModel):
    """A page of messages, newest first."""

    items: list[MessageOut]
    next_cursor: str | None = Field(default=None, description="absent on the last page")


class ConversationListQuery(PageQuery):
    status: ConversationStatus | None = Field(
        default=None, description="only conversations in this state (default: all but archived)"
    )


class CreateConversation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title = "New conversation"
    profile: str | None = Field(
        default=None,
        max_length=64,
        description="the assistant profile to bind it to (default: the default profile)",
    )


class UpdateConversation(BaseModel):
    """Rename, archive or restore; at least one field."""

    model_config = ConfigDict(extra="forbid")

    title: Title | None = None
    archived: bool | None = Field(
        default=None,
        description="true archives; false restores an archived conversation to active",
    )


# -- operations --------------------------------------------------------------------------------


@router.get("/conversations", response=ConversationPage, query=ConversationListQuery)
async def list_conversations(call: ApiCall[ConversationListQuery, None]) -> ConversationPage:
    """List my conversations, most recently active first.

    Archived conversations are left out unless asked for with `status=archived`. Ordering is by
    last activity: a conversation that gets a message while you page moves to the front.
    """
    settings = call.rest.settings
    page = await call.rest.history.conversations(
        call.owner,
        limit=page_limit(call.query, settings),
        after=decode_cursor("conversations", call.query.cursor),
        status=call.query.status.value if call.query.status else None,
    )
    return ConversationPage(
        items=[conversation_out(row) for row in page.items],
        next_cursor=encode_cursor("conversations", page.next),
    )


@router.post(
    "/conversations",
    response=ConversationOut,
    body=CreateConversation,
    status=HTTPStatus.CREATED,
    errors=(403, 404),
)
async def create_conversation(call: ApiCall[None, CreateConversation]) -> ConversationOut:
    """Start a conversation (empty until a message is sent to it over the socket).

    It is bound to the profile named (`profile_not_found` when none has that id, `forbidden`
    when my roles do not allow it), or to the default profile.
    """
    try:
        profile = call.rest.profiles.choose(call.body.profile, call.principal.roles, ref=None)
    except ClientError as exc:
        raise from_client_error(exc) from None
    conversation = await call.rest.history.create_conversation(
        call.owner, call.body.title, profile.id
    )
    await publish_update(call.rest, call.owner, conversation)
    return conversation_out(conversation)


@router.get("/conversations/{conversation_id}", response=ConversationOut, errors=(404,))
async def get_conversation(call: ApiCall[None, None]) -> ConversationOut:
    """One of my conversations."""
    conversation_id = call.path("conversation_id")
    try:
        conversation = await call.rest.history.conversation(call.owner, conversation_id)
    except NotFound:
        raise not_found("conversation", conversation_id) from None
    return conversation_out(conversation)


@router.patch(
    "/conversations/{conversation_id}",
    response=ConversationOut,
    body=UpdateConversation,
    errors=(404,),
)
async def update_conversation(call: ApiCall[None, UpdateConversation]) -> ConversationOut:
    """Rename, archive or restore one of my conversations.

    Every tab of mine gets a `conversation_updated` frame.
    """
    conversation_id = call.path("conversation_id")
    body = call.body
    if body.title is None and body.archived is None:
        raise ApiError(
            HTTPStatus.UNPROCESSABLE_ENTITY,
            ErrorCode.MISSING_FIELD,
            "field 'title' or 'archived' is required",
            field="title",
        )
    try:
        conversation = await call.rest.history.update_conversation(
            call.owner, conversation_id, title=body.title, archived=body.archived
        )
    except NotFound:
        raise not_found("conversation", conversation_id) from None
    await publish_update(call.rest, call.owner, conversation)
    return conversation_out(conversation)


@router.get(
    "/conversations/{conversation_id}/messages",
    response=MessagePage,
    query=PageQuery,
    errors=(404,),
)
async def list_messages(call: ApiCall[PageQuery, None]) -> MessagePage:
    """Messages of one of my conversations, newest first."""
    conversation_id = call.path("conversation_id")
    settings = call.rest.settings
    try:
        page = await call.rest.history.messages(
            call.owner,
            conversation_id,
            limit=page_limit(call.query, settings),
            after=decode_cursor("messages", call.query.cursor),
        )
    except NotFound:
        raise not_found("conversation", conversation_id) from None
    # Newest first on the page; the limits keep the newest lines, as in the snapshot.
    lines = tool_lines(
        list(reversed(page.items)),
        max_lines=settings.snapshot_tool_lines,
        max_views=settings.snapshot_tool_views,
    )
    return MessagePage(
        items=[message_out(row, lines.get(row.id, ())) for row in page.items],
        next_cursor=encode_cursor("messages", page.next),
    )


# -- helpers -----------------------------------------------------------------------------------


async def publish_update(rest: RestResources, owner: UserKey, conversation: Conversation) -> None:
    """Tell every tab of the owner about the conversation's new title or status.

    The change is already stored; if Redis is away the tabs learn it from their next snapshot,
    so a failure here is logged rather than failing the request.
    """
    try:
        await rest.hub.publish(owner, [conversation_update(conversation)])
    except StateUnavailable:
        metrics.redis_error("api")
        logger.warning("conversation %s changed; its frame could not be sent", conversation.id)


def conversation_out(row: Conversation) -> ConversationOut:
    return ConversationOut(
        conversation_id=row.id,
        title=row.title,
        status=ConversationStatus(row.status),
        message_count=row.message_count,
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
        profile=row.profile,
    )


def message_out(row: Message, lines: Sequence[ToolLine] = ()) -> MessageOut:
    tools = [
        str(call.get("function", {}).get("name", ""))
        for round_ in row.tool_rounds or []
        for call in round_.get("calls", [])
    ]
    return MessageOut(
        message_id=row.id,
        conversation_id=row.conversation_id,
        role=row.role,
        text=row.text,
        status=row.status,
        created_at=as_utc(row.created_at),
        client_msg_id=row.client_msg_id,
        turn_id=row.turn_id,
        tools=tools or None,
        tool_lines=[tool_line_to_dict(line) for line in lines] or None,
        usage=_usage(row.usage),
    )


def _usage(stored: dict[str, Any] | None) -> MessageUsage | None:
    if not stored:
        return None
    return MessageUsage.model_validate(stored)
