"""Frame classes: one frozen dataclass per wire ``type``, plus the value classes they nest.

Field order is wire order: :func:`protocol.codec.encode` writes ``type`` first, then the fields
as declared here, leaving out optional fields that are None. Field annotations use the aliases
from :mod:`protocol.fields`, which also say how decode checks them (``Id`` is 1 to 200
characters, ``Count`` a non-negative integer, ...). Lists are tuples so frames stay immutable;
free-form objects are ``Mapping[str, object]`` and plain dicts are fine there.

Every frame that travels through a user's frame log (see :data:`LOGGED_TYPES`) ends with
``seq``: None until the log assigns the next number of that user's stream.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar, Final, TypeAlias

from protocol.codes import ConfirmationStatus, Decision, ErrorCode, Role, TurnStatus
from protocol.fields import (
    Amount,
    Count,
    Id,
    JsonObject,
    JsonValue,
    Name,
    Number,
    Rating,
    ShortText,
    Timestamp,
)
from protocol.views import ParamField, View


class FrameType(StrEnum):
    """The ``type`` of every frame, both directions."""

    # client → server
    HELLO = "hello"
    USER_MESSAGE = "user_message"
    CONFIRM = "confirm"
    CANCEL = "cancel"
    TYPING = "typing"  # both directions
    FEEDBACK = "feedback"
    PING = "ping"
    PAGE_TOOLS = "page_tools"
    PAGE_TOOL_RESULT = "page_tool_result"
    # server → client
    READY = "ready"
    MESSAGE = "message"
    THINKING = "thinking"
    TOOL_CALL = "tool_call"
    TOOL_RESULT = "tool_result"
    RESPONSE_DELTA = "response_delta"
    RESPONSE = "response"
    CONFIRM_REQUEST = "confirm_request"
    CONFIRM_RESOLVED = "confirm_resolved"
    ACTION_EXECUTED = "action_executed"
    TURN_END = "turn_end"
    CONVERSATION_UPDATED = "conversation_updated"
    PAGE_TOOL_CALL = "page_tool_call"
    ERROR = "error"
    PONG = "pong"


# ---------------------------------------------------------------------------------------------
# Client → server
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Hello:
    """First frame of a connection: protocol version, credentials and resume point.

    Attributes:
        protocol: The protocol version the client speaks.
        token: A bearer token, unless a cookie or header already authenticated the socket.
        epoch: The epoch of the user's frame log from the last ``ready`` seen.
        last_seq: The last ``seq`` the client processed under ``epoch``.
        client: A free-form client description (library and version) for logs.
    """

    type: ClassVar[FrameType] = FrameType.HELLO
    protocol: Count
    token: str | None = None
    epoch: Id | None = None
    last_seq: Count | None = None
    client: ShortText | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class UserMessage:
    """A user turn.

    Attributes:
        client_msg_id: Chosen by the client; resending the same id after a reconnect is a no-op.
        text: What the user wrote.
        conversation_id: The conversation to continue; absent starts a new one.
        context: Host-app context for this message (current page, selected record, ...).
        profile: The profile (copilot) a new conversation is bound to; absent takes the
            default one. Only read on the message that starts a conversation.
    """

    type: ClassVar[FrameType] = FrameType.USER_MESSAGE
    client_msg_id: Id
    text: str
    conversation_id: Id | None = None
    context: JsonObject | None = None
    profile: Id | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Confirm:
    """The user's answer to a ``confirm_request``, from any tab of the same user.

    Attributes:
        params: The action's parameters as the user edited them on the card (all of them, not
            only the changed ones); checked against the action's schema, and the action runs
            with them. Absent runs the proposed parameters. Read only with ``approve``.
    """

    type: ClassVar[FrameType] = FrameType.CONFIRM
    token: Id
    decision: Decision
    params: JsonObject | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Cancel:
    """Stop the running turn of a conversation (closing a socket never does).

    Attributes:
        conversation_id: The conversation whose turn to stop.
        turn_id: Stop only this turn; absent stops whichever turn is running.
    """

    type: ClassVar[FrameType] = FrameType.CANCEL
    conversation_id: Id
    turn_id: Id | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Typing:
    """The user is (or stopped) typing; sent by a tab and mirrored to the user's other tabs.

    The same class serves both directions; only the mirrored copy carries ``seq``.
    """

    type: ClassVar[FrameType] = FrameType.TYPING
    conversation_id: Id
    active: bool
    seq: Count | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Feedback:
    """A rating of an assistant message: a 1-5 score or a thumb, with an optional comment."""

    type: ClassVar[FrameType] = FrameType.FEEDBACK
    message_id: Id
    rating: Rating
    comment: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Ping:
    """Keepalive; answered by a ``pong`` echoing ``t``."""

    type: ClassVar[FrameType] = FrameType.PING
    t: Number | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PageToolSpec:
    """One function of the host page offered to the assistant, in ``page_tools``.

    Attributes:
        name: The tool's name on the page; the model sees it as ``page__<name>``. The server
            accepts names matching ``^[a-zA-Z0-9_-]{1,48}$``.
        description: What the tool does, for the model.
        parameters: A JSON Schema of type ``object`` describing the arguments.
        confirm: True when the tool changes something: the user approves each call on a
            confirmation card first. Absent or false: a query, run at once.
    """

    name: Id
    description: str
    parameters: JsonObject
    confirm: bool | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PageTools:
    """The functions this tab offers the assistant; replaces the tab's earlier set (an empty
    list offers none). Sent after every ``ready``, since a new connection starts with none."""

    type: ClassVar[FrameType] = FrameType.PAGE_TOOLS
    tools: tuple[PageToolSpec, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class PageToolResult:
    """The tab's answer to a ``page_tool_call``: the handler's result, or why it failed.

    Attributes:
        call_id: The ``page_tool_call.call_id`` answered.
        result: What the handler returned (any JSON); absent means null.
        error: Set when the handler failed; the model sees it as a tool error.
    """

    type: ClassVar[FrameType] = FrameType.PAGE_TOOL_RESULT
    call_id: Id
    result: JsonValue | None = None
    error: str | None = None


# ---------------------------------------------------------------------------------------------
# Value classes nested in server frames
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class UserInfo:
    """Who the connection is authenticated as."""

    id: Id
    tenant: Id
    roles: tuple[Name, ...]
    name: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Usage:
    """Token counts and cost of one assistant message.

    Attributes:
        cost: In US dollars.
        model: The model that answered.
        estimated: True when the tokens were counted locally because the endpoint reported none.
    """

    prompt_tokens: Count
    completion_tokens: Count
    total_tokens: Count
    cost: Amount
    model: str
    estimated: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Citation:
    """The source behind one ``[n]`` marker of an assistant message.

    Attributes:
        n: The marker's number: ``[1]`` in the text is cited by ``n = 1``.
        document_id: The document's id in its collection, as the host app named it.
        title: The document's title.
        url: A link back to the document in the host app, when it has one.
        snippet: The start of the cited passage.
    """

    n: Count
    document_id: Id
    title: str
    url: str | None = None
    snippet: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnError:
    """Why a turn ended early, in its ``turn_end``, so that every tab of the user learns it.

    Attributes:
        code: What went wrong; see :data:`protocol.codes.ERROR_INFO`.
        message: A lowercase fragment saying what happened.
        retryable: Whether sending the message again later can succeed.
        retry_after: Seconds to wait before retrying, when the server knows.
    """

    code: ErrorCode
    message: str
    retryable: bool
    retry_after: Amount | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ConversationSummary:
    """One conversation in the ``ready`` snapshot.

    Attributes:
        profile: The profile the conversation runs under; absent for a conversation that
            started before profiles existed.
    """

    conversation_id: Id
    title: str
    status: str
    updated_at: Timestamp
    profile: Id | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ProfileSummary:
    """A profile (copilot) the user may start a conversation with, in the ``ready`` frame.

    Attributes:
        id: What ``user_message.profile`` names.
        title: Its display name.
        description: One line on what it is for.
        greeting: The assistant's first words in a new conversation, for the widget to show.
        suggestions: Example prompts for a new conversation.
        default: True on the profile a conversation gets when it names none.
    """

    id: Id
    title: str
    description: str | None = None
    greeting: str | None = None
    suggestions: tuple[str, ...] | None = None
    default: bool | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolLine:
    """A read-only tool call of a stored assistant message, as its ``tool_result`` showed it.

    Attributes:
        call_id: The tool call, as on its ``tool_call`` and ``tool_result``.
        name: The tool's name.
        ok: Whether it succeeded.
        summary: The short outcome the tool line showed.
        view: The view its ``tool_result`` carried, if any.
        export: The path of the view's CSV, as on its ``tool_result``.
    """

    call_id: Id
    name: Name
    ok: bool
    summary: str
    view: View | None = None
    export: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageSnapshot:
    """One stored message in the ``ready`` snapshot.

    Attributes:
        role: ``user``, ``assistant``, ``tool`` or ``note`` (a line about the conversation,
            such as a hand-off's note; its ``turn_id`` names the turn it came from).
        status: The stored message's state, e.g. ``complete`` or ``partial``.
        tools: On an assistant message, the tool lines its turn showed before the answer,
            in the order they ran.
    """

    conversation_id: Id
    message_id: Id
    role: str
    text: str
    status: str
    created_at: Timestamp
    client_msg_id: Id | None = None
    turn_id: Id | None = None
    citations: tuple[Citation, ...] | None = None
    tools: tuple[ToolLine, ...] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PendingConfirmation:
    """A confirmation still waiting for a decision, in the ``ready`` snapshot.

    ``source``, ``destructive`` and ``fields`` (how to show each parameter) are as on its
    ``confirm_request``.
    """

    token: Id
    conversation_id: Id
    turn_id: Id
    action: Name
    params: JsonObject
    summary: str
    expires_at: Timestamp
    source: Name | None = None
    destructive: bool | None = None
    fields: tuple[ParamField, ...] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ActiveTurn:
    """A turn still running, in the ``ready`` snapshot.

    Attributes:
        text: The assistant text streamed so far.
        status: What the assistant is doing, as in ``thinking.status``.
    """

    conversation_id: Id
    turn_id: Id
    message_id: Id
    text: str
    status: str | None = None


# ---------------------------------------------------------------------------------------------
# Server → client
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Ready:
    """The handshake is done; the snapshot a tab renders from.

    Attributes:
        protocol: The protocol version the server speaks on this connection.
        connection_id: Names this connection in logs.
        user: Who the connection is authenticated as.
        epoch: The epoch of the user's frame log; ``seq`` numbers are only comparable within it.
        last_seq: The ``seq`` of the newest frame in the log (0 when it is empty).
        resumed: True when the frames after the client's ``last_seq`` follow; false means the
            client rebuilds from this snapshot and resets its seq bookkeeping.
        conversations: The user's recent conversations.
        messages: Recent messages of those conversations.
        pending_confirmations: Confirmations waiting for a decision.
        active_turns: Turns still running, with their partial text.
        profiles: The profiles this user may start a conversation with.
        locale: The user's language and region (BCP 47, e.g. ``de-DE``) from the token's
            ``locale`` claim; absent when the token names none.
    """

    type: ClassVar[FrameType] = FrameType.READY
    protocol: Count
    connection_id: Id
    user: UserInfo
    epoch: Id
    last_seq: Count
    resumed: bool
    conversations: tuple[ConversationSummary, ...] | None = None
    messages: tuple[MessageSnapshot, ...] | None = None
    pending_confirmations: tuple[PendingConfirmation, ...]
    active_turns: tuple[ActiveTurn, ...]
    profiles: tuple[ProfileSummary, ...] | None = None
    locale: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """A user message, mirrored to every tab; the sender's copy is its acknowledgement."""

    type: ClassVar[FrameType] = FrameType.MESSAGE
    conversation_id: Id
    message_id: Id
    client_msg_id: Id
    role: Role
    text: str
    seq: Count | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Thinking:
    """The assistant is working; ``status`` may say on what ("looking up invoices").

    Attributes:
        continuation: True on the first frame of a continuation turn: one that reports what
            became of an approval (decided, expired) rather than answering a new message.
    """

    type: ClassVar[FrameType] = FrameType.THINKING
    conversation_id: Id
    turn_id: Id
    status: str | None = None
    continuation: bool | None = None
    seq: Count | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCall:
    """A read-only tool started running.

    Attributes:
        source: The tool source (host app) the tool comes from; absent for a built-in tool.
    """

    type: ClassVar[FrameType] = FrameType.TOOL_CALL
    conversation_id: Id
    turn_id: Id
    call_id: Id
    name: Name
    arguments: JsonObject
    source: Name | None = None
    seq: Count | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolResult:
    """A read-only tool finished; ``summary`` is a short human-readable outcome.

    Attributes:
        view: A table, chart or metrics view of the result for the user to look at; the
            model gets the data itself, not the view.
        export: The path of a CSV of all the view's rows (``/api/v1/exports/{call_id}.csv``),
            for a table or chart view; only the user it was made for may fetch it.
    """

    type: ClassVar[FrameType] = FrameType.TOOL_RESULT
    conversation_id: Id
    turn_id: Id
    call_id: Id
    name: Name
    ok: bool
    summary: str
    view: View | None = None
    export: str | None = None
    seq: Count | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseDelta:
    """A piece of streamed assistant text."""

    type: ClassVar[FrameType] = FrameType.RESPONSE_DELTA
    conversation_id: Id
    turn_id: Id
    message_id: Id
    delta: str
    seq: Count | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Response:
    """The complete assistant message, with what it cost.

    Attributes:
        citations: The sources of the ``[n]`` markers the text uses, by ``n``; absent when it
            cites none.
    """

    type: ClassVar[FrameType] = FrameType.RESPONSE
    conversation_id: Id
    turn_id: Id
    message_id: Id
    text: str
    usage: Usage
    citations: tuple[Citation, ...] | None = None
    seq: Count | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfirmRequest:
    """A side-effecting action waits for the user's decision until ``expires_at``.

    Attributes:
        source: The tool source (host app) that will carry the action out; absent for a
            built-in tool.
        destructive: True when the host says the action may delete or overwrite data (MCP's
            ``destructiveHint``), False when it says the action only adds; absent when it says
            nothing. A card may warn on true; the summary says it in words as well.
        fields: How to show each parameter (label, format, a list as a table), derived from
            the action's parameter schema, so that a card never shows raw JSON.
    """

    type: ClassVar[FrameType] = FrameType.CONFIRM_REQUEST
    conversation_id: Id
    turn_id: Id
    token: Id
    action: Name
    params: JsonObject
    summary: str
    expires_at: Timestamp
    source: Name | None = None
    destructive: bool | None = None
    fields: tuple[ParamField, ...] | None = None
    seq: Count | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfirmResolved:
    """A confirmation was decided, expired or cancelled; seen by every tab.

    Attributes:
        params: The parameters the user approved, when they edited them on the card (absent
            when the proposed ones were approved as they were).
        summary: The card's summary recomputed for the edited parameters (absent otherwise).
    """

    type: ClassVar[FrameType] = FrameType.CONFIRM_RESOLVED
    token: Id
    status: ConfirmationStatus
    conversation_id: Id | None = None
    turn_id: Id | None = None
    params: JsonObject | None = None
    summary: str | None = None
    seq: Count | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionExecuted:
    """An approved action ran (exactly once); ``result`` is whatever the action returned.

    Attributes:
        source: The tool source (host app) that carried the action out; absent for a built-in
            tool.
    """

    type: ClassVar[FrameType] = FrameType.ACTION_EXECUTED
    token: Id
    action: Name
    ok: bool
    result: JsonValue
    audit_id: Id
    conversation_id: Id | None = None
    turn_id: Id | None = None
    source: Name | None = None
    seq: Count | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnEnd:
    """A turn ended; the typing indicator goes off.

    Attributes:
        error: Why it ended early (``failed`` or ``interrupted``), when there is a reason to
            show; absent for a completed or cancelled turn.
        awaiting: The confirmation tokens this turn asked for that were still pending when it
            ended. The conversation is free all the same; each decision starts a continuation
            turn. Absent when none are pending.
    """

    type: ClassVar[FrameType] = FrameType.TURN_END
    conversation_id: Id
    turn_id: Id
    status: TurnStatus
    error: TurnError | None = None
    awaiting: tuple[Id, ...] | None = None
    seq: Count | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ConversationUpdated:
    """A conversation was created, renamed, archived, escalated or handed to another profile;
    seen by every tab.

    Attributes:
        profile: The profile the conversation runs under (after a hand-off, the new one).
        note: A line to show in the conversation, e.g. why it was handed over.
    """

    type: ClassVar[FrameType] = FrameType.CONVERSATION_UPDATED
    conversation_id: Id
    status: str
    title: str | None = None
    profile: Id | None = None
    note: str | None = None
    seq: Count | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PageToolCall:
    """Run a page tool in this tab and answer with ``page_tool_result``; sent to the one tab
    chosen to run it, never logged.

    Attributes:
        call_id: Echoed by the answer.
        name: The tool's name as the tab registered it (without ``page__``).
        arguments: The arguments the model passed, checked against the tool's schema.
    """

    type: ClassVar[FrameType] = FrameType.PAGE_TOOL_CALL
    call_id: Id
    name: Name
    arguments: JsonObject


@dataclass(frozen=True, slots=True, kw_only=True)
class Error:
    """A bad frame or a failure.

    Attributes:
        code: What went wrong; see :data:`protocol.codes.ERROR_INFO`.
        message: A lowercase fragment naming the offending thing.
        retryable: Whether sending the same request again later can succeed.
        ref: Echoes the client's id the error is about (``client_msg_id``, confirmation token).
        retry_after: Seconds to wait before retrying, when the server knows.
    """

    type: ClassVar[FrameType] = FrameType.ERROR
    code: ErrorCode
    message: str
    retryable: bool
    ref: Id | None = None
    retry_after: Amount | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Pong:
    """The answer to ``ping``, echoing its ``t``."""

    type: ClassVar[FrameType] = FrameType.PONG
    t: Number | None = None


# ---------------------------------------------------------------------------------------------
# Unions and lookup tables
# ---------------------------------------------------------------------------------------------

ClientFrame: TypeAlias = (
    Hello | UserMessage | Confirm | Cancel | Typing | Feedback | Ping | PageTools | PageToolResult
)
"""Any frame a client sends."""

ServerFrame: TypeAlias = (
    Ready
    | Message
    | Thinking
    | ToolCall
    | ToolResult
    | ResponseDelta
    | Response
    | ConfirmRequest
    | ConfirmResolved
    | ActionExecuted
    | TurnEnd
    | Typing
    | ConversationUpdated
    | PageToolCall
    | Error
    | Pong
)
"""Any frame the server sends."""

Frame: TypeAlias = ClientFrame | ServerFrame
"""Any frame, either direction."""

CLIENT_FRAMES: Final[Mapping[FrameType, type[ClientFrame]]] = {
    cls.type: cls
    for cls in (
        Hello,
        UserMessage,
        Confirm,
        Cancel,
        Typing,
        Feedback,
        Ping,
        PageTools,
        PageToolResult,
    )
}
"""The class of every frame type a client may send."""

SERVER_FRAMES: Final[Mapping[FrameType, type[ServerFrame]]] = {
    cls.type: cls
    for cls in (
        Ready,
        Message,
        Thinking,
        ToolCall,
        ToolResult,
        ResponseDelta,
        Response,
        ConfirmRequest,
        ConfirmResolved,
        ActionExecuted,
        TurnEnd,
        Typing,
        ConversationUpdated,
        PageToolCall,
        Error,
        Pong,
    )
}
"""The class of every frame type the server may send."""

LOGGED_TYPES: Final[frozenset[FrameType]] = frozenset(
    {
        FrameType.MESSAGE,
        FrameType.THINKING,
        FrameType.TOOL_CALL,
        FrameType.TOOL_RESULT,
        FrameType.RESPONSE_DELTA,
        FrameType.RESPONSE,
        FrameType.CONFIRM_REQUEST,
        FrameType.CONFIRM_RESOLVED,
        FrameType.ACTION_EXECUTED,
        FrameType.TURN_END,
        FrameType.TYPING,
        FrameType.CONVERSATION_UPDATED,
    }
)
"""Server frame types that go through the user's frame log to every tab and carry ``seq``."""
