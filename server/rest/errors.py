"""Errors of the REST API and the one body every error response has.

::

    ApiError        an HTTP status, a code and a message (and, for 422, the field)

Handlers raise ``ApiError`` or the server's ``ClientError`` (shared with the socket, e.g. by
``record_feedback``); ``server.rest.api`` turns both into ``{"error": {"code", "message"}}``
with the status that fits. Codes are the protocol's ``ErrorCode`` wherever one means the same
thing, so a client handles "conversation not found" alike on both channels; ``RestErrorCode``
names what only HTTP has.
"""

from __future__ import annotations

import re
from enum import StrEnum
from http import HTTPStatus

import orjson
from pydantic import BaseModel, Field
from starlette.responses import Response

from protocol import ErrorCode
from server.errors import ClientError


class RestErrorCode(StrEnum):
    """Error codes that exist only in the REST API."""

    INVALID_BODY = "invalid_body"
    BODY_TOO_LARGE = "body_too_large"
    ROUTE_NOT_FOUND = "route_not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    CONFLICT = "conflict"
    EXPORT_NOT_FOUND = "export_not_found"
    COLLECTION_NOT_FOUND = "collection_not_found"
    DOCUMENT_NOT_FOUND = "document_not_found"
    UNREADABLE_DOCUMENT = "unreadable_document"


Code = ErrorCode | RestErrorCode


class ApiError(Exception):
    """A request the API refuses; becomes one error response."""

    def __init__(
        self,
        status: int,
        code: Code,
        message: str,
        *,
        field: str | None = None,
        retry_after: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.retry_after = retry_after
        self.headers = dict(headers or {})

    def response(self) -> Response:
        error: dict[str, object] = {"code": str(self.code), "message": self.message}
        if self.field is not None:
            error["field"] = self.field
        headers = dict(self.headers)
        if self.retry_after is not None:
            # Whole seconds, rounded up: "Retry-After: 0" would invite an immediate retry.
            headers["Retry-After"] = str(max(1, int(-(-self.retry_after // 1))))
        return Response(
            orjson.dumps({"error": error}),
            status_code=self.status,
            media_type="application/json",
            headers=headers,
        )


class ErrorDetail(BaseModel):
    """What went wrong."""

    code: str = Field(description="machine-readable code, e.g. `conversation_not_found`")
    message: str = Field(description="lowercase fragment naming the offending thing")
    field: str | None = Field(
        default=None, description="the body field or query parameter at fault (422 only)"
    )


class ErrorBody(BaseModel):
    """The body of every error response."""

    error: ErrorDetail


# How the socket's error codes map to HTTP statuses.
_STATUS: dict[ErrorCode, int] = {
    ErrorCode.INVALID_JSON: HTTPStatus.BAD_REQUEST,
    ErrorCode.UNAUTHENTICATED: HTTPStatus.UNAUTHORIZED,
    ErrorCode.TOKEN_EXPIRED: HTTPStatus.UNAUTHORIZED,
    ErrorCode.FORBIDDEN: HTTPStatus.FORBIDDEN,
    ErrorCode.CONVERSATION_NOT_FOUND: HTTPStatus.NOT_FOUND,
    ErrorCode.MESSAGE_NOT_FOUND: HTTPStatus.NOT_FOUND,
    ErrorCode.CONFIRMATION_NOT_FOUND: HTTPStatus.NOT_FOUND,
    ErrorCode.PROFILE_NOT_FOUND: HTTPStatus.NOT_FOUND,
    ErrorCode.CONFIRMATION_NOT_PENDING: HTTPStatus.CONFLICT,
    ErrorCode.CONFIRMATION_EXPIRED: HTTPStatus.CONFLICT,
    ErrorCode.TURN_IN_PROGRESS: HTTPStatus.CONFLICT,
    ErrorCode.CONVERSATION_FULL: HTTPStatus.CONFLICT,
    ErrorCode.MISSING_FIELD: HTTPStatus.UNPROCESSABLE_ENTITY,
    ErrorCode.INVALID_FIELD: HTTPStatus.UNPROCESSABLE_ENTITY,
    ErrorCode.MESSAGE_TOO_LONG: HTTPStatus.UNPROCESSABLE_ENTITY,
    ErrorCode.RATE_LIMITED: HTTPStatus.TOO_MANY_REQUESTS,
    ErrorCode.BUDGET_EXCEEDED: HTTPStatus.TOO_MANY_REQUESTS,
    ErrorCode.STORE_UNAVAILABLE: HTTPStatus.SERVICE_UNAVAILABLE,
    ErrorCode.INTERNAL_ERROR: HTTPStatus.INTERNAL_SERVER_ERROR,
}
_FIELD_NAME = re.compile(r"field '([^']+)'")


def from_client_error(exc: ClientError) -> ApiError:
    """The HTTP form of an error the socket would send as an ``error`` frame."""
    status = _STATUS.get(exc.code, HTTPStatus.BAD_REQUEST)
    field = None
    if status == HTTPStatus.UNPROCESSABLE_ENTITY:
        named = _FIELD_NAME.search(exc.message)
        field = named.group(1) if named else None
    retry_after = exc.retry_after
    if status == HTTPStatus.TOO_MANY_REQUESTS and retry_after is None:
        retry_after = 1.0
    return ApiError(int(status), exc.code, exc.message, field=field, retry_after=retry_after)


def not_found(kind: str, ident: str) -> ApiError:
    """The 404 for an id that does not exist *for this caller*: the same answer whether it
    exists for somebody else or not at all, so ids reveal nothing."""
    codes = {
        "conversation": ErrorCode.CONVERSATION_NOT_FOUND,
        "message": ErrorCode.MESSAGE_NOT_FOUND,
        "confirmation": ErrorCode.CONFIRMATION_NOT_FOUND,
    }
    return ApiError(HTTPStatus.NOT_FOUND, codes[kind], f"{kind} '{ident}' not found")


def invalid(field: str, problem: str) -> ApiError:
    """A 422 naming the body field or query parameter at fault."""
    return ApiError(
        HTTPStatus.UNPROCESSABLE_ENTITY,
        ErrorCode.INVALID_FIELD,
        f"field '{field}' {problem}",
        field=field,
    )
