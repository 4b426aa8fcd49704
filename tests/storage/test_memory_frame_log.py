"""The embedded store's in-process frame log keeps FrameLog's contract: gapless seqs spliced
into each frame, an epoch per log, exact resume or a clear refusal, and bounded memory (by
length, by age, and idle users' logs dropped)."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from storage.frame_log import MIN_KEY_TTL_MS
from storage.keys import UserKey
from storage.memory_frame_log import MemoryFrameLog

ANN = UserKey(tenant="acme", user="ann")
BOB = UserKey(tenant="acme", user="bob")


def frame(n: int) -> str:
    return orjson.dumps({"type": "response_delta", "delta": f"piece {n}"}).decode()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_append_numbers_frames_from_one_and_splices_seq() -> None:
    log = MemoryFrameLog()
    first = await log.append(ANN, [frame(1), frame(2)])
    second = await log.append(ANN, [frame(3)])
    assert [f.seq for f in first + second] == [1, 2, 3]
    assert orjson.loads(second[0].data) == {"seq": 3, "type": "response_delta", "delta": "piece 3"}
    assert second[0].data.startswith('{"seq":3,')
    assert [f.seq for f in await log.append(BOB, [frame(1)])] == [1]  # logs are per user
    assert await log.append(ANN, []) == []


@pytest.mark.parametrize("bad", ['{"seq":1,"type":"x"}', '{"type":"a",\n"b":1}', "[]"])
async def test_append_rejects_frames_of_the_wrong_shape(bad: str) -> None:
    with pytest.raises(RuntimeError, match="one-line JSON"):
        await MemoryFrameLog().append(ANN, [bad])


async def test_concurrent_appenders_get_gapless_seqs() -> None:
    log = MemoryFrameLog()

    async def writer(base: int) -> list[int]:
        seqs = []
        for n in range(50):
            seqs += [f.seq for f in await log.append(ANN, [frame(base + n), frame(base + n)])]
            await asyncio.sleep(0)
        return seqs

    results = await asyncio.gather(*(writer(k * 1000) for k in range(4)))
    assert sorted(seq for seqs in results for seq in seqs) == list(range(1, 401))
    for seqs in results:  # each batch's two frames are consecutive
        assert all(seqs[i + 1] == seqs[i] + 1 for i in range(0, len(seqs), 2))


async def test_position_makes_the_log_with_an_epoch() -> None:
    log = MemoryFrameLog()
    position = await log.position(ANN)
    assert position.last_seq == 0
    assert len(position.epoch) == 16
    await log.append(ANN, [frame(1)])
    assert await log.position(ANN) == type(position)(position.epoch, 1)
    assert (await log.position(BOB)).epoch != position.epoch
    # Another process (a restart) has another log: the old epoch is not resumable there.
    assert await MemoryFrameLog().read_after(ANN, position.epoch, 0) is None


async def test_read_after_returns_exactly_the_missed_frames_or_refuses() -> None:
    log = MemoryFrameLog(max_len=5)
    epoch = (await log.position(ANN)).epoch
    await log.append(ANN, [frame(n) for n in range(1, 9)])  # seqs 1..8; 4..8 kept
    missed = await log.read_after(ANN, epoch, 5)
    assert missed is not None
    assert [f.seq for f in missed] == [6, 7, 8]
    assert await log.read_after(ANN, epoch, 8) == []
    assert await log.read_after(ANN, epoch, 3) is not None  # 4..8 are all still there
    assert await log.read_after(ANN, epoch, 2) is None  # seq 3 was trimmed
    assert await log.read_after(ANN, epoch, 9) is None  # beyond the last seq
    assert await log.read_after(ANN, epoch, -1) is None
    assert await log.read_after(ANN, "another-epoch", 5) is None
    assert await log.read_after(BOB, epoch, 0) is None  # no log at all
    assert await log.read_after(ANN, epoch, 5, max_frames=2) is None
    taken = await log.read_after(ANN, epoch, 5, max_frames=3)
    assert taken is not None
    assert len(taken) == 3


async def test_frames_are_dropped_by_age() -> None:
    clock = Clock()
    log = MemoryFrameLog(max_age_s=60, clock=clock)
    epoch = (await log.position(ANN)).epoch
    await log.append(ANN, [frame(1), frame(2)])
    clock.now += 61
    await log.append(ANN, [frame(3)])
    assert await log.read_after(ANN, epoch, 0) is None  # 1 and 2 aged out
    kept = await log.read_after(ANN, epoch, 2)
    assert kept is not None
    assert [f.seq for f in kept] == [3]


async def test_the_log_of_an_idle_user_is_dropped() -> None:
    clock = Clock()
    log = MemoryFrameLog(max_age_s=60, clock=clock)
    old = await log.position(ANN)
    await log.append(ANN, [frame(1)])
    clock.now += MIN_KEY_TTL_MS / 1000 - 1
    await log.position(BOB)
    assert (await log.position(ANN)).epoch == old.epoch  # still there, and used again now
    clock.now += MIN_KEY_TTL_MS / 1000 + 1
    await log.position(BOB)  # any use of the log drops those idle past the bound
    assert await log.read_after(ANN, old.epoch, 0) is None
    fresh = await log.position(ANN)
    assert fresh.epoch != old.epoch
    assert fresh.last_seq == 0


def test_bounds_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_len"):
        MemoryFrameLog(max_len=0)
    with pytest.raises(ValueError, match="max_age_s"):
        MemoryFrameLog(max_age_s=0)
