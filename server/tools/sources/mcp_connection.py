"""One MCP server kept connected: its tool list, kept fresh, and calls made as one user.

An `McpConnection` owns an `mcp.Client` (the official SDK, 2.x) in a background task, because
the SDK's clients are anyio context managers that must be entered and left by the same task. The
task connects (streamable HTTP to ``url``, or a child process over stdio for ``command``),
lists the tools, then watches for changes the way the negotiated protocol era delivers them: a
``subscriptions/listen`` stream on 2026-07-28 connections, ``notifications/tools/list_changed``
through the message handler on handshake-era ones. When the server goes away the task notices
(the listen stream ends, or a call finds the connection gone), marks the connection down and
reconnects with a bounded backoff, so a server that is down at startup never stops Parley.

Per-call headers. Every call carries its own ``Authorization`` (the user's token) and, for an
action, its ``Idempotency-Key``, while all calls share one client. The SDK offers no per-call
headers on ``call_tool``, but its streamable-HTTP transport sends each request from a task that
runs in a copy of the *caller's* ``contextvars`` context (``mcp.shared._context_streams``), so
`call` sets the headers in a context variable and the HTTP transport below adds them to exactly
that request. One client per call would work too, at the price of a ``server/discover`` or
``initialize`` round trip per call and no shared change stream; a test runs concurrent calls
with different tokens so a change in the SDK would be caught.

Transport errors. The SDK's HTTP transport lets a connection error of one POST escape into its
task group, which would take the whole client down with the caller left guessing whether the
request left. `_HostTransport` turns such errors into a JSON-RPC error answer for that request
instead, with a code saying whether the request certainly never left (`NOT_DELIVERED`: connect
failed) or may have been received (`NO_ANSWER`): an action may be retried in the first case, and
its outcome is unknown in the second. It also caps the bytes read from one answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal

import anyio
import anyio.lowlevel
import httpx2
import mcp_types as types
from mcp import Client, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.client.subscriptions import SubscriptionLost
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

__all__ = [
    "NOT_DELIVERED",
    "NO_ANSWER",
    "CallFailed",
    "McpConnection",
    "McpLimits",
    "McpUnavailable",
]

logger = logging.getLogger(__name__)

# JSON-RPC error codes `_HostTransport` answers a failed POST with (the server error range the
# specification leaves to implementations; the SDK itself uses -32000 and -32001).
NOT_DELIVERED = -32090
NO_ANSWER = -32091


class _CallState:
    """What one call tells the HTTP transport, and what the transport learns about it."""

    __slots__ = ("headers", "too_large")

    def __init__(self, headers: Mapping[str, str]) -> None:
        self.headers = tuple(headers.items())
        self.too_large = False


# The request task runs in a copy of the caller's context: the object set here is shared.
_current_call: ContextVar[_CallState | None] = ContextVar("parley_mcp_call", default=None)
# Errors raised before any byte of the request went out.
_NOT_SENT = (
    httpx2.ConnectError,
    httpx2.ConnectTimeout,
    httpx2.PoolTimeout,
    httpx2.UnsupportedProtocol,
)
_MESSAGE_MAX = 500


@dataclass(frozen=True, slots=True)
class McpLimits:
    """The bounds of one MCP connection (each comes from a named setting).

    Attributes:
        list_timeout_s: how long the handshake and one page of ``tools/list`` may take.
        max_tools: tools kept from one server's listing; the rest are dropped with a warning.
        max_list_bytes: JSON bytes of the tool descriptions kept, likewise.
        max_pages: ``tools/list`` pages read before the listing is cut short.
        max_response_bytes: bytes read from one HTTP answer before giving up on it.
        retry_min_s: first wait before reconnecting to a server that is down.
        retry_max_s: longest wait between reconnection attempts.
    """

    list_timeout_s: float = 10.0
    max_tools: int = 256
    max_list_bytes: int = 5 * 1024 * 1024
    max_pages: int = 20
    max_response_bytes: int = 8 * 1024 * 1024
    retry_min_s: float = 1.0
    retry_max_s: float = 30.0


class McpUnavailable(Exception):
    """The server is not connected, so the call was not sent (safe to retry, even an action).

    Attributes:
        reason: why, as a lowercase fragment.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CallFailed(Exception):
    """A call got no result.

    Attributes:
        reason: what happened, as a lowercase fragment (the server's message where it gave one).
        delivered: False when the request certainly never reached the server; None when it may
            have (no answer came: the outcome is unknown); True when the server answered with
            a protocol error (unknown tool, invalid arguments).
        timed_out: whether the call ran out of time.
    """

    def __init__(self, reason: str, *, delivered: bool | None, timed_out: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.delivered = delivered
        self.timed_out = timed_out


ToolsListener = Callable[[tuple[types.Tool, ...]], None]


class McpConnection:
    """One MCP server, connected by a background task; see the module docstring.

    Attributes:
        name: the source's name, for logs and errors.
        tools: the latest listing, or None before the first one succeeded.
        error: why the server is down (a lowercase fragment), or None while it is connected.
    """

    def __init__(
        self,
        name: str,
        *,
        url: str | None = None,
        command: Sequence[str] = (),
        headers: Mapping[str, str] | None = None,
        limits: McpLimits | None = None,
        on_tools: ToolsListener | None = None,
        mode: Literal["auto", "legacy"] = "auto",
    ) -> None:
        """`mode` ``"auto"`` asks for the newest protocol (``server/discover``) and falls back to
        the ``initialize`` handshake of older servers; ``"legacy"`` goes straight to the
        handshake."""
        if (url is None) == (not command):
            raise RuntimeError("an MCP connection needs exactly one of url and command")
        self.name = name
        self.tools: tuple[types.Tool, ...] | None = None
        self.error: str | None = "not connected yet"
        self._url = url
        self._command = tuple(command)
        self._headers = dict(headers or {})
        self._limits = limits or McpLimits()
        self._on_tools = on_tools
        self._mode = mode
        self._client: Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._settled = asyncio.Event()
        self._changed = asyncio.Event()
        self._broken = asyncio.Event()

    @property
    def over_http(self) -> bool:
        """Whether calls go over streamable HTTP (and so can carry headers)."""
        return self._url is not None

    @property
    def connected(self) -> bool:
        """Whether the server is connected and its tools are listed."""
        return self._client is not None and self.error is None

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self, wait_s: float) -> None:
        """Start connecting; return once the first attempt settled or after `wait_s`."""
        if self._task is not None:
            raise RuntimeError(f"MCP connection {self.name!r} is already started")
        self._task = asyncio.create_task(self._run(), name=f"mcp source {self.name}")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait_s):
                await self._settled.wait()

    async def close(self, wait_s: float = 10.0) -> None:
        """Disconnect, stopping a stdio server's process; wait at most `wait_s`."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        # The SDK stops a stdio child (close stdin, then terminate, then kill) under a shield
        # with bounded waits; a hung shutdown still cannot hold Parley's own shutdown past this.
        await asyncio.wait([task], timeout=wait_s)

    async def _run(self) -> None:
        delay = self._limits.retry_min_s
        while True:
            try:
                await self._session()
                self._mark_down("connection closed")
            except Exception as exc:
                self._mark_down(_describe(exc))
            self._settled.set()
            if self.tools is not None:
                # Once it has worked, a server that comes back is tried again soon.
                delay = self._limits.retry_min_s
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._limits.retry_max_s)

    def _mark_down(self, reason: str) -> None:
        if self.error is None or self.error == "not connected yet":
            logger.warning("MCP source %r is down: %s", self.name, reason)
        self._client = None
        self.error = reason

    async def _session(self) -> None:
        async with contextlib.AsyncExitStack() as stack:
            client = Client(
                await self._transport(stack),
                mode=self._mode,
                cache=None,
                read_timeout_seconds=self._limits.list_timeout_s,
                message_handler=self._on_message,
                client_info=types.Implementation(name="parley", version="1"),
            )
            await stack.enter_async_context(client)
            self._broken.clear()
            self._changed.clear()
            self._client = client
            await self._refresh(client)
            logger.info(
                "MCP source %r connected (%s), %d tools",
                self.name,
                client.protocol_version,
                len(self.tools or ()),
            )
            self._settled.set()
            await self._watch(client)

    async def _transport(self, stack: contextlib.AsyncExitStack) -> Any:
        if self._url is None:
            program, *args = self._command
            # The child gets the SDK's short list of safe variables (PATH, HOME, ...), never
            # Parley's own environment with its secrets.
            return stdio_client(StdioServerParameters(command=program, args=args))
        limits = self._limits
        http = httpx2.AsyncClient(
            headers=self._headers,
            timeout=httpx2.Timeout(limits.list_timeout_s, read=None),
            transport=_HostTransport(httpx2.AsyncHTTPTransport(), limits.max_response_bytes),
        )
        await stack.enter_async_context(http)
        # The answer's size is capped as a whole by _HostTransport, SSE or not.
        return streamable_http_client(self._url, http_client=http, max_sse_event_size=None)

    # -- the tool list ---------------------------------------------------------------------

    async def _refresh(self, client: Client) -> None:
        limits = self._limits
        tools: list[types.Tool] = []
        size = 0
        cursor: str | None = None
        cut_short = False
        for _ in range(limits.max_pages):
            page = await client.list_tools(cursor=cursor)
            for tool in page.tools:
                size += len(tool.model_dump_json(by_alias=True, exclude_none=True))
                if len(tools) >= limits.max_tools or size > limits.max_list_bytes:
                    cut_short = True
                    break
                tools.append(tool)
            cursor = page.next_cursor
            if cursor is None or cut_short:
                break
        if cut_short or cursor is not None:
            logger.warning(
                "MCP source %r lists more tools than kept (%d tools, %d bytes at most): "
                "only the first %d are offered",
                self.name,
                limits.max_tools,
                limits.max_list_bytes,
                len(tools),
            )
        self.tools = tuple(tools)
        self.error = None
        if self._on_tools is not None:
            self._on_tools(self.tools)

    async def _on_message(self, message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            self._changed.set()
        elif isinstance(message, Exception):
            logger.debug("MCP source %r transport: %r", self.name, message)
        await anyio.lowlevel.checkpoint()

    async def _watch(self, client: Client) -> None:
        """Keep the listing fresh until the connection breaks (or the task is cancelled)."""
        tools_capability = client.server_capabilities.tools
        modern = client.protocol_version in MODERN_PROTOCOL_VERSIONS
        async with anyio.create_task_group() as group:
            if modern and tools_capability is not None and tools_capability.list_changed:
                group.start_soon(self._listen, client)
            else:
                group.start_soon(self._follow_notifications, client)
            await self._broken.wait()
            group.cancel_scope.cancel()

    async def _listen(self, client: Client) -> None:
        # A 2026-07-28 server sends change events only on a subscriptions/listen stream, and
        # only those after the stream was acknowledged: refetch once it is, so a change made
        # between the first listing and the stream is not missed. The stream ends when the
        # server restarts or a proxy drops it: listen again, and a server that is really gone
        # fails the refetch, which reconnects.
        while True:
            with contextlib.suppress(SubscriptionLost):
                async with client.listen(tools_list_changed=True) as subscription:
                    await self._refresh(client)
                    async for _event in subscription:
                        await self._refresh(client)
            await anyio.sleep(self._limits.retry_min_s)

    async def _follow_notifications(self, client: Client) -> None:
        while True:
            await self._changed.wait()
            self._changed.clear()
            await self._refresh(client)

    # -- calls -----------------------------------------------------------------------------

    async def call(
        self,
        tool: str,
        arguments: Mapping[str, Any],
        *,
        timeout_s: float,
        headers: Mapping[str, str] | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> types.CallToolResult:
        """Call `tool`; `headers` go on this call's HTTP request only (ignored over stdio).

        Raises:
            McpUnavailable: the server is not connected; nothing was sent.
            CallFailed: no result: see its `delivered` for whether it may have run.
        """
        client = self._client
        if client is None:
            raise McpUnavailable(self.error or "not connected")
        state = _CallState(headers or {})
        reset = _current_call.set(state)
        try:
            return await client.call_tool(
                tool,
                dict(arguments),
                read_timeout_seconds=timeout_s,
                meta=dict(meta) if meta else None,  # type: ignore[arg-type]
            )
        except MCPError as exc:
            if state.too_large:
                # The server answered, too much: no retry, and the connection is fine.
                reason = f"the answer is larger than {self._limits.max_response_bytes} bytes"
                raise CallFailed(reason, delivered=True) from exc
            raise self._failed(exc, timeout_s) from exc
        except (anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
            self._broken.set()
            raise CallFailed("the connection closed", delivered=False) from exc
        finally:
            _current_call.reset(reset)

    def _failed(self, exc: MCPError, timeout_s: float) -> CallFailed:
        message = _bounded(exc.error.message)
        if exc.code == NOT_DELIVERED:
            self._broken.set()
            return CallFailed(message, delivered=False)
        if exc.code in (NO_ANSWER, types.CONNECTION_CLOSED):
            self._broken.set()
            return CallFailed(message, delivered=None)
        if exc.code == types.REQUEST_TIMEOUT:
            return CallFailed(f"no answer within {timeout_s:g}s", delivered=None, timed_out=True)
        return CallFailed(message, delivered=True)


class _HostTransport(httpx2.AsyncBaseTransport):
    """Adds a call's own headers, answers POST failures as JSON-RPC errors, caps answers."""

    def __init__(self, inner: httpx2.AsyncBaseTransport, max_bytes: int) -> None:
        self._inner = inner
        self._max_bytes = max_bytes

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        call = _current_call.get()
        if call is not None:
            for header, value in call.headers:
                request.headers[header] = value
        try:
            response = await self._inner.handle_async_request(request)
        except httpx2.TransportError as exc:
            if request.method != "POST":
                raise
            code = NOT_DELIVERED if isinstance(exc, _NOT_SENT) else NO_ANSWER
            what = "could not connect" if code == NOT_DELIVERED else "the connection failed"
            error = {"code": code, "message": f"{what} ({_describe(exc)})"}
            return httpx2.Response(
                502, json={"jsonrpc": "2.0", "id": None, "error": error}, request=request
            )
        assert isinstance(response.stream, httpx2.AsyncByteStream)
        return httpx2.Response(
            response.status_code,
            headers=response.headers,
            stream=_CappedStream(response.stream, self._max_bytes, call),
            extensions=response.extensions,
            request=request,
        )

    async def aclose(self) -> None:
        await self._inner.aclose()


class _AnswerTooLarge(httpx2.StreamError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"the answer is larger than {limit} bytes")


class _CappedStream(httpx2.AsyncByteStream):
    def __init__(self, inner: httpx2.AsyncByteStream, limit: int, call: _CallState | None) -> None:
        self._inner = inner
        self._limit = limit
        self._call = call

    async def __aiter__(self) -> AsyncIterator[bytes]:
        seen = 0
        async for chunk in self._inner:
            seen += len(chunk)
            if seen > self._limit:
                # The SDK reports this as a parse error or a dropped stream, depending on the
                # answer's content type; the flag lets `call` say what really happened.
                if self._call is not None:
                    self._call.too_large = True
                raise _AnswerTooLarge(self._limit)
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


def _describe(exc: BaseException) -> str:
    """A short lowercase-first account of why connecting or calling failed."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, MCPError):
        return _bounded(exc.error.message)
    if isinstance(exc, OSError) and exc.strerror:
        return _bounded(f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror)
    text = str(exc) or type(exc).__name__
    return _bounded(text)


def _bounded(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MESSAGE_MAX else text[: _MESSAGE_MAX - 1] + "…"
