"""Slow consumers: a tab that stops reading is dropped with 1013 once its send queue is full,
while the user's other tabs get every frame; one that does not even take the close is cut."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets

from tests.server.conftest import Backend
from tests.server.harness import DevModel, ParleyServer, Tab, frames_of, logged

# In process, but long (streams until a send queue overflows): the full run's.
pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]

# About 7 kB of text: each turn logs its message, ~35 deltas and the response, ~25 kB in all.
LONG = "[say] " + " ".join(f"w{number:05d}" for number in range(1100))
DROPPED = "send queue full"


@pytest.fixture
def make_server(real_backend: Backend, model: DevModel, tmp_path: Path) -> Iterator[Any]:
    started: list[ParleyServer] = []

    def make(close_timeout_s: float) -> ParleyServer:
        config = real_backend.config(
            model,
            PARLEY_SEND_QUEUE_FRAMES="50",
            PARLEY_SEND_QUEUE_BYTES="32768",
            PARLEY_SEND_CLOSE_TIMEOUT_S=str(close_timeout_s),
            PARLEY_USER_MESSAGES_PER_MINUTE="0",
        )
        server = ParleyServer(tmp_path, config)
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


async def open_non_reader(server: ParleyServer) -> Tab:
    """A tab whose client stops reading after ``ready``.

    Small receive buffers and segments on its socket keep the kernel from soaking up megabytes
    on the server's behalf, so the server's own send queue fills after a few hundred kB.
    """
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 536)
    sock.connect(("127.0.0.1", server.port))
    sock.setblocking(False)
    ws = await websockets.connect(server.ws_url, sock=sock, max_queue=1, open_timeout=10)
    tab = Tab(ws)
    await tab.send({"type": "hello", "protocol": 1, "token": server.token()})
    tab.ready = await tab.expect("ready")
    return tab


async def stream_until_dropped(server: ParleyServer, reader: Tab) -> list[dict[str, Any]]:
    """Turns on ``reader`` until the worker reports a dropped tab; every frame the reader got."""
    for turn in range(40):
        frames = await reader.ask(LONG, f"m-{turn}")
        assert frames[-1]["status"] == "completed"
        if DROPPED in server.output():
            return reader.frames
    raise AssertionError("the tab that does not read was never dropped")


async def wait_for_output(server: ParleyServer, line: str, timeout_s: float = 30) -> None:
    for _ in range(int(timeout_s * 10)):
        if line in server.output():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"the worker never logged {line!r}")


async def test_a_tab_that_stops_reading_is_closed_with_1013_and_others_get_everything(
    make_server: Any,
) -> None:
    server = make_server(close_timeout_s=60)
    stuck = await open_non_reader(server)
    reader = await server.tab()
    received = await stream_until_dropped(server, reader)

    stream = logged(received)
    seqs = [frame["seq"] for frame in stream]
    assert seqs == list(range(reader.ready["last_seq"] + 1, seqs[-1] + 1))
    responses = frames_of(stream, "response")
    assert all(response["text"] == LONG.removeprefix("[say] ") for response in responses)

    # Reading again, the stuck tab finds what was on its way, then the close.
    code, reason = await stuck.closed(timeout=30)
    assert (code, reason) == (1013, "send queue full: client is not reading")
    got = [frame["seq"] for frame in logged(stuck.frames)]
    assert got == seqs[: len(got)]  # in order, without holes, up to where it was dropped
    assert len(got) < len(seqs)

    # The worker serves on.
    after = await reader.ask("[say] still streaming", "m-last")
    assert after[-1]["status"] == "completed"
    await reader.close()


async def test_a_tab_that_does_not_take_its_close_is_cut(make_server: Any) -> None:
    server = make_server(close_timeout_s=1)
    stuck = await open_non_reader(server)
    reader = await server.tab()
    await stream_until_dropped(server, reader)

    # Still without reading: the worker gives up on the close after its timeout and aborts.
    await wait_for_output(server, "cutting a connection that did not take its close frame")
    # Abort discards what the worker still held for the tab, but bytes already in the kernel's
    # socket buffers are delivered before the reset: on a loaded machine those sometimes
    # include the close frame itself. Either way the tab is gone.
    outcome = await stuck.closed(timeout=30)
    assert outcome in [(None, ""), (1013, "send queue full: client is not reading")]
    after = await reader.ask("[say] still streaming", "m-last")
    assert after[-1]["status"] == "completed"
    await reader.close()
