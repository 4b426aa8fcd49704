"""Context cache, presence, rate counters and the control channel."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from storage.control_messages import CancelTurn
from storage.keys import KeySpace, UserKey
from storage.small_stores import (
    ContextCache,
    ControlChannel,
    Presence,
    WindowCounter,
)

if TYPE_CHECKING:
    from tests.state_store import StateRedis

ALICE = UserKey("acme", "alice")
BOB = UserKey("acme", "bob")
LONG = 30.0
SHORT = 0.15
AFTER_SHORT = 0.4


# -- context cache -------------------------------------------------------------------


async def test_context_cache_round_trip_and_invalidate(state_redis: StateRedis) -> None:
    cache = ContextCache(state_redis.redis, prefix=state_redis.prefix)
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "Grüße"},
        {"role": "assistant", "content": None},
    ]

    assert await cache.get(ALICE, "c1") is None
    assert await cache.set(ALICE, "c1", messages, LONG)
    assert await cache.get(ALICE, "c1") == messages
    assert await cache.get(BOB, "c1") is None
    await cache.invalidate(ALICE, "c1")
    assert await cache.get(ALICE, "c1") is None


async def test_context_cache_is_bounded_by_size_and_time(state_redis: StateRedis) -> None:
    cache = ContextCache(state_redis.redis, prefix=state_redis.prefix, max_bytes=200)
    small = [{"role": "user", "content": "hi"}]
    large = [{"role": "user", "content": "x" * 300}]
    await cache.set(ALICE, "c1", small, LONG)

    assert not await cache.set(ALICE, "c1", large, LONG)
    assert await cache.get(ALICE, "c1") is None  # the stale smaller window went too

    assert await cache.set(ALICE, "c2", small, SHORT)
    await asyncio.sleep(AFTER_SHORT)
    assert await cache.get(ALICE, "c2") is None


async def test_an_unreadable_cache_entry_is_a_miss(state_redis: StateRedis) -> None:
    cache = ContextCache(state_redis.redis, prefix=state_redis.prefix)
    keys = KeySpace(state_redis.prefix)
    await state_redis.redis.set(keys.context(ALICE, "c1"), b"not json")
    await state_redis.redis.set(keys.context(ALICE, "c2"), b'{"role":"user"}')

    assert await cache.get(ALICE, "c1") is None
    assert await cache.get(ALICE, "c2") is None


# -- presence ------------------------------------------------------------------------


async def test_presence_counts_live_connections_and_drops_stale_ones(
    state_redis: StateRedis,
) -> None:
    presence = Presence(state_redis.redis, prefix=state_redis.prefix)

    assert await presence.touch(ALICE, "conn-a", LONG) == 1
    assert await presence.touch(ALICE, "conn-b", 1.0) == 2
    assert await presence.touch(ALICE, "conn-a", LONG) == 2  # touching again is not a new tab
    assert await presence.count(ALICE) == 2
    assert await presence.count(BOB) == 0
    await asyncio.sleep(1.3)
    assert await presence.count(ALICE) == 1
    await presence.leave(ALICE, "conn-a")
    assert await presence.count(ALICE) == 0


async def test_presence_key_expires_with_its_longest_lived_connection(
    state_redis: StateRedis,
) -> None:
    presence = Presence(state_redis.redis, prefix=state_redis.prefix)
    key = KeySpace(state_redis.prefix).presence(ALICE)

    await presence.touch(ALICE, "conn-a", LONG)
    await presence.touch(ALICE, "conn-b", SHORT)
    assert LONG * 1000 / 2 < await state_redis.redis.pttl(key) <= LONG * 1000

    await presence.leave(ALICE, "conn-a")
    await presence.touch(ALICE, "conn-c", SHORT)
    await asyncio.sleep(AFTER_SHORT)
    assert await state_redis.redis.exists(key) == 0


# -- rate counters -------------------------------------------------------------------


async def test_window_counter_refuses_past_the_limit_until_the_window_ends(
    state_redis: StateRedis,
) -> None:
    counter = WindowCounter(state_redis.redis, prefix=state_redis.prefix)
    window = 1.0

    hits = [await counter.hit("msg:acme:alice", 3, window) for _ in range(4)]

    assert [(allowed, count) for allowed, count, _ in hits] == [
        (True, 1),
        (True, 2),
        (True, 3),
        (False, 4),
    ]
    assert [retry for _, _, retry in hits[:3]] == [0.0, 0.0, 0.0]
    assert 0 < hits[3][2] <= window
    assert (await counter.hit("msg:acme:bob", 3, window))[:2] == (True, 1)
    await asyncio.sleep(window + 0.2)
    assert await counter.hit("msg:acme:alice", 3, window) == (True, 1, 0.0)


async def test_window_counters_are_shared_between_workers(state_redis: StateRedis) -> None:
    workers = [
        WindowCounter(client, prefix=state_redis.prefix)
        for client in (state_redis.redis, await state_redis.new_client())
    ]

    results = await asyncio.gather(*(workers[i % 2].hit("conn:1.2.3.4", 5, 30) for i in range(8)))

    assert sorted(count for _, count, _ in results) == list(range(1, 9))
    assert sum(allowed for allowed, _, _ in results) == 5


# -- control channel -----------------------------------------------------------------


async def test_control_messages_reach_subscribed_workers(state_redis: StateRedis) -> None:
    control = ControlChannel(state_redis.redis, prefix=state_redis.prefix)
    pubsub = await state_redis.subscribe(control.channel)

    assert control.channel == f"{state_redis.prefix}control"
    assert await control.publish(CancelTurn(turn_id="t1")) == 1
    message = None
    async with asyncio.timeout(10):
        while message is None:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
    assert message["data"] == b'{"op":"cancel","turn_id":"t1"}'
    assert control.read(message["data"]) == CancelTurn(turn_id="t1")
