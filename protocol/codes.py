"""Every closed set of values on the wire: error codes, close codes and small vocabularies.

Other modules and the server name these members instead of writing the strings, so a typo is
an attribute error rather than a silent protocol change.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from types import MappingProxyType
from typing import Final

# ---------------------------------------------------------------------------------------------
# Small vocabularies used inside frames
# ---------------------------------------------------------------------------------------------


class Decision(StrEnum):
    """A user's answer to a ``confirm_request`` (``confirm.decision``)."""

    APPROVE = "approve"
    REJECT = "reject"


class TurnStatus(StrEnum):
    """How a turn ended (``turn_end.status``)."""

    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


class ConfirmationStatus(StrEnum):
    """How a confirmation was resolved (``confirm_resolved.status``)."""

    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class Role(StrEnum):
    """Who wrote a ``message`` frame."""

    USER = "user"
    ASSISTANT = "assistant"


class Thumb(StrEnum):
    """A thumbs rating in ``feedback.rating`` (the alternative to a 1-5 score)."""

    UP = "up"
    DOWN = "down"


# ---------------------------------------------------------------------------------------------
# Error codes carried by ``error`` frames
# ---------------------------------------------------------------------------------------------


class ErrorCode(StrEnum):
    """The ``code`` of an ``error`` frame; see :data:`ERROR_INFO` for meaning and retryability."""

    INVALID_JSON = "invalid_json"
    INVALID_FRAME = "invalid_frame"
    UNKNOWN_TYPE = "unknown_type"
    MISSING_FIELD = "missing_field"
    INVALID_FIELD = "invalid_field"
    FRAME_TOO_LARGE = "frame_too_large"
    HELLO_REQUIRED = "hello_required"
    UNSUPPORTED_PROTOCOL = "unsupported_protocol"
    UNAUTHENTICATED = "unauthenticated"
    TOKEN_EXPIRED = "token_expired"
    FORBIDDEN = "forbidden"
    CONVERSATION_NOT_FOUND = "conversation_not_found"
    MESSAGE_NOT_FOUND = "message_not_found"
    CONFIRMATION_NOT_FOUND = "confirmation_not_found"
    CONFIRMATION_NOT_PENDING = "confirmation_not_pending"
    CONFIRMATION_EXPIRED = "confirmation_expired"
    INVALID_PARAMS = "invalid_params"
    PROFILE_NOT_FOUND = "profile_not_found"
    PAGE_TOOL_CALL_NOT_FOUND = "page_tool_call_not_found"
    TURN_IN_PROGRESS = "turn_in_progress"
    NO_ACTIVE_TURN = "no_active_turn"
    MESSAGE_TOO_LONG = "message_too_long"
    CONVERSATION_FULL = "conversation_full"
    RATE_LIMITED = "rate_limited"
    TOO_MANY_CONNECTIONS = "too_many_connections"
    FLOODING = "flooding"
    BUDGET_EXCEEDED = "budget_exceeded"
    BUDGET_WARNING = "budget_warning"
    MODEL_ERROR = "model_error"
    MODEL_UNAVAILABLE = "model_unavailable"
    MODEL_RATE_LIMITED = "model_rate_limited"
    MODEL_TIMEOUT = "model_timeout"
    STREAM_INTERRUPTED = "stream_interrupted"
    STORE_UNAVAILABLE = "store_unavailable"
    TURN_INTERRUPTED = "turn_interrupted"
    TOOL_ERROR = "tool_error"
    INTERNAL_ERROR = "internal_error"


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """What an error code means and whether the same request may succeed if sent again.

    Attributes:
        meaning: One line for the reference docs.
        retryable: The default for ``error.retryable``: true when repeating the same request
            later can succeed without the client changing anything.
    """

    meaning: str
    retryable: bool


