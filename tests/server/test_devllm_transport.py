"""StreamingASGITransport: an in-process response behaves like one read from a socket."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from server.devllm.transport import StreamingASGITransport

App = Callable[[Scope, Receive, Send], Awaitable[None]]


def client_for(app: App, **options: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=StreamingASGITransport(app, **options), base_url="http://app"
    )


async def start(send: Send, status: int = 200) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"x-app", b"yes")]})


async def body(send: Send, data: bytes, more: bool = True) -> None:
    await send({"type": "http.response.body", "body": data, "more_body": more})


async def test_request_reaches_the_app_and_the_response_comes_back() -> None:
    async def echo(scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        await start(send, 201)
        query = scope["query_string"]
        header = dict(scope["headers"])[b"x-client"]
        await body(send, b"|".join([scope["method"].encode(), query, header, message["body"]]))
        await body(send, b"", more=False)

    async with client_for(echo) as client:
        response = await client.post("/path?q=1", content=b"payload", headers={"x-client": "c"})
    assert response.status_code == 201
    assert response.headers["x-app"] == "yes"
    assert response.content == b"POST|q=1|c|payload"


async def test_chunks_arrive_while_the_app_is_still_sending() -> None:
    reader_saw_first = asyncio.Event()
    events: list[str] = []

    async def held_back(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await start(send)
        await body(send, b"first")
        events.append("app sent first")
        # A buffering transport would never hand "first" over, and this would time out.
        await asyncio.wait_for(reader_saw_first.wait(), timeout=30)
        await body(send, b"second")
        events.append("app sent second")
        await body(send, b"", more=False)

    async with client_for(held_back) as client, client.stream("GET", "/") as response:
        chunks = []
        async for chunk in response.aiter_raw():
            chunks.append(chunk)
            if chunk == b"first":
                events.append("reader got first")
                reader_saw_first.set()
    assert chunks == [b"first", b"second"]
    assert events == ["app sent first", "reader got first", "app sent second"]


async def test_a_slow_reader_holds_the_app_back() -> None:
    progress: list[int] = []

    async def chatty(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await start(send)
        for index in range(100):
            await body(send, b"x")
            progress.append(index)
        await body(send, b"", more=False)

    client = client_for(chatty, max_buffered_chunks=4)
    async with client, client.stream("GET", "/") as response:
        for _ in range(20):
            await asyncio.sleep(0)
        # The queue holds four chunks; the app waits on the fifth.
        assert len(progress) <= 4
        assert await response.aread() == b"x" * 100
    assert len(progress) == 100


async def test_closing_the_response_early_stops_the_app() -> None:
    outcome: list[str] = []
    saw_disconnect = asyncio.Event()

    async def endless(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()

        async def watch() -> None:
            message = await receive()
            if message["type"] == "http.disconnect":
                saw_disconnect.set()

        watcher = asyncio.ensure_future(watch())
        await start(send)
        try:
            while True:
                await body(send, b"tick")
                await asyncio.sleep(0)
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise
        finally:
            await asyncio.wait({watcher}, timeout=5)

    async with client_for(endless) as client, client.stream("GET", "/") as response:
        async for chunk in response.aiter_raw():
            assert chunk == b"tick"
            break
    assert outcome == ["cancelled"]
    assert saw_disconnect.is_set()


async def test_an_app_failing_mid_response_breaks_the_connection() -> None:
    async def failing(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await start(send)
        await body(send, b"partial")
        raise RuntimeError("boom")

    received: list[bytes] = []
    async with client_for(failing) as client, client.stream("GET", "/") as response:
        with pytest.raises(httpx.RemoteProtocolError, match="boom"):
            await read_raw(response, received)
    assert received == [b"partial"]


async def test_an_app_returning_early_breaks_the_connection() -> None:
    async def quitter(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await start(send)
        await body(send, b"partial")

    received: list[bytes] = []
    async with client_for(quitter) as client, client.stream("GET", "/") as response:
        with pytest.raises(httpx.RemoteProtocolError, match="without completing"):
            await read_raw(response, received)
    assert received == [b"partial"]


async def test_an_app_failing_before_responding_gets_a_500() -> None:
    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("no response at all")

    async with client_for(broken) as client:
        response = await client.get("/")
    assert response.status_code == 500
    assert response.text == "Internal Server Error"


async def test_read_timeout_applies_to_the_start_and_to_each_chunk() -> None:
    async def stalls_at_start(scope: Scope, receive: Receive, send: Send) -> None:
        await asyncio.sleep(60)

    async def stalls_after_a_chunk(scope: Scope, receive: Receive, send: Send) -> None:
        await start(send)
        await body(send, b"one")
        await asyncio.sleep(60)

    async with client_for(stalls_at_start) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.get("/", timeout=httpx.Timeout(5, read=0.1))
    async with client_for(stalls_after_a_chunk) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.get("/", timeout=httpx.Timeout(5, read=0.1))


async def read_raw(response: httpx.Response, into: list[bytes]) -> None:
    async for chunk in response.aiter_raw():
        into.append(chunk)
