"""Errors the server turns into ``error`` frames and close codes.

::

    ParleyError
    ├── ClientError      one ``error`` frame; the socket stays open
    │   └── TurnRejected a message that cannot start or join a turn
    └── CloseSocket      an ``error`` frame (optional), then a close code

Only the WebSocket endpoint catches these and speaks to the client; everything below it raises.
"""

from __future__ import annotations

from protocol import CloseCode, ErrorCode


class ParleyError(Exception):
    """Root of the server's own errors."""


class ClientError(ParleyError):
    """A request the client got wrong, or may retry; becomes one ``error`` frame."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        retryable: bool = False,
        ref: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = retryable
        self.ref = ref
        self.retry_after = retry_after


class TurnRejected(ClientError):
    """A user message that cannot start or queue a turn (double-texting policy, full queue)."""


class CloseSocket(ParleyError):
    """Ends the socket with ``code``; an ``error`` frame goes first when ``error`` is set."""

    def __init__(self, code: CloseCode, reason: str, error: ErrorCode | None = None) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.error = error