ERROR_INFO: Final[Mapping[ErrorCode, ErrorInfo]] = MappingProxyType(
    {
        ErrorCode.INVALID_JSON: ErrorInfo("the frame is not valid JSON text (or not UTF-8)", False),
        ErrorCode.INVALID_FRAME: ErrorInfo("the frame is JSON but not an object", False),
        ErrorCode.UNKNOWN_TYPE: ErrorInfo(
            "the frame's `type` is not one this side of the connection accepts", False
        ),
        ErrorCode.MISSING_FIELD: ErrorInfo("a required field is absent", False),
        ErrorCode.INVALID_FIELD: ErrorInfo(
            "a field has the wrong JSON type or a value out of range", False
        ),
        ErrorCode.FRAME_TOO_LARGE: ErrorInfo("the frame exceeds the configured size limit", False),
        ErrorCode.HELLO_REQUIRED: ErrorInfo(
            "the first frame on a connection must be `hello`", False
        ),
        ErrorCode.UNSUPPORTED_PROTOCOL: ErrorInfo(
            "`hello.protocol` names a version the server does not speak", False
        ),
        ErrorCode.UNAUTHENTICATED: ErrorInfo("no valid credentials were presented", False),
        ErrorCode.TOKEN_EXPIRED: ErrorInfo(
            "the token has expired; fetch a fresh one and reconnect", False
        ),
        ErrorCode.FORBIDDEN: ErrorInfo(
            "the user may not do this (role, tenant, owner or origin)", False
        ),
        ErrorCode.CONVERSATION_NOT_FOUND: ErrorInfo(
            "no conversation with that id exists for this user", False
        ),
        ErrorCode.MESSAGE_NOT_FOUND: ErrorInfo(
            "no message with that id exists for this user", False
        ),
        ErrorCode.CONFIRMATION_NOT_FOUND: ErrorInfo(
            "no confirmation with that token exists for this user", False
        ),
        ErrorCode.CONFIRMATION_NOT_PENDING: ErrorInfo(
            "the confirmation was already approved, rejected, expired or cancelled", False
        ),
        ErrorCode.CONFIRMATION_EXPIRED: ErrorInfo(
            "the confirmation passed its `expires_at` before the decision arrived", False
        ),
        ErrorCode.INVALID_PARAMS: ErrorInfo(
            "the edited parameters of a `confirm` do not fit the action; the message names the "
            "field and the confirmation stays pending",
            False,
        ),
        ErrorCode.PROFILE_NOT_FOUND: ErrorInfo(
            "`user_message.profile` (or the REST create) names no configured profile", False
        ),
        ErrorCode.PAGE_TOOL_CALL_NOT_FOUND: ErrorInfo(
            "a `page_tool_result` answers no call this tab was asked to run (unknown, already "
            "answered or timed out)",
            False,
        ),
        ErrorCode.TURN_IN_PROGRESS: ErrorInfo(
            "a turn is running in this conversation and the policy rejects a second one;"
            " send again when it ends",
            True,
        ),
        ErrorCode.NO_ACTIVE_TURN: ErrorInfo(
            "`cancel` named a conversation or turn with nothing running", False
        ),
        ErrorCode.MESSAGE_TOO_LONG: ErrorInfo(
            "the user message exceeds the configured length", False
        ),
        ErrorCode.CONVERSATION_FULL: ErrorInfo(
            "the conversation reached its message or context limit; start a new one", False
        ),
        ErrorCode.RATE_LIMITED: ErrorInfo(
            "too many requests; wait `retry_after` seconds and send again", True
        ),
        ErrorCode.TOO_MANY_CONNECTIONS: ErrorInfo(
            "the user or tenant has too many open connections; reconnect later", True
        ),
        ErrorCode.FLOODING: ErrorInfo(
            "the client sent frames faster than allowed; the socket is closed", False
        ),
        ErrorCode.BUDGET_EXCEEDED: ErrorInfo(
            "the tenant's or user's token or cost budget is spent", False
        ),
        ErrorCode.BUDGET_WARNING: ErrorInfo(
            "a budget is nearly spent; a warning, the turn goes on", False
        ),
        ErrorCode.MODEL_ERROR: ErrorInfo("the model endpoint rejected the request", False),
        ErrorCode.MODEL_UNAVAILABLE: ErrorInfo("the model endpoint cannot be reached", True),
        ErrorCode.MODEL_RATE_LIMITED: ErrorInfo("the model endpoint is rate limiting Parley", True),
        ErrorCode.MODEL_TIMEOUT: ErrorInfo("the model did not answer in time", True),
        ErrorCode.STREAM_INTERRUPTED: ErrorInfo(
            "the model stream broke off mid-answer; the partial text was saved", True
        ),
        ErrorCode.STORE_UNAVAILABLE: ErrorInfo("Redis or the database is unreachable", True),
        ErrorCode.TURN_INTERRUPTED: ErrorInfo(
            "the worker running the turn stopped; the partial text was saved", True
        ),
        ErrorCode.TOOL_ERROR: ErrorInfo("a tool or action failed", False),
        ErrorCode.INTERNAL_ERROR: ErrorInfo("an unexpected server error", True),
    }
)
"""Meaning and default retryability of every :class:`ErrorCode`, in declaration order."""


