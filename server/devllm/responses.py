"""ASGI responses of the dev model that Starlette's own do not cover.

``EventStreamResponse`` paces a completion's SSE events at a token rate, stops as soon as the
client goes away, and can break off mid-stream. ``BrokenResponse`` breaks off a plain body the
same way. Breaking off means returning without the final body message: uvicorn then closes the
connection (the client sees an incomplete chunked body) and ``StreamingASGITransport`` raises,
which is what a client sees when a real endpoint drops a stream.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from server.devllm.wire import StreamEvent

logger = logging.getLogger(__name__)


class EventStreamResponse(Response):
    """A ``text/event-stream`` of prepared events, paced and optionally cut short."""

    media_type = "text/event-stream"

    def __init__(
        self,
        events: Sequence[StreamEvent],
        *,
        first_token_delay_s: float = 0.0,
        token_rate: float = 0.0,
        drop_after_chunks: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.status_code = 200
        self.background = None
        self.events = list(events)
        self.first_token_delay_s = first_token_delay_s
        self.token_rate = token_rate
        self.drop_after_chunks = drop_after_chunks
        self.init_headers({"cache-control": "no-cache", **(headers or {})})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Generating and watching for the client leaving run side by side; whichever ends
        # first ends the other, so an abandoned stream stops producing at once.
        sender = asyncio.ensure_future(self._send_events(send))
        watcher = asyncio.ensure_future(_until_disconnect(receive))
        try:
            await asyncio.wait({sender, watcher}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sender.cancel()
            watcher.cancel()
            await asyncio.wait({sender, watcher})
        if not watcher.cancelled() and watcher.exception() is not None:
            logger.debug("receive failed while streaming", exc_info=watcher.exception())
        if not sender.cancelled():
            sender.result()  # re-raises what went wrong while sending

    async def _send_events(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        events = self.events
        if self.drop_after_chunks is not None:
            events = events[: _cut_index(events, self.drop_after_chunks)]
        loop = asyncio.get_running_loop()
        if self.first_token_delay_s > 0:
            await asyncio.sleep(self.first_token_delay_s)
        started = loop.time()
        generated = 0
        for event in events:
            if event.generated:
                # Token k goes out k/rate seconds after the first, measured from the start so
                # that slow sends do not add up to a slower rate.
                if self.token_rate > 0 and generated > 0:
                    delay = started + generated / self.token_rate - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                generated += 1
            await send({"type": "http.response.body", "body": event.data, "more_body": True})
        if self.drop_after_chunks is not None:
            logger.info("dev model dropping the stream as its faults ask")
            return  # without the final message: the connection breaks off
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def _cut_index(events: Sequence[StreamEvent], after_chunks: int) -> int:
    """Where to break off: after ``after_chunks`` content events, before the finish at latest."""
    positions = [index for index, event in enumerate(events) if event.content]
    if not positions:
        return 1
    if after_chunks <= 0:
        return positions[0]
    return positions[min(after_chunks, len(positions)) - 1] + 1


async def _until_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


class BrokenResponse(Response):
    """A response that announces its full length, sends half of the body and breaks off."""

    def __init__(self, body: bytes, *, media_type: str = "application/json") -> None:
        super().__init__(body, status_code=200, media_type=media_type)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        half = bytes(self.body[: len(self.body) // 2])
        await send({"type": "http.response.body", "body": half, "more_body": True})
        logger.info("dev model dropping the response as its faults ask")
