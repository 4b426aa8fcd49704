"""Connection limits: open sockets per user and per client address, counted across workers.
Above a limit the new socket gets ``too_many_connections`` and close 4429; a place frees up
when a socket closes, and within the presence TTL when its worker dies."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import websockets

from tests.server.conftest import Backend
from tests.server.harness import DevModel, ParleyServer, Tab, frames_of, make_token
from tests.server.security_support import StartServer, closed_after, server_starter

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def start_server(backend: Backend, model: DevModel, tmp_path: Path) -> Iterator[StartServer]:
    yield from server_starter(backend, model, tmp_path)


async def refused_with_4429(tab: Tab, hello_token: str | None) -> str:
    if hello_token is not None:
        await tab.send({"type": "hello", "protocol": 1, "token": hello_token})
    code, reason, frames = await closed_after(tab)
    assert code == 4429
    errors = frames_of(frames, "error")
    assert [error["code"] for error in errors] == ["too_many_connections"]
    assert errors[0]["retryable"] is True
    return reason


async def open_when_allowed(server: ParleyServer, token: str, timeout_s: float = 15.0) -> Tab:
    """A tab, retrying while the limit still counts a socket that is going away."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        tab = await Tab.connect(server.ws_url)
        with contextlib.suppress(websockets.ConnectionClosed):
            # A socket refused by the address limit may be closed before its hello.
            await tab.send({"type": "hello", "protocol": 1, "token": token})
        frame = await tab.recv()
        if frame["type"] == "ready":
            tab.ready = frame
            return tab
        assert frame["code"] == "too_many_connections"
        await tab.closed()
        assert asyncio.get_running_loop().time() < deadline, "the place was never freed"
        await asyncio.sleep(0.3)


async def test_sockets_per_user_trip_at_the_limit_and_free_on_close(
    start_server: StartServer,
) -> None:
    server = start_server(PARLEY_MAX_CONNECTIONS_PER_USER="2")
    first, second = await server.tab(), await server.tab()
    reason = await refused_with_4429(await Tab.connect(server.ws_url), server.token())
    assert reason == "too many connections for this user (at most 2)"
    # Other users have places of their own.
    other = await server.tab(make_token(f"{server.user}-bob", "acme"))
    twin = await server.tab(make_token(server.user, "globex"))
    # The open tabs are unaffected, and closing one frees its place.
    await second.send({"type": "ping", "t": 1})
    assert (await second.expect("pong"))["t"] == 1
    await first.close()
    third = await open_when_allowed(server, server.token())
    for tab in (second, third, other, twin):
        await tab.close()


async def test_sockets_per_address_trip_before_hello(start_server: StartServer) -> None:
    server = start_server(PARLEY_MAX_CONNECTIONS_PER_IP="3")
    sockets = [await Tab.connect(server.ws_url) for _ in range(3)]
    for socket in sockets:
        # Answered only once the server has counted the socket: the fourth then finds three.
        await socket.send({"type": "ping"})
        assert (await socket.expect("error"))["code"] == "hello_required"
    reason = await refused_with_4429(await Tab.connect(server.ws_url), None)
    assert reason == "too many connections for this address (at most 3)"
    await sockets[0].close()
    tab = await open_when_allowed(server, server.token())
    await tab.close()
    for socket in sockets[1:]:
        await socket.close()


@pytest.mark.slow
async def test_sockets_per_user_are_counted_across_workers(
    real_backend: Backend, model: DevModel, tmp_path: Path
) -> None:
    config = real_backend.config(
        model, PARLEY_MAX_CONNECTIONS_PER_USER="2", PARLEY_CONNECTION_PRESENCE_TTL_S="3"
    )
    one = ParleyServer(tmp_path, config, process=True)
    two = ParleyServer(tmp_path, config, process=True)
    two.user = one.user
    try:
        await one.tab()
        on_two = await two.tab()
        for server in (one, two):
            await refused_with_4429(await Tab.connect(server.ws_url), one.token())
        # A worker that dies stops holding its places once their TTL has passed.
        one.kill()
        with_room = await open_when_allowed(two, one.token())
        await on_two.close()
        await with_room.close()
    finally:
        one.stop()
        two.stop()
