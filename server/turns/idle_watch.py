"""A timeout on silence: it fires only after a wait of its length with nothing arriving.

A model stream may take minutes in all, but a pause of ``model_stream_idle_timeout_s``
between two pieces of it means the endpoint is stuck. Wrapping every read in its own
``asyncio.timeout`` says that, but costs a timer made and cancelled per token. This keeps one
timer for the whole stream: each read only notes the time, and when the timer comes due it
either finds a read since (and sets itself again for the rest of the window) or ends the wait.

Time spent handling what arrived (``busy`` until ``waiting``) does not count as silence: that
is Parley's own work, such as logging a delta, and must not be cut off half done.
"""

from __future__ import annotations

import asyncio
from types import TracebackType


class IdleWatch:
    """``async with IdleWatch(s):`` raises ``TimeoutError`` after ``s`` seconds of silence.

    Only the waits between ``waiting()`` and the next ``busy()`` count; the block starts
    waiting.
    """

    __slots__ = ("_busy", "_loop", "_scope", "_seconds", "_since", "_timer")

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._loop: asyncio.AbstractEventLoop | None = None
        self._scope: asyncio.Timeout | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._since = 0.0
        self._busy = False

    async def __aenter__(self) -> IdleWatch:
        self._loop = asyncio.get_running_loop()
        self._scope = asyncio.timeout(None)
        await self._scope.__aenter__()
        self._since = self._loop.time()
        self._timer = self._loop.call_at(self._since + self._seconds, self._check)
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        assert self._scope is not None
        # Turns the cancellation it caused into TimeoutError, like asyncio.timeout does.
        await self._scope.__aexit__(kind, error, trace)

    def busy(self) -> None:
        """Something arrived: what follows is handling it, not silence."""
        self._busy = True

    def waiting(self) -> None:
        """Handled: from now on the silence counts again."""
        assert self._loop is not None
        self._since = self._loop.time()
        self._busy = False

    def _check(self) -> None:
        assert self._loop is not None
        assert self._scope is not None
        now = self._loop.time()
        if self._busy:
            due = now + self._seconds
        else:
            due = self._since + self._seconds
            if due <= now:
                self._timer = None
                # Ends the block with TimeoutError at its current await, as asyncio.timeout.
                self._scope.reschedule(now)
                return
        self._timer = self._loop.call_at(due, self._check)
