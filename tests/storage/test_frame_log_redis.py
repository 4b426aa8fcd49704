"""The frame log: seqs, publishing, resume, trimming, epochs (DESIGN invariants 1, 2, 9)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import orjson
import pytest
from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from storage.errors import CorruptState
from storage.frame_log import READ_CHUNK, FrameLog, LoggedFrame, StreamPosition
from storage.keys import KeySpace, UserKey

if TYPE_CHECKING:
    from tests.state_store import StateRedis

ALICE = UserKey("acme", "alice")
BOB = UserKey("acme", "bob")


def frame(n: int, kind: str = "response_delta") -> str:
    return orjson.dumps({"type": kind, "delta": f"part {n}"}).decode()


def log_for(
    state: StateRedis,
    redis: Redis | None = None,
    *,
    max_len: int = 10_000,
    max_age_s: float = 600.0,
) -> FrameLog:
    return FrameLog(redis or state.redis, prefix=state.prefix, max_len=max_len, max_age_s=max_age_s)


async def receive_frames(pubsub: PubSub, count: int, timeout_s: float = 30.0) -> list[LoggedFrame]:
    """Read published batches until ``count`` frames arrived."""
    received: list[LoggedFrame] = []
    async with asyncio.timeout(timeout_s):
        while len(received) < count:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is not None:
                received.extend(FrameLog.parse_published(message["data"]))
    return received


async def stream_length(state: StateRedis, user: UserKey) -> int:
    return await state.redis.xlen(KeySpace(state.prefix).log_frames(user))


# -- numbering and publishing --------------------------------------------------------


async def test_append_numbers_frames_from_one_and_splices_seq(state_redis: StateRedis) -> None:
    log = log_for(state_redis)

    first = await log.append(ALICE, ['{"type":"message","text":"hi"}'])
    batch = await log.append(ALICE, [frame(1), frame(2)])

    assert first == [LoggedFrame(1, '{"seq":1,"type":"message","text":"hi"}')]
    assert [f.seq for f in batch] == [2, 3]
    assert orjson.loads(batch[1].data) == {"seq": 3, "type": "response_delta", "delta": "part 2"}
    assert (await log.position(ALICE)).last_seq == 3


async def test_users_have_independent_logs(state_redis: StateRedis) -> None:
    log = log_for(state_redis)
    await log.append(ALICE, [frame(1), frame(2)])

    assert [f.seq for f in await log.append(BOB, [frame(1)])] == [1]
    assert (await log.position(ALICE)).epoch != (await log.position(BOB)).epoch


async def test_a_batch_is_published_as_one_message_in_order(state_redis: StateRedis) -> None:
    log = log_for(state_redis)
    pubsub = await state_redis.subscribe(log.channel(ALICE))

    logged = await log.append(ALICE, [frame(1), frame(2), frame(3)])

    message = None
    async with asyncio.timeout(10):
        while message is None:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
    assert message["data"].count(b"\n") == 2
    assert FrameLog.parse_published(message["data"]) == logged


async def test_text_survives_the_round_trip(state_redis: StateRedis) -> None:
    log = log_for(state_redis)
    text = orjson.dumps({"type": "message", "text": 'Grüße 👋 \\n "quoted"'}).decode()

    [logged] = await log.append(ALICE, [text])
    position = await log.position(ALICE)

    assert await log.read_after(ALICE, position.epoch, 0) == [logged]
    assert orjson.loads(logged.data)["text"] == 'Grüße 👋 \\n "quoted"'


async def test_append_of_nothing_does_nothing(state_redis: StateRedis) -> None:
    log = log_for(state_redis)

    assert await log.append(ALICE, []) == []
    assert await state_redis.test_keys() == []


@pytest.mark.parametrize("bad", ['{"seq":1,"type":"x"}', "[]", '{"type":"a",\n"b":1}', ""])
async def test_append_rejects_frames_of_the_wrong_shape(state_redis: StateRedis, bad: str) -> None:
    log = log_for(state_redis)

    with pytest.raises(RuntimeError, match="logged frame"):
        await log.append(ALICE, [frame(1), bad])
    assert await state_redis.test_keys() == []


async def test_concurrent_appenders_on_separate_clients_get_gapless_seqs_and_one_order(
    state_redis: StateRedis,
) -> None:
    """20 writers on 4 clients (own pools, like 4 workers) append 50 frames each at once."""
    writers, per_writer = 20, 50
    total = writers * per_writer
    clients = [state_redis.redis, *[await state_redis.new_client() for _ in range(3)]]
    pubsub = await state_redis.subscribe(log_for(state_redis).channel(ALICE))

    async def writer(index: int) -> list[LoggedFrame]:
        log = log_for(state_redis, clients[index % len(clients)])
        logged: list[LoggedFrame] = []
        sent = 0
        while sent < per_writer:
            size = min(1 + (index + sent) % 3, per_writer - sent)  # batches of 1 to 3
            logged += await log.append(ALICE, [frame(index * 1000 + sent + i) for i in range(size)])
            sent += size
        return logged

    results = await asyncio.gather(*(writer(i) for i in range(writers)))
    received = await receive_frames(pubsub, total)

    every = [f for logged in results for f in logged]
    assert sorted(f.seq for f in every) == list(range(1, total + 1))
    for logged in results:  # each writer's own frames are numbered in its order
        assert [f.seq for f in logged] == sorted(f.seq for f in logged)
    assert [f.seq for f in received] == list(range(1, total + 1))
    assert {f.seq: f.data for f in received} == {f.seq: f.data for f in every}
    epoch = (await log_for(state_redis).position(ALICE)).epoch
    assert await log_for(state_redis).read_after(ALICE, epoch, 0) == received


async def test_a_retried_append_is_answered_without_logging_twice(
    state_redis: StateRedis,
) -> None:
    """redis-py re-sends a command whose reply was lost; the script must not run it twice.

    ``_append`` is the call redis-py repeats verbatim: same writer, same call number.
    """
    log = log_for(state_redis)
    pubsub = await state_redis.subscribe(log.channel(ALICE))

    await log.append(ALICE, [frame(0)])
    first = await log._append(ALICE, [frame(1), frame(2)], 1_000)
    again = await log._append(ALICE, [frame(1), frame(2)], 1_000)
    after = await log.append(ALICE, [frame(3)])
    received = await receive_frames(pubsub, 4)

    assert again == first == [LoggedFrame(2, first[0].data), LoggedFrame(3, first[1].data)]
    assert [f.seq for f in after] == [4]
    assert [f.seq for f in received] == [1, 2, 3, 4]
    assert await stream_length(state_redis, ALICE) == 4


async def test_an_append_repeated_with_its_call_number_is_logged_once(
    state_redis: StateRedis,
) -> None:
    """What a caller does after ``StateUnavailable``: repeat the append with the same call."""
    log = log_for(state_redis)

    call = log.new_call()
    first = await log.append(ALICE, [frame(1)], call=call)
    repeat = await log.append(ALICE, [frame(1)], call=call)
    fresh = await log.append(ALICE, [frame(1)])

    assert repeat == first
    assert [f.seq for f in fresh] == [first[0].seq + 1]
    assert await stream_length(state_redis, ALICE) == 2


# -- position and resume -------------------------------------------------------------


async def test_position_makes_the_log_with_an_epoch(state_redis: StateRedis) -> None:
    log = log_for(state_redis)

    position = await log.position(ALICE)

    assert position.last_seq == 0
    assert len(position.epoch) == 16
    assert await log.position(ALICE) == position
    [logged] = await log.append(ALICE, [frame(1)])
    assert logged.seq == 1
    assert await log.position(ALICE) == position.__class__(position.epoch, 1)


async def test_read_after_returns_exactly_the_missed_frames(state_redis: StateRedis) -> None:
    log = log_for(state_redis)
    logged = await log.append(ALICE, [frame(i) for i in range(1, 8)])
    epoch = (await log.position(ALICE)).epoch

    assert await log.read_after(ALICE, epoch, 0) == logged
    assert await log.read_after(ALICE, epoch, 4) == logged[4:]
    assert await log.read_after(ALICE, epoch, 6) == logged[6:]
    assert await log.read_after(ALICE, epoch, 7) == []


async def test_read_after_refuses_more_than_the_caller_can_take(state_redis: StateRedis) -> None:
    log = log_for(state_redis)
    logged = await log.append(ALICE, [frame(i) for i in range(1, 8)])
    epoch = (await log.position(ALICE)).epoch

    assert await log.read_after(ALICE, epoch, 4, max_frames=3) == logged[4:]
    assert await log.read_after(ALICE, epoch, 3, max_frames=3) is None
    assert await log.read_after(ALICE, epoch, 7, max_frames=0) == []


async def test_read_after_refuses_what_it_cannot_resume(state_redis: StateRedis) -> None:
    log = log_for(state_redis)
    await log.append(ALICE, [frame(1), frame(2)])
    epoch = (await log.position(ALICE)).epoch

    assert await log.read_after(ALICE, epoch, 3) is None  # beyond the last seq
    assert await log.read_after(ALICE, epoch, -1) is None
    assert await log.read_after(ALICE, "0123456789abcdef", 1) is None  # another epoch
    assert await log.read_after(BOB, epoch, 0) is None  # no log at all


async def test_read_after_reads_a_long_absence_in_pieces(state_redis: StateRedis) -> None:
    log = log_for(state_redis)
    total = READ_CHUNK * 2 + 50
    logged: list[LoggedFrame] = []
    for start in range(0, total, 100):
        logged += await log.append(ALICE, [frame(i) for i in range(start, min(start + 100, total))])
    epoch = (await log.position(ALICE)).epoch

    assert await log.read_after(ALICE, epoch, 0) == logged
    assert await log.read_after(ALICE, epoch, 17) == logged[17:]
    assert await log.read_after(ALICE, epoch, total - READ_CHUNK) == logged[-READ_CHUNK:]


async def test_lost_data_means_a_new_epoch_and_seqs_from_one(state_redis: StateRedis) -> None:
    log = log_for(state_redis)
    await log.append(ALICE, [frame(1), frame(2), frame(3)])
    old = await log.position(ALICE)

    await state_redis.lose_data()

    assert await log.read_after(ALICE, old.epoch, 3) is None
    new = await log.position(ALICE)
    assert new.epoch != old.epoch
    assert new.last_seq == 0
    [logged] = await log.append(ALICE, [frame(4)])
    assert logged.seq == 1
    assert await log.read_after(ALICE, old.epoch, 0) is None
    assert await log.read_after(ALICE, new.epoch, 0) == [logged]


async def test_lost_data_found_by_append_starts_a_new_epoch(state_redis: StateRedis) -> None:
    log = log_for(state_redis)
    await log.append(ALICE, [frame(1), frame(2)])
    old = await log.position(ALICE)

    await state_redis.lose_data()
    [logged] = await log.append(ALICE, [frame(3)])

    assert logged.seq == 1
    new = await log.position(ALICE)
    assert new.epoch != old.epoch
    assert await log.read_after(ALICE, old.epoch, 2) is None


async def test_a_lost_head_drops_the_old_frames_with_it(state_redis: StateRedis) -> None:
    """If only the head hash vanishes (eviction), old frames must not mix into the new log."""
    log = log_for(state_redis)
    await log.append(ALICE, [frame(i) for i in range(5)])
    await state_redis.redis.delete(KeySpace(state_redis.prefix).log_meta(ALICE))

    [logged] = await log.append(ALICE, [frame(9)])
    epoch = (await log.position(ALICE)).epoch

    assert logged.seq == 1
    assert await log.read_after(ALICE, epoch, 0) == [logged]
    assert await stream_length(state_redis, ALICE) == 1


async def lose_newest_writes(state: StateRedis, user: UserKey, count: int) -> None:
    """What a failover to a replica that missed the last ``count`` appends looks like: the
    head and the stream as they were before them, under the same epoch."""
    keys = KeySpace(state.prefix)
    newest = await state.redis.xrevrange(keys.log_frames(user), count=count)
    await state.redis.xdel(keys.log_frames(user), *(entry_id for entry_id, _ in newest))
    await state.redis.hincrby(keys.log_meta(user), "seq", -count)


async def test_a_log_behind_what_this_writer_was_given_starts_a_new_epoch(
    state_redis: StateRedis,
) -> None:
    log = log_for(state_redis)
    await log.append(ALICE, [frame(i) for i in range(5)])
    old = await log.position(ALICE)
    await lose_newest_writes(state_redis, ALICE, 2)

    # Numbering on from 3 would give seqs 4 and 5 out a second time under the old epoch.
    [logged] = await log.append(ALICE, [frame(9)])

    new = await log.position(ALICE)
    assert logged.seq == 1
    assert new.epoch != old.epoch
    assert await log.read_after(ALICE, new.epoch, 0) == [logged]
    assert await log.read_after(ALICE, old.epoch, 3) is None


async def test_a_log_behind_what_a_reader_heard_starts_a_new_epoch(
    state_redis: StateRedis,
) -> None:
    writer = log_for(state_redis)
    await writer.append(ALICE, [frame(i) for i in range(5)])
    heard = await writer.position(ALICE)
    await lose_newest_writes(state_redis, ALICE, 2)
    reader = log_for(state_redis, await state_redis.new_client())  # another worker

    # Where the log stands is no news to a reader that heard no further than that.
    behind = StreamPosition(heard.epoch, 3)
    assert await reader.position(ALICE, at_least=behind) == behind
    # A reader that heard seq 5 learns the log lost writes: it is made anew.
    renewed = await reader.position(ALICE, at_least=heard)
    assert renewed.epoch != heard.epoch
    assert renewed.last_seq == 0
    [logged] = await writer.append(ALICE, [frame(9)])
    assert logged.seq == 1


# -- bounds --------------------------------------------------------------------------


async def test_log_is_trimmed_to_about_max_len(state_redis: StateRedis) -> None:
    log = log_for(state_redis, max_len=10)
    logged: list[LoggedFrame] = []
    for i in range(300):
        logged += await log.append(ALICE, [frame(i)])
    epoch = (await log.position(ALICE)).epoch

    length = await stream_length(state_redis, ALICE)
    # Approximate trimming drops whole stream nodes (at most 100 entries by default).
    assert 10 <= length <= 10 + 100
    oldest = logged[-length].seq
    assert await log.read_after(ALICE, epoch, 0) is None  # trimmed away
    assert await log.read_after(ALICE, epoch, oldest - 2) is None
    assert await log.read_after(ALICE, epoch, oldest - 1) == logged[-length:]
    assert await log.read_after(ALICE, epoch, 295) == logged[295:]


async def test_log_is_trimmed_by_age(state_redis: StateRedis) -> None:
    log = log_for(state_redis, max_age_s=0.3)
    old = [f for i in range(250) for f in await log.append(ALICE, [frame(i)])]
    await asyncio.sleep(0.5)

    [new] = await log.append(ALICE, [frame(250)])
    epoch = (await log.position(ALICE)).epoch

    length = await stream_length(state_redis, ALICE)
    assert length < 251  # at least the oldest whole node went
    assert await log.read_after(ALICE, epoch, 0) is None
    assert await log.read_after(ALICE, epoch, 250) == [new]
    kept = old[251 - length :]
    assert await log.read_after(ALICE, epoch, kept[0].seq - 1) == [*kept, new]


async def test_log_keys_expire_when_the_user_goes_idle(state_redis: StateRedis) -> None:
    keys = KeySpace(state_redis.prefix)
    await log_for(state_redis, max_age_s=600).append(ALICE, [frame(1)])

    day_ms = 86_400_000
    assert 0 < await state_redis.redis.pttl(keys.log_meta(ALICE)) <= day_ms
    assert 0 < await state_redis.redis.pttl(keys.log_frames(ALICE)) <= day_ms
    assert 0 < await state_redis.redis.pttl(keys.log_writers(ALICE)) <= 60_000

    await log_for(state_redis, max_age_s=86_400).append(ALICE, [frame(2)])
    assert await state_redis.redis.pttl(keys.log_meta(ALICE)) > day_ms  # 2 x max_age


def test_bounds_must_be_positive() -> None:
    redis = Redis()
    with pytest.raises(ValueError, match="max_len"):
        FrameLog(redis, max_len=0)
    with pytest.raises(ValueError, match="max_age_s"):
        FrameLog(redis, max_age_s=0)
    with pytest.raises(ValueError, match="braces"):
        FrameLog(redis, prefix="a{b}:")


def test_parse_published_rejects_foreign_messages() -> None:
    assert FrameLog.parse_published(b'{"seq":12,"type":"x"}') == [
        LoggedFrame(12, '{"seq":12,"type":"x"}')
    ]
    for message in (b"hello", b'{"type":"x"}', b'{"seq":x,"type":"x"}', b'{"seq":1}'):
        with pytest.raises(CorruptState):
            FrameLog.parse_published(message)
