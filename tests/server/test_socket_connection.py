"""One tab's send queue on its own (DESIGN invariant 9): the real ``Connection`` over an
in-memory peer that can stop reading. The queue is bounded in frames and bytes; a tab past
either bound is dropped with 1013 at once, whatever it has not read is discarded, and the
sender never waits. A normal close goes out after what is queued; closing twice changes
nothing; ``stop`` ends the writer even when the peer reads nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import orjson
import pytest

from protocol import CloseCode
from server.socket.connection import DROP_EXTENSION, Connection, SendLimits
from storage.frame_log import LoggedFrame
from tests.server.peer_socket import WAIT_S, PeerSocket, until

pytestmark = pytest.mark.timeout(30)

FRAMES = 8


def text(n: int, size: int = 0) -> str:
    """A frame's text; with ``size``, padded to exactly that many characters."""
    if not size:
        return orjson.dumps({"type": "pong", "t": n}).decode()
    frame = orjson.dumps({"type": "pong", "t": n, "pad": ""}).decode()
    frame = frame[:-2] + "x" * (size - len(frame)) + frame[-2:]
    assert len(frame) == size
    return frame


def numbers(peer: PeerSocket) -> list[int]:
    return [frame["t"] for frame in peer.frames]


OpenTab = Callable[..., tuple[Connection, PeerSocket]]


@pytest.fixture
async def opened() -> AsyncIterator[OpenTab]:
    """Makes started connections over fresh peers, and stops each one after the test."""
    made: list[Connection] = []

    def open_tab(
        max_frames: int = FRAMES, max_bytes: int = 1_000_000, close_timeout_s: float = 5.0
    ) -> tuple[Connection, PeerSocket]:
        peer = PeerSocket()
        limits = SendLimits(
            max_frames=max_frames, max_bytes=max_bytes, close_timeout_s=close_timeout_s
        )
        connection = Connection(peer, limits)  # type: ignore[arg-type]
        connection.start()
        made.append(connection)
        return connection, peer

    yield open_tab
    for connection in made:
        await connection.stop()


async def stuck_in_a_send(connection: Connection, peer: PeerSocket) -> None:
    """Stop the peer reading and park the writer in a send that waits on it, the state of a
    tab whose socket buffer is full. The frame it sends is numbered -1."""
    peer.stop_reading()
    connection.send_text(text(-1))
    await until(lambda: peer.sends_waiting == 1, "the writer to wait on the peer")


# -- the bounds ----------------------------------------------------------------------


async def test_a_frame_past_the_frame_bound_drops_the_tab_with_1013(opened: OpenTab) -> None:
    connection, peer = opened()
    await stuck_in_a_send(connection, peer)
    for n in range(FRAMES):
        connection.send_text(text(n))
    assert connection.queued_frames == FRAMES
    assert not connection.closing  # full, but nothing was refused yet

    connection.send_text(text(FRAMES))  # returns at once: the sender never waits on a peer

    assert connection.closing
    assert connection.queued_frames == 0  # what it has not read is let go at once
    for n in range(100):
        connection.send_text(text(FRAMES + 1 + n))
    assert connection.queued_frames == 0  # and nothing more is taken for it

    # Without the server's drop extension, the close goes out once the peer takes the send
    # in flight; the discarded frames never do.
    peer.read_again()
    await until(connection.closed.is_set, "the connection to close")
    assert peer.close_code == CloseCode.TRY_AGAIN_LATER == 1013
    assert "send queue full" in peer.close_reason
    assert numbers(peer) == [-1]


async def test_a_frame_past_the_byte_bound_drops_the_tab_with_1013(opened: OpenTab) -> None:
    connection, peer = opened(max_frames=1000, max_bytes=300)
    await stuck_in_a_send(connection, peer)
    for n in range(3):
        connection.send_text(text(n, size=100))
    assert connection.queued_frames == 3  # exactly the bound fits
    assert not connection.closing

    connection.send_text(text(3))  # one more frame, of any size

    assert connection.closing
    assert connection.queued_frames == 0
    peer.read_again()
    await until(connection.closed.is_set, "the connection to close")
    assert peer.close_code == 1013
    assert numbers(peer) == [-1]


