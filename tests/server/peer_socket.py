"""An in-memory WebSocket peer for driving ``Connection`` without a network.

``Connection`` uses three things of Starlette's ``WebSocket``: ``send_text``, ``close`` and
``scope`` (for the server's ``parley.drop`` extension). :class:`PeerSocket` offers exactly
those and plays the browser tab on the other end: it records what reaches it and can stop
reading, as a tab does when its page hangs or its network stalls. Everything on Parley's
side of the socket is the real code.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import orjson

WAIT_S = 10.0  # a generous bound for things that happen within milliseconds


class PeerSocket:
    """The far end of one tab's socket, as ``Connection`` sees it."""

    def __init__(self) -> None:
        self.scope: dict[str, Any] = {"type": "websocket", "extensions": {}}
        self.received: list[str] = []
        self.close_code: int | None = None
        self.close_reason = ""
        self.sends_waiting = 0  # sends stuck behind a peer that does not read
        self._reading = asyncio.Event()
        self._reading.set()

    # -- what Connection calls ----------------------------------------------------------

    async def send_text(self, data: str) -> None:
        if self.close_code is not None:
            # What Starlette raises for a send after the close.
            raise RuntimeError('Cannot call "send" once a close message has been sent.')
        self.sends_waiting += 1
        try:
            await self._reading.wait()
        finally:
            self.sends_waiting -= 1
        self.received.append(data)

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        await self._reading.wait()
        self.close_code = code
        self.close_reason = reason or ""

    # -- the tab's behaviour ------------------------------------------------------------

    def stop_reading(self) -> None:
        """From now on nothing sent reaches the tab until :meth:`read_again`."""
        self._reading.clear()

    def read_again(self) -> None:
        self._reading.set()

    @property
    def frames(self) -> list[dict[str, Any]]:
        return [orjson.loads(text) for text in self.received]

    @property
    def seqs(self) -> list[int]:
        return [frame["seq"] for frame in self.frames]


async def until(condition: Callable[[], bool], what: str, timeout_s: float = WAIT_S) -> None:
    """Wait for ``condition`` to hold, polling; fail naming ``what`` if it never does."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)
