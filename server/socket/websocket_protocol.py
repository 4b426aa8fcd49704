"""uvicorn's WebSocket protocol, plus a way to drop a peer that stopped reading.

Through ASGI an application can only close a socket with ``websocket.close``, and uvicorn
sends that, like every message, only once the connection's write buffer has drained below its
low-water mark. A peer that stopped reading never drains it: the close waits forever, and with
it the memory of everything still buffered. ``parley serve`` therefore runs this subclass of
uvicorn's default (websockets sans-I/O) protocol, which offers the application one more
operation through an ASGI extension in the scope::

    scope["extensions"]["parley.drop"]["drop"](code, reason, timeout_s)

It writes the close frame behind whatever the peer has not read yet, without waiting, tells
the application the socket is gone, and aborts the connection (discarding the buffer) if the
peer has not answered the close within ``timeout_s``. A peer that reads again in time sees its
frames and then a proper close with ``code``.

This leans on the protocol's internals (``conn``, ``transport``, ``close_sent``, ...), which
uvicorn does not promise to keep; tests/server/test_stream_slow_consumer.py fails if they move.
"""

from __future__ import annotations

import logging
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from server.socket.connection import DROP_EXTENSION

logger = logging.getLogger(__name__)


class DroppableWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's ``websockets-sansio`` protocol with the ``parley.drop`` extension."""

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)  # absent when the upgrade was refused
        if scope is not None and not self.close_sent:
            scope["extensions"][DROP_EXTENSION] = {"drop": self.drop}

    def drop(self, code: int, reason: str, timeout_s: float) -> None:
        """Close without waiting for the peer to read; abort if it has not within ``timeout_s``."""
        if self.disconnected or self.transport.is_closing():
            return
        if not self.close_sent:
            self.conn.send_close(code, reason)
            self.transport.write(b"".join(self.conn.data_to_send()))
            self.close_sent = True
            self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
            if self.read_paused:
                # Keep reading, so the peer's answer to the close can end the connection.
                self.read_paused = False
                self.transport.resume_reading()
        if self.close_timer is not None:
            self.close_timer.cancel()
        self.close_timer = self.loop.call_later(timeout_s, self._abort)

    def _abort(self) -> None:
        self.close_timer = None
        if not self.disconnected:
            logger.info("cutting a connection that did not take its close frame")
            self.transport.abort()