async def test_one_frame_larger_than_the_byte_bound_drops_the_tab(opened: OpenTab) -> None:
    connection, peer = opened(max_bytes=300)
    connection.send_text(text(0, size=301))
    await until(connection.closed.is_set, "the connection to close")
    assert peer.close_code == 1013
    assert peer.received == []


async def test_with_the_drop_extension_a_dropped_tab_is_let_go_without_reading(
    opened: OpenTab,
) -> None:
    # ``parley serve`` offers ``parley.drop`` in the scope: the server puts the close behind
    # the unread data and cuts the connection later, so the writer has nothing left to wait
    # for. Here the peer's side only records the call.
    drops: list[tuple[int, str, float]] = []
    connection, peer = opened(close_timeout_s=2.5)
    peer.scope["extensions"][DROP_EXTENSION] = {
        "drop": lambda code, reason, timeout_s: drops.append((code, reason, timeout_s))
    }
    await stuck_in_a_send(connection, peer)
    for n in range(FRAMES + 1):
        connection.send_text(text(n))

    # The writer stuck behind a peer that never reads again is let go.
    await until(connection.closed.is_set, "the connection to close")
    assert [(code, timeout_s) for code, _, timeout_s in drops] == [(1013, 2.5)]
    assert "send queue full" in drops[0][1]
    assert peer.received == []
    assert peer.close_code is None  # the close is the server's to send now


async def test_a_tab_that_keeps_reading_is_never_dropped(opened: OpenTab) -> None:
    # The bound is on what waits, not on what passes: many times the bound in all is fine.
    connection, peer = opened(max_frames=4, max_bytes=1000)
    for n in range(20):
        connection.send_text(text(n))
        await until(lambda: connection.queued_frames == 0, "the queue to drain")
    await until(lambda: len(peer.received) == 20, "every frame")
    assert not connection.closing
    assert numbers(peer) == list(range(20))


# -- frames of the user's stream -------------------------------------------------------


def logged(seq: int) -> LoggedFrame:
    return LoggedFrame(seq, orjson.dumps({"seq": seq, "type": "typing", "t": seq}).decode())


async def test_a_replay_sends_the_missed_frames_then_the_held_ones_once_each(
    opened: OpenTab,
) -> None:
    connection, peer = opened()
    connection.last_seq = 2
    connection.hold_live_frames()
    for seq in [5, 6, 7]:  # live frames that arrived while the tab was being attached
        connection.deliver_logged(seq, logged(seq).data)
    connection.send_text(text(0))  # ``ready`` goes out ahead of both
    connection.finish_replay([logged(3), logged(4), logged(5)])
    connection.deliver_logged(7, logged(7).data)  # a late copy of a frame it has
    connection.deliver_logged(8, logged(8).data)

    await until(lambda: len(peer.received) == 7, "the replay and the live frames")
    assert peer.received[0] == text(0)
    assert [frame["seq"] for frame in peer.frames[1:]] == [3, 4, 5, 6, 7, 8]
    assert connection.last_seq == 8


async def test_live_frames_held_during_a_replay_are_bounded_too(opened: OpenTab) -> None:
    # While the tab's snapshot is built, live frames wait beside the queue. A tab that cannot
    # take them all afterwards is dropped as soon as they pass the bound, so memory stays
    # bounded however long the snapshot takes.
    connection, peer = opened(max_frames=FRAMES)
    connection.hold_live_frames()
    for seq in range(1, FRAMES + 1):
        connection.deliver_logged(seq, logged(seq).data)
    assert not connection.closing

    connection.deliver_logged(FRAMES + 1, logged(FRAMES + 1).data)

    assert connection.closing
    connection.finish_replay([])
    await until(connection.closed.is_set, "the connection to close")
    assert peer.close_code == 1013
    assert peer.received == []


