"""An httpx transport that streams from an ASGI app in the same process.

httpx's own ``ASGITransport`` collects the whole response body before returning it, so a
streamed completion would arrive in one burst and a dropped stream would surface as an app
exception rather than a broken connection. ``StreamingASGITransport`` runs the app in a task and
hands each body chunk to the reader as the app sends it, through a bounded queue (a slow reader
holds the app back, as a socket's flow control would). What a real socket would show, it shows:

- a response the app starts but does not finish (it raises, or returns early) ends the body
  with ``httpx.RemoteProtocolError``, which the ``openai`` SDK turns into ``APIConnectionError``;
- an app that fails before starting a response gets a plain 500, as uvicorn sends;
- closing the response early (the reader stops) tells the app the client disconnected and
  cancels its task;
- the request's read timeout applies to the response start and to every chunk.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any, Final

import httpx
import openai
from starlette.types import ASGIApp, Message

logger = logging.getLogger(__name__)

DEFAULT_MAX_BUFFERED_CHUNKS = 64


class _EndOfBody:
    """The marker queued after the last body chunk."""


_END: Final = _EndOfBody()
_QueueItem = bytes | _EndOfBody | httpx.TransportError


class StreamingASGITransport(httpx.AsyncBaseTransport):
    """Sends httpx requests to an ASGI app in-process and streams its responses back."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        client: tuple[str, int] = ("127.0.0.1", 123),
        root_path: str = "",
        max_buffered_chunks: int = DEFAULT_MAX_BUFFERED_CHUNKS,
    ) -> None:
        self.app = app
        self.client = client
        self.root_path = root_path
        self.max_buffered_chunks = max_buffered_chunks

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Start the app on ``request`` and return as soon as it starts its response."""
        assert isinstance(request.stream, httpx.AsyncByteStream)
        body = b"".join([chunk async for chunk in request.stream])
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": request.method,
            "headers": [(name.lower(), value) for name, value in request.headers.raw],
            "scheme": request.url.scheme,
            "path": request.url.path,
            "raw_path": request.url.raw_path.split(b"?")[0],
            "query_string": request.url.query,
            "server": (request.url.host, request.url.port),
            "client": self.client,
            "root_path": self.root_path,
        }
        timeouts = request.extensions.get("timeout", {})
        exchange = _Exchange(self.app, scope, body, request, self.max_buffered_chunks)
        exchange.start()
        try:
            status, headers = await asyncio.wait_for(
                asyncio.shield(exchange.response_start), timeouts.get("read")
            )
        except TimeoutError:
            await exchange.close()
            raise httpx.ReadTimeout("timed out waiting for the response", request=request) from None
        except BaseException:
            await exchange.close()
            raise
        return httpx.Response(
            status,
            headers=headers,
            stream=_ResponseStream(exchange, timeouts.get("read")),
            extensions={"http_version": b"HTTP/1.1"},
        )


class _Exchange:
    """One request/response between the transport and the app task."""

    def __init__(
        self,
        app: ASGIApp,
        scope: dict[str, Any],
        body: bytes,
        request: httpx.Request,
        max_buffered_chunks: int,
    ) -> None:
        self.app = app
        self.scope = scope
        self.body = body
        self.request = request
        loop = asyncio.get_running_loop()
        self.response_start: asyncio.Future[tuple[int, list[tuple[bytes, bytes]]]] = (
            loop.create_future()
        )
        self.chunks: asyncio.Queue[_QueueItem] = asyncio.Queue(maxsize=max_buffered_chunks)
        self.disconnected = asyncio.Event()
        self.request_sent = False
        self.response_complete = False
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name=f"asgi {self.request.url.path}")

    async def close(self) -> None:
        """The client is done: tell the app it disconnected and stop it if it still runs."""
        self.disconnected.set()
        if self.task is not None and not self.task.done():
            self.task.cancel()
            await asyncio.wait({self.task})

    # -- the ASGI side -----------------------------------------------------------------------

    async def _receive(self) -> Message:
        if not self.request_sent:
            self.request_sent = True
            return {"type": "http.request", "body": self.body, "more_body": False}
        await self.disconnected.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message: Message) -> None:
        if self.disconnected.is_set():
            return  # the client has gone; a server drops what is still written
        if message["type"] == "http.response.start":
            if self.response_start.done():
                raise RuntimeError("the app started its response twice")
            headers = [(bytes(name), bytes(value)) for name, value in message.get("headers", [])]
            self.response_start.set_result((message["status"], headers))
        elif message["type"] == "http.response.body":
            if not self.response_start.done() or self.response_complete:
                raise RuntimeError("the app sent a body outside of a started response")
            chunk = bytes(message.get("body", b""))
            if chunk and self.request.method != "HEAD":
                await self.chunks.put(chunk)
            if not message.get("more_body", False):
                self.response_complete = True
                await self.chunks.put(_END)

    async def _run(self) -> None:
        try:
            await self.app(self.scope, self._receive, self._send)
        except Exception as exc:
            logger.error("the in-process app failed on %s", self.request.url.path, exc_info=exc)
            await self._break_off(f"the app failed mid-response: {exc!r}")
        else:
            await self._break_off("the app returned without completing its response")

    async def _break_off(self, reason: str) -> None:
        """End the exchange the way a server ends a connection it cannot finish."""
        if self.response_complete:
            return
        if not self.response_start.done():
            # Before any response, a server answers 500 itself (uvicorn does).
            self.response_start.set_result((500, [(b"content-type", b"text/plain; charset=utf-8")]))
            await self.chunks.put(b"Internal Server Error")
            await self.chunks.put(_END)
            return
        error = httpx.RemoteProtocolError(
            f"peer closed connection without sending complete message body ({reason})",
            request=self.request,
        )
        await self.chunks.put(error)


class _ResponseStream(httpx.AsyncByteStream):
    """The response body as the app sends it."""

    def __init__(self, exchange: _Exchange, read_timeout: float | None) -> None:
        self.exchange = exchange
        self.read_timeout = read_timeout

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            try:
                item = await asyncio.wait_for(self.exchange.chunks.get(), self.read_timeout)
            except TimeoutError:
                raise httpx.ReadTimeout(
                    "timed out reading the response", request=self.exchange.request
                ) from None
            if isinstance(item, _EndOfBody):
                return
            if isinstance(item, httpx.TransportError):
                raise item
            yield item

    async def aclose(self) -> None:
        await self.exchange.close()


def in_process_client(
    app: ASGIApp, *, base_url: str = "http://devllm/v1", api_key: str = "dev"
) -> openai.AsyncOpenAI:
    """An ``openai.AsyncOpenAI`` client talking to ``app`` in-process, streaming, no retries."""
    http_client = httpx.AsyncClient(transport=StreamingASGITransport(app))
    return openai.AsyncOpenAI(
        base_url=base_url,
        api_key=api_key,
        max_retries=0,
        http_client=http_client,  # type: ignore[arg-type]  # the SDK accepts httpx clients too
    )
