"""Streamed text batching on its own: the real ``DeltaBatcher`` driven by plain async callables
in place of the frame log and the partial-text store. Text within one window goes out as one
``response_delta``; enough waiting text goes out at once; the end of a stream flushes what
waits; the text saved for snapshots always ends with the delta whose seq it is saved with; a
flush that could not be logged stops the turn, also when nobody awaited it."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field

import pytest

from protocol import ResponseDelta
from server.config import Settings
from server.turns.delta_batcher import DeltaBatcher
from server.turns.turn_state import RunningTurn, TurnRequest
from storage.errors import StateUnavailable
from storage.keys import UserKey
from tests.server.peer_socket import WAIT_S, until

pytestmark = pytest.mark.timeout(30)

A_MINUTE_MS = 60_000.0  # a window no test waits for: only the bound on characters or a flush


@dataclass
class Log:
    """What the batcher publishes to and saves into: numbers frames as the frame log does,
    where other frames of the user (tool calls, other turns) may take seqs in between."""

    owner: UserKey | None = None
    deltas: list[tuple[int, str]] = field(default_factory=list)
    saves: list[tuple[str, int]] = field(default_factory=list)
    last_seq: int = 0
    unreachable: bool = False  # Redis is away: appends fail
    gate: asyncio.Event | None = None  # when set, appends wait for it (a slow log)
    waiting: int = 0  # appends that started

    async def publish(self, owner: UserKey, *frames: object) -> list[int]:
        self.owner = owner
        self.waiting += 1
        await asyncio.sleep(0)  # a round trip: other tasks run meanwhile
        if self.gate is not None:
            await self.gate.wait()
        if self.unreachable:
            raise StateUnavailable("frame log append", "connection refused")
        seqs = []
        for frame in frames:
            assert isinstance(frame, ResponseDelta)
            self.last_seq += 1
            self.deltas.append((self.last_seq, frame.delta))
            seqs.append(self.last_seq)
        return seqs

    async def save_text(self, turn: RunningTurn, seq: int) -> None:
        await asyncio.sleep(0)
        self.saves.append((turn.text, seq))

    def other_frame(self) -> None:
        self.last_seq += 1

    @property
    def texts(self) -> list[str]:
        return [delta for _, delta in self.deltas]


def running_turn() -> RunningTurn:
    request = TurnRequest(
        tenant="acme",
        user="ann",
        roles=["clerk"],
        conversation_id="c_1",
        user_message_id="m_1",
        client_msg_id="cm_1",
    )
    return RunningTurn(request=request, turn_id="t_1", message_id="m_2")


def batcher_for(
    log: Log,
    turn: RunningTurn,
    *,
    flush_ms: float = A_MINUTE_MS,
    flush_chars: int = 200,
    log_max_frames: int = 25_000,
    max_waiting_chars: int = 4_000,
) -> DeltaBatcher:
    settings = Settings(
        delta_flush_ms=flush_ms,
        delta_flush_chars=flush_chars,
        delta_max_waiting_chars=max_waiting_chars,
        log_max_frames=log_max_frames,
    )
    return DeltaBatcher(turn, settings, log.publish, log.save_text)


async def settled() -> None:
    """Wait for the flushes the batcher started on its own to finish."""
    others = asyncio.all_tasks() - {asyncio.current_task()}
    if others:
        await asyncio.wait(others, timeout=WAIT_S)


async def test_text_within_one_window_goes_out_as_one_delta() -> None:
    log, turn = Log(), running_turn()
    batcher = batcher_for(log, turn, flush_ms=50)

    await batcher.add("Hel")  # nothing went out for a window: this goes at once
    await until(lambda: len(log.deltas) == 1, "the first delta")
    for piece in ["lo", ", ", "world"]:
        await batcher.add(piece)
    assert log.texts == ["Hel"]  # the rest waits for the window to end

    await until(lambda: len(log.deltas) == 2, "the second delta")
    assert log.texts == ["Hel", "lo, world"]
    assert log.owner == UserKey("acme", "ann")
    await batcher.flush()
    await settled()
    assert log.texts == ["Hel", "lo, world"]


async def test_enough_waiting_text_goes_out_without_waiting_for_the_window() -> None:
    log, turn = Log(), running_turn()
    batcher = batcher_for(log, turn, flush_chars=10)
    await batcher.add("a")
    await until(lambda: len(log.deltas) == 1, "the first delta")

    await batcher.add("12345")
    assert log.texts == ["a"]
    await batcher.add("67890")  # ten characters wait: out at once, not after the window
    await until(lambda: len(log.deltas) == 2, "the second delta")
    assert log.texts == ["a", "1234567890"]
    await settled()


async def test_text_that_comes_while_a_delta_is_logged_goes_out_in_the_next_one() -> None:
    log, turn = Log(gate=asyncio.Event()), running_turn()
    batcher = batcher_for(log, turn, flush_chars=10, max_waiting_chars=40)
    await batcher.add("0123456789")  # enough: its append starts, and is held at the gate
    await until(lambda: log.waiting == 1, "the first append to start")
    for piece in ["abcde", "fghij", "klmno"]:
        await batcher.add(piece)  # read on while the first is being logged
    assert log.texts == []
    log.gate.set()  # type: ignore[union-attr]
    await until(lambda: len(log.deltas) == 2, "the second delta")
    assert log.texts == ["0123456789", "abcdefghijklmno"]  # one delta, not three
    await settled()


async def test_past_the_most_waiting_text_the_stream_waits_for_the_log() -> None:
    log, turn = Log(gate=asyncio.Event()), running_turn()
    batcher = batcher_for(log, turn, flush_chars=10, max_waiting_chars=30)
    await batcher.add("0123456789")
    await until(lambda: log.waiting == 1, "the first append to start")
    await batcher.add("a" * 20)  # 20 wait: under the bound, add returns
    held = asyncio.create_task(batcher.add("b" * 10))  # 30 wait: add holds the stream
    await asyncio.sleep(0.05)
    assert not held.done()
    log.gate.set()  # type: ignore[union-attr]
    await asyncio.wait_for(held, WAIT_S)
    assert log.texts == ["0123456789", "a" * 20 + "b" * 10]
    await settled()


async def test_the_end_of_the_stream_flushes_what_waits() -> None:
    log, turn = Log(), running_turn()
    batcher = batcher_for(log, turn)
    await batcher.flush()  # nothing streamed: nothing logged
    assert log.deltas == []

    await batcher.add("a")
    await until(lambda: len(log.deltas) == 1, "the first delta")
    await batcher.add("b")
    await batcher.add("c")
    log.other_frame()
    await batcher.flush()

    assert log.deltas == [(1, "a"), (3, "bc")]
    assert turn.text == "abc"
    assert turn.last_delta_seq == 3
    await batcher.flush()  # a second flush finds nothing
    await settled()
    assert log.deltas == [(1, "a"), (3, "bc")]


async def test_saved_text_ends_with_the_delta_whose_seq_it_is_saved_with() -> None:
    # A small log (saves at least every 2 frames), a short window and a low character bound,
    # so that timer flushes, bound flushes and saves interleave with other frames' seqs.
    log, turn = Log(), running_turn()
    batcher = batcher_for(log, turn, flush_ms=1, flush_chars=7, log_max_frames=8)
    words = [f"w{number} " for number in range(300)]
    for index, word in enumerate(words):
        await batcher.add(word)
        if index % 3 == 0:
            log.other_frame()
        if index % 5 == 0:
            await asyncio.sleep(0.001)  # let the window pass now and then
    await batcher.flush()
    await settled()

    assert "".join(log.texts) == "".join(words) == turn.text
    seqs = [seq for seq, _ in log.deltas]
    assert seqs == sorted(seqs)
    assert turn.last_delta_seq == seqs[-1]
    assert len(log.deltas) > 10  # the bounds did split the stream
    assert log.saves
    for text, seq in log.saves:
        assert seq in seqs  # saved with the seq of a delta, not of some other frame
        assert text == "".join(delta for delta_seq, delta in log.deltas if delta_seq <= seq)
    # Saved at least every quarter of the log (two frames here), so the frames after a
    # save are still in the log when a snapshot needs them.
    saved_at = [0] + [seqs.index(seq) + 1 for _, seq in log.saves] + [len(seqs)]
    assert max(later - earlier for earlier, later in itertools.pairwise(saved_at)) <= 2


# -- failures ------------------------------------------------------------------------


async def test_a_failed_flush_in_the_background_stops_the_stream_at_its_next_piece() -> None:
    # Most text goes out from a flush the window's timer starts, which nobody awaits. When
    # its append fails, the turn must learn it, as it does from a flush it awaits: its frames
    # cannot be logged, so it cannot go on (the engine ends it as store_unavailable).
    log, turn = Log(unreachable=True), running_turn()
    batcher = batcher_for(log, turn)
    await batcher.add("lost")  # flushed by a task of its own, which fails
    await settled()

    with pytest.raises(StateUnavailable):
        await batcher.add("more")
    assert log.deltas == []
    # The turn's last flush cannot log the rest either, but keeps it for the saved reply.
    with pytest.raises(StateUnavailable):
        await batcher.flush()
    assert turn.text == "lostmore"
    await settled()


async def test_a_failed_flush_in_the_background_fails_the_final_flush() -> None:
    log, turn = Log(unreachable=True), running_turn()
    batcher = batcher_for(log, turn)
    await batcher.add("lost")
    await settled()

    with pytest.raises(StateUnavailable):
        await batcher.flush()
    log.unreachable = False
    await batcher.flush()  # reported once; a later flush works again
    await batcher.add("back")
    await batcher.flush()
    await settled()
    assert log.texts == ["back"]