async def test_held_live_frames_are_bounded_in_bytes(opened: OpenTab) -> None:
    connection, peer = opened(max_bytes=3 * len(logged(1).data))
    connection.hold_live_frames()
    for seq in range(1, 4):
        connection.deliver_logged(seq, logged(seq).data)
    assert not connection.closing
    connection.deliver_logged(4, logged(4).data)
    assert connection.closing
    connection.finish_replay([])
    await until(connection.closed.is_set, "the connection to close")
    assert peer.close_code == 1013


# -- closing -------------------------------------------------------------------------


async def test_a_close_goes_out_after_the_frames_already_queued(opened: OpenTab) -> None:
    connection, peer = opened()
    await stuck_in_a_send(connection, peer)
    for n in range(5):
        connection.send_text(text(n))
    connection.close(CloseCode.POLICY_VIOLATION, "too many frames")
    connection.send_text(text(99))  # after the close: not sent
    assert connection.closing

    peer.read_again()
    await until(connection.closed.is_set, "the connection to close")
    assert numbers(peer) == [-1, 0, 1, 2, 3, 4]
    assert (peer.close_code, peer.close_reason) == (1008, "too many frames")


async def test_closing_twice_keeps_the_first_close(opened: OpenTab) -> None:
    connection, peer = opened()
    connection.send_text(text(0))
    connection.close(CloseCode.UNAUTHENTICATED, "token expired")
    connection.close(CloseCode.NORMAL, "bye")
    await until(connection.closed.is_set, "the connection to close")
    connection.close(CloseCode.GOING_AWAY)  # after the socket closed: nothing happens
    await connection.stop()

    assert numbers(peer) == [0]
    assert (peer.close_code, peer.close_reason) == (4401, "token expired")


async def test_a_close_reason_is_cut_to_fit_a_close_frame(opened: OpenTab) -> None:
    # A close frame's reason may hold 123 bytes.
    connection, peer = opened()
    connection.close(CloseCode.INTERNAL_ERROR, "x" * 500)
    await until(connection.closed.is_set, "the connection to close")
    assert peer.close_code == 1011
    assert 0 < len(peer.close_reason.encode()) <= 123


async def test_a_close_the_peer_never_takes_is_given_up(opened: OpenTab) -> None:
    # Without the drop extension nothing can put the close behind unread data: the writer
    # waits ``close_timeout_s`` for it and then ends (the server's keepalive cuts the socket).
    connection, peer = opened(close_timeout_s=0.05)
    peer.stop_reading()
    connection.close(CloseCode.GOING_AWAY)
    await until(connection.closed.is_set, "the writer to give up")
    assert peer.close_code is None


# -- stopping ------------------------------------------------------------------------


async def stops(connection: Connection) -> bool:
    """Whether ``connection.stop()`` returns in good time, in a task of its own so that a
    stop that never returns fails the test rather than hanging it."""
    stopping = asyncio.create_task(connection.stop())
    done, _ = await asyncio.wait({stopping}, timeout=WAIT_S)
    stopping.cancel()
    return stopping in done


async def test_stop_ends_the_writer(opened: OpenTab) -> None:
    connection, peer = opened()
    connection.send_text(text(0))
    await until(lambda: len(peer.received) == 1, "the first frame")

    assert await stops(connection)

    assert connection.closed.is_set()  # the writer ran its cleanup
    connection.send_text(text(1))
    assert peer.received == [text(0)]  # nobody sends for it any more
    await connection.stop()  # a second stop is harmless


async def test_stop_ends_a_writer_stuck_on_a_peer_that_does_not_read(opened: OpenTab) -> None:
    connection, peer = opened()
    await stuck_in_a_send(connection, peer)
    connection.send_text(text(0))

    assert await stops(connection)

    assert connection.closed.is_set()
    assert connection.queued_frames == 0  # what waited is let go with it
    assert peer.sends_waiting == 0
    assert peer.received == []
