"""``error`` frames about a user's turns, for that user's tabs on this worker.

Error frames are not part of the logged stream (DESIGN: they answer a request). A failure that
belongs to a turn is still shown to every tab here; tabs elsewhere learn the outcome from the
logged ``turn_end``.
"""

from __future__ import annotations

from protocol import ERROR_INFO, Error, ErrorCode
from server.stream.hub import FrameHub
from storage.keys import UserKey


class Notices:
    def __init__(self, hub: FrameHub) -> None:
        self._hub = hub

    def turn_failed(
        self,
        user: UserKey,
        code: ErrorCode,
        message: str,
        *,
        ref: str | None = None,
        retryable: bool | None = None,
        retry_after: float | None = None,
    ) -> None:
        frame = Error(
            code=code,
            message=message,
            retryable=ERROR_INFO[code].retryable if retryable is None else retryable,
            ref=ref or None,
            retry_after=retry_after,
        )
        for tab in self._hub.tabs_of(user):
            tab.send(frame)
