"""Errors of the host app, each one an HTTP answer ``{"error": message, "code"?: reason}``.

```
ApiError                     any refusal; `status` is the HTTP status
 ├── BadRequest              400: malformed arguments, body or Idempotency-Key
 ├── Unauthorized            401: no token, or one this app does not accept
 ├── Forbidden               403: a good token whose user may not do this
 ├── NotFound                404: no such operation or document
 ├── KeyReused               422: an Idempotency-Key sent again with a different request
 ├── PayloadTooLarge         413: the body is over ERP_MAX_BODY_BYTES
 ├── Busy                    409: an action with this Idempotency-Key has not finished yet
 ├── TimedOut                504: the operation ran longer than its tool's timeout
 └── Refused                 4xx: the books say no (the domain's own message and code)
```

Messages are lowercase fragments that name the offending thing; they reach the model, which
explains them to the user, so they never carry internals.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ApiError",
    "BadRequest",
    "Busy",
    "Forbidden",
    "KeyReused",
    "NotFound",
    "PayloadTooLarge",
    "Refused",
    "TimedOut",
    "Unauthorized",
]


class ApiError(Exception):
    """A refusal answered as JSON.

    Attributes:
        status: the HTTP status code.
        message: what went wrong, for the caller (and through Parley, for the model).
        code: an optional stable machine-readable reason, e.g. ``"over_allocation"``.
    """

    status = 400

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code

    def body(self) -> dict[str, Any]:
        """The JSON answer."""
        body: dict[str, Any] = {"error": self.message}
        if self.code is not None:
            body["code"] = self.code
        return body

    def headers(self) -> dict[str, str]:
        """Extra response headers."""
        return {}


class BadRequest(ApiError):
    """The request is malformed: arguments, body or headers."""

    status = 400


class Unauthorized(ApiError):
    """No bearer token, or one that is not acceptable; the reason never echoes the token."""

    status = 401

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer error="invalid_token"'}


class Forbidden(ApiError):
    """The user is known, but their roles or the token's purpose do not allow the call."""

    status = 403


class NotFound(ApiError):
    """No such operation, or no such document in the caller's tenant."""

    status = 404


class PayloadTooLarge(ApiError):
    """The request body is larger than the configured bound."""

    status = 413


class KeyReused(ApiError):
    """An Idempotency-Key already answered a different request (other body, path or user)."""

    status = 422


class Busy(ApiError):
    """The first request with this Idempotency-Key is still running; ask again shortly."""

    status = 409


class TimedOut(ApiError):
    """The operation did not finish in time; an action's writes were rolled back."""

    status = 504


class Refused(ApiError):
    """A business rule refused the call; `status` depends on the rule (409, 422 ...)."""

    def __init__(self, message: str, *, status: int, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.status = status
