"""Failures and the errors that carry them to the client.

::

    ParleyError
    ├── FailedError       carries a Failure (code, message, retryable, retry_after)
    │   ├── ClientError   one ``error`` frame answering a request; the socket stays open
    │   │   ├── TurnRejected    a message that cannot start or join a turn
    │   │   └── BudgetExceeded  a model call refused before it is made
    │   └── ModelError    a model call that did not produce a complete reply
    └── CloseSocket       an ``error`` frame (optional), then a close code

A :class:`Failure` is the one shape of "what went wrong" inside the server: it becomes an
``error`` frame for the request that failed, or the ``error`` of a logged ``turn_end`` that
every tab sees. Only the WebSocket endpoint and the turn engine turn failures into frames;
everything below them raises.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocol import ERROR_INFO, CloseCode, Error, ErrorCode, TurnError


@dataclass(frozen=True, slots=True)
class Failure:
    """What went wrong, in the words the protocol uses for it."""

    code: ErrorCode
    message: str
    retryable: bool = False
    retry_after: float | None = None

    @classmethod
    def of(cls, code: ErrorCode, message: str) -> Failure:
        """A failure whose retryability is the protocol's default for ``code``."""
        return cls(code, message, retryable=ERROR_INFO[code].retryable)

    @classmethod
    def from_exception(cls, exc: BaseException) -> Failure:
        """The failure an exception stands for; anything unexpected is an internal error."""
        if isinstance(exc, FailedError):
            return exc.failure
        return cls.of(ErrorCode.INTERNAL_ERROR, "the assistant failed unexpectedly")

    def turn_error(self) -> TurnError:
        """The ``error`` of a logged ``turn_end``."""
        return TurnError(
            code=self.code,
            message=self.message,
            retryable=self.retryable,
            retry_after=self.retry_after,
        )

    def error_frame(self, ref: str | None = None) -> Error:
        """An unlogged ``error`` frame answering the request ``ref``."""
        return Error(
            code=self.code,
            message=self.message,
            retryable=self.retryable,
            ref=ref,
            retry_after=self.retry_after,
        )


class ParleyError(Exception):
    """Root of the server's own errors."""


class FailedError(ParleyError):
    """An error that carries a :class:`Failure`."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.failure = Failure(code, message, retryable=retryable, retry_after=retry_after)

    @property
    def code(self) -> ErrorCode:
        return self.failure.code

    @property
    def message(self) -> str:
        return self.failure.message

    @property
    def retryable(self) -> bool:
        return self.failure.retryable

    @property
    def retry_after(self) -> float | None:
        return self.failure.retry_after


class ClientError(FailedError):
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
        super().__init__(code, message, retryable=retryable, retry_after=retry_after)
        self.ref = ref


class TurnRejected(ClientError):
    """A user message that cannot start or queue a turn (double-texting policy, full queue)."""


class BudgetExceeded(ClientError):
    """A turn refused before its model call because a budget would be overspent."""


class ModelError(FailedError):
    """A model call that did not produce a complete reply."""


class CloseSocket(ParleyError):
    """Ends the socket with ``code``; an ``error`` frame goes first when ``error`` is set."""

    def __init__(self, code: CloseCode, reason: str, error: ErrorCode | None = None) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.error = error
