"""Queued messages per conversation, and the index sweepers use to find stalled ones."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from storage.keys import KeySpace, UserKey
from storage.turn_queue import TurnQueue

if TYPE_CHECKING:
    from tests.state_store import StateRedis

ALICE = UserKey("acme", "alice")
BOB = UserKey("acme", "bob")
WAIT = 0.2
AFTER_WAIT = 0.3


def queue_for(state: StateRedis) -> TurnQueue:
    return TurnQueue(state.redis, prefix=state.prefix)


async def test_entries_come_out_in_order_and_the_limit_holds(state_redis: StateRedis) -> None:
    queue = queue_for(state_redis)

    assert await queue.push(ALICE, "c1", "one", limit=2)
    assert await queue.push(ALICE, "c1", "two", limit=2)
    assert not await queue.push(ALICE, "c1", "three", limit=2)
    assert await queue.push(BOB, "c1", "bob's", limit=2)

    assert await queue.waiting(ALICE, "c1") == 2
    assert [await queue.pop(ALICE, "c1") for _ in range(3)] == ["one", "two", None]
    assert await queue.pop(BOB, "c1") == "bob's"


async def test_only_queues_left_waiting_long_enough_are_stalled(state_redis: StateRedis) -> None:
    queue = queue_for(state_redis)
    await queue.push(ALICE, "c1", "waits", limit=5)
    await queue.push(BOB, "c2", "runs at once", limit=5)
    await queue.pop(BOB, "c2")

    assert await queue.stalled(older_than_s=WAIT) == []
    await asyncio.sleep(AFTER_WAIT)
    await queue.push(ALICE, "c3", "just queued", limit=5)

    assert await queue.stalled(older_than_s=WAIT) == [(ALICE, "c1")]
    # Looked at just now: not stalled again until it waits another while.
    assert await queue.stalled(older_than_s=WAIT) == []
    # The emptied queue left the index when it was looked at.
    index = KeySpace(state_redis.prefix).turn_queues_waiting()
    members = {member.decode() for member in await state_redis.redis.zrange(index, 0, -1)}
    assert members == {
        KeySpace.turn_queue_member(ALICE, "c1"),
        KeySpace.turn_queue_member(ALICE, "c3"),
    }


async def test_a_cleared_queue_leaves_the_index(state_redis: StateRedis) -> None:
    queue = queue_for(state_redis)
    await queue.push(ALICE, "c1", "waits", limit=5)
    await queue.clear(ALICE, "c1")
    await asyncio.sleep(AFTER_WAIT)

    assert await queue.waiting(ALICE, "c1") == 0
    assert await queue.stalled(older_than_s=WAIT) == []
    index = KeySpace(state_redis.prefix).turn_queues_waiting()
    assert await state_redis.redis.zcard(index) == 0


async def test_a_foreign_index_member_is_dropped(state_redis: StateRedis) -> None:
    index = KeySpace(state_redis.prefix).turn_queues_waiting()
    await state_redis.redis.zadd(index, {"not:ours:at:all": 0})

    assert await queue_for(state_redis).stalled(older_than_s=WAIT) == []
    assert await state_redis.redis.zcard(index) == 0
