"""Graceful shutdown: on SIGTERM, finish running turns before the sockets close.

uvicorn's own shutdown stops listening and then closes every WebSocket with 1012 at once;
only after that does the application's lifespan end. A turn still streaming would then go on
into the frame log with no local tab left to see it, and every tab of the worker would
reconnect in the same instant. :class:`DrainingServer` puts a drain in front:

1. stop listening, so the load balancer sends new sockets to other workers, and report
   ``draining`` on ``/readyz``;
2. let the running turns finish, for at most ``shutdown_drain_s``; messages that arrive
   meanwhile are queued for another worker (``TurnEngine.drain``); a turn still running at the
   end is stopped and ends ``interrupted`` with its text saved;
3. close every socket with 1012 (after the frames already queued for it), so clients
   reconnect to another worker and resume from their last ``seq``;
4. hand over to uvicorn's shutdown, which ends whatever is left and runs the lifespan's end.

A second SIGINT still forces an immediate exit, as in uvicorn.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import uvicorn

from protocol import CloseCode

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from server.stream.hub import FrameHub
    from server.turns.engine import TurnEngine

logger = logging.getLogger(__name__)

# How long the sockets get to take their 1012 close before uvicorn ends them anyway.
CLOSE_WAIT_S = 3.0


class DrainingServer(uvicorn.Server):
    """A uvicorn server that drains Parley's turns and sockets before shutting down."""

    def __init__(self, config: uvicorn.Config, app: Starlette) -> None:
        super().__init__(config)
        self._app = app

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in getattr(self, "servers", []):
            server.close()  # stop listening; uvicorn's shutdown does this again harmlessly
        # Set by the app's lifespan once the worker is assembled.
        drain: Callable[[], Awaitable[None]] | None = getattr(self._app.state, "drain", None)
        if drain is not None and not self.force_exit:
            try:
                await drain()
            except Exception:
                logger.exception("draining the worker failed; shutting down anyway")
        await super().shutdown(sockets)


async def drain_worker(engine: TurnEngine, hub: FrameHub, drain_s: float) -> None:
    """Finish or stop this worker's turns, then ask its tabs to reconnect elsewhere."""
    logger.info("shutting down: draining turns for up to %g s", drain_s)
    await engine.drain(drain_s)
    tabs = hub.all_tabs()
    for tab in tabs:
        tab.close(CloseCode.SERVICE_RESTART, "worker restarting: reconnect")
    if tabs:
        waits = [asyncio.create_task(tab.closed.wait()) for tab in tabs]
        _, late = await asyncio.wait(waits, timeout=CLOSE_WAIT_S)
        for wait in late:
            wait.cancel()
    logger.info("drained: %d sockets asked to reconnect", len(tabs))
