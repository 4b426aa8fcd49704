"""One browser tab's socket: a bounded send queue and the task that drains it.

Frames for a tab come from several places at once (its own requests, the user's frame stream,
keepalive). They all go through one queue so they leave in order, and the queue is bounded in
frames and bytes: a tab that stops reading is closed with 1013 instead of growing the worker's
memory (invariant 9).

A peer that does not read also stops the writer: the server's ``send`` waits for the socket's
buffer to drain, which never happens. So a tab dropped for reading too slowly is not closed
through the writer. Its queue is emptied at once and the close goes out through the server's
``parley.drop`` extension (server/socket/websocket_protocol.py): the close frame is put behind what
the peer has not read yet, without waiting for it, and the connection is cut if the peer has
not taken it within ``send_close_timeout_s``. Under a server without the extension the writer
tries to close for that long and then gives up; the server's keepalive ends the connection.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from protocol import CloseCode, encode
from server.security.auth import Principal
from storage.frame_log import LoggedFrame

logger = logging.getLogger(__name__)

# The ASGI extension server/socket/websocket_protocol.py adds to a socket's scope.
DROP_EXTENSION = "parley.drop"
DropHook = Callable[[int, str, float], None]


@dataclass(slots=True)
class SendLimits:
    """Bounds on what waits to be sent to one socket."""

    max_frames: int
    max_bytes: int
    # How long a closing socket may take to accept its close frame before it is cut.
    close_timeout_s: float = 5.0


@dataclass(slots=True)
class _Close:
    code: int
    reason: str


class Connection:
    """A connected tab, with its identity once ``hello`` has authenticated it."""

    def __init__(self, websocket: WebSocket, limits: SendLimits) -> None:
        self.id = "k_" + secrets.token_hex(8)
        self.websocket = websocket
        self.principal: Principal | None = None
        self._limits = limits
        self._queue: collections.deque[str] = collections.deque()
        self._queued_bytes = 0
        self._wakeup = asyncio.Event()
        self._close: _Close | None = None
        self._writer: asyncio.Task[None] | None = None
        self.closed = asyncio.Event()
        # Frame-stream bookkeeping: the highest seq queued for this tab, and, while the tab is
        # replaying what it missed, the live frames that arrive meanwhile (bounded like the
        # queue they are bound for).
        self.last_seq = 0
        self.epoch: str | None = None
        self._held: list[tuple[int, str]] | None = None
        self._held_bytes = 0

    # -- sending -------------------------------------------------------------------------------

    def start(self) -> None:
        self._writer = asyncio.create_task(self._drain(), name=f"writer {self.id}")

    def send(self, frame: object) -> None:
        """Queue a frame object (an unlogged one: ``ready``, ``error``, ``pong``...)."""
        self.send_text(encode(frame))  # type: ignore[arg-type]

    def send_text(self, text: str) -> None:
        """Queue encoded frame text; a full queue closes the socket with 1013."""
        if self._close is not None:
            return
        size = len(text)
        if len(self._queue) >= self._limits.max_frames or (
            self._queued_bytes + size > self._limits.max_bytes
        ):
            logger.warning("connection %s: send queue full, dropping a slow reader", self.id)
            self.drop(CloseCode.TRY_AGAIN_LATER, "send queue full: client is not reading")
            return
        self._queue.append(text)
        self._queued_bytes += size
        self._wakeup.set()

    def deliver_logged(self, seq: int, text: str) -> None:
        """Queue a frame from the user's stream, skipping what this tab already has."""
        if self._held is not None:
            self._hold(seq, text)
            return
        if seq <= self.last_seq:
            return
        self.last_seq = seq
        self.send_text(text)

    def hold_live_frames(self) -> None:
        """Keep live frames aside while the tab's missed frames are being replayed."""
        self._held = []
        self._held_bytes = 0

    def _hold(self, seq: int, text: str) -> None:
        # Held frames all go into the send queue when the replay ends: more than it can take
        # would drop the tab then, so drop it now rather than hold them for as long as its
        # snapshot takes to build.
        if self._close is not None or self._held is None:
            return
        if len(self._held) >= self._limits.max_frames or (
            self._held_bytes + len(text) > self._limits.max_bytes
        ):
            logger.warning("connection %s: too many live frames during replay, dropping", self.id)
            self._held.clear()
            self._held_bytes = 0
            self.drop(CloseCode.TRY_AGAIN_LATER, "send queue full: too many frames while resuming")
            return
        self._held.append((seq, text))
        self._held_bytes += len(text)

    def finish_replay(self, missed: Sequence[LoggedFrame]) -> None:
        """Queue the frames the tab missed, then the live ones held meanwhile, without
        repeating any: both lists may cover the same seqs."""
        held, self._held = self._held or [], None
        self._held_bytes = 0
        for frame in missed:
            self.deliver_logged(frame.seq, frame.data)
        for seq, text in held:
            self.deliver_logged(seq, text)

    def close(self, code: int, reason: str = "") -> None:
        """Close after the frames already queued (the error frame explaining why included)."""
        if self._close is None:
            self._close = _Close(int(code), reason[:120])
            self._wakeup.set()

    def drop(self, code: int, reason: str = "") -> None:
        """Close now, discarding what is queued, even if the peer reads nothing any more."""
        if self._close is not None and self._close.code == code and not self._queue:
            return
        self._close = _Close(int(code), reason[:120])
        self._queue.clear()
        self._queued_bytes = 0
        hook = self._drop_hook()
        if hook is None:
            self._wakeup.set()  # the writer closes once its current send returns
            return
        hook(int(code), self._close.reason, self._limits.close_timeout_s)
        # The writer may be stuck in a send that would never return; nothing is left for it.
        if self._writer is not None and not self._writer.done():
            self._writer.cancel()
        else:
            self.closed.set()

    def _drop_hook(self) -> DropHook | None:
        extensions: dict[str, Any] = self.websocket.scope.get("extensions") or {}
        entry = extensions.get(DROP_EXTENSION)
        return entry.get("drop") if isinstance(entry, dict) else None

    @property
    def closing(self) -> bool:
        return self._close is not None

    @property
    def queued_frames(self) -> int:
        return len(self._queue)

    async def _drain(self) -> None:
        try:
            while True:
                await self._wakeup.wait()
                self._wakeup.clear()
                while self._queue:
                    text = self._queue.popleft()
                    self._queued_bytes -= len(text)
                    await self.websocket.send_text(text)
                if self._close is not None:
                    await self._send_close(self._close)
                    return
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass  # the peer is gone; the receive loop notices and cleans up
        finally:
            self._queue.clear()
            self._queued_bytes = 0
            self.closed.set()

    async def _send_close(self, close: _Close) -> None:
        try:
            async with asyncio.timeout(self._limits.close_timeout_s):
                await self.websocket.close(close.code, close.reason)
        except TimeoutError:
            # The peer stopped reading while we closed: put the close behind its unread data
            # and cut the connection if it does not take it either.
            hook = self._drop_hook()
            if hook is not None:
                hook(close.code, close.reason, self._limits.close_timeout_s)

    async def stop(self) -> None:
        """Stop the writer task (after the receive loop ended)."""
        if self._writer is not None and not self._writer.done():
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