def describe(code: ErrorCode) -> ErrorInfo:
    """Return the meaning and default retryability of an error code.

    Raises:
        KeyError: ``code`` is not an :class:`ErrorCode` member.
    """
    return ERROR_INFO[code]


# ---------------------------------------------------------------------------------------------
# WebSocket close codes
# ---------------------------------------------------------------------------------------------


class CloseCode(IntEnum):
    """Close codes the server sends; :func:`is_temporary` says which ones a client retries."""

    NORMAL = 1000
    GOING_AWAY = 1001
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_HELLO = 4400
    UNAUTHENTICATED = 4401
    FORBIDDEN_ORIGIN = 4403
    UNSUPPORTED_PROTOCOL = 4426
    TOO_MANY_CONNECTIONS = 4429


ABNORMAL_CLOSURE: Final = 1006
"""What a client sees when the connection drops without a close frame; never sent."""

# A client reconnects (with backoff) after these and gives up after every other code: the rest
# mean the same connection attempt would be refused again, so retrying would only add load.
_TEMPORARY_CLOSE_CODES: Final = frozenset(
    {
        CloseCode.GOING_AWAY,
        ABNORMAL_CLOSURE,
        CloseCode.INTERNAL_ERROR,
        CloseCode.SERVICE_RESTART,
        CloseCode.TRY_AGAIN_LATER,
        CloseCode.TOO_MANY_CONNECTIONS,
    }
)


def is_temporary(code: int) -> bool:
    """Tell whether a client should reconnect after a close with ``code``.

    Temporary: 1001, 1006, 1011, 1012, 1013, 4429. Every other code is terminal, including
    1000 (the server ended the session on purpose) and codes this protocol does not define.
    4401 is terminal for the connection attempt; a client that can fetch a fresh token may
    start a new one with it.
    """
    return code in _TEMPORARY_CLOSE_CODES


@dataclass(frozen=True, slots=True)
class CloseInfo:
    """What a close code means and whether a client reconnects after it.

    Attributes:
        meaning: One line for the reference docs.
        temporary: True when the client reconnects with backoff (see :func:`is_temporary`).
    """

    meaning: str
    temporary: bool


_CLOSE_MEANINGS: Final[Mapping[int, str]] = {
    CloseCode.NORMAL: "the session ended normally (logout, server-side end)",
    CloseCode.GOING_AWAY: "the server is shutting down or the page is leaving",
    ABNORMAL_CLOSURE: "the connection dropped without a close frame (seen by clients, never sent)",
    CloseCode.POLICY_VIOLATION: "the client broke a rule the socket cannot survive (flooding)",
    CloseCode.MESSAGE_TOO_BIG: "a frame exceeded the size limit",
    CloseCode.INTERNAL_ERROR: "the server hit an unexpected error",
    CloseCode.SERVICE_RESTART: "the worker is restarting; reconnect to another one",
    CloseCode.TRY_AGAIN_LATER: "the server is overloaded or the client read too slowly",
    CloseCode.BAD_HELLO: "the first frame was not a valid `hello`",
    CloseCode.UNAUTHENTICATED: "no valid credentials; reconnect only with a fresh token",
    CloseCode.FORBIDDEN_ORIGIN: "the page's origin is not allowed",
    CloseCode.UNSUPPORTED_PROTOCOL: "the server does not speak the requested protocol version",
    CloseCode.TOO_MANY_CONNECTIONS: "the user or tenant has too many open connections",
}

CLOSE_INFO: Final[Mapping[int, CloseInfo]] = MappingProxyType(
    {code: CloseInfo(meaning, is_temporary(code)) for code, meaning in _CLOSE_MEANINGS.items()}
)
"""Meaning and reconnect behaviour of every close code a client may see, 1006 included."""
