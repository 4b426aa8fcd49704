"""Page tool registrations: per user and connection, shared by workers, lapsing with their TTL."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from storage.errors import CorruptState
from storage.keys import KeySpace, UserKey
from storage.page_tools import PageToolRegistrations

if TYPE_CHECKING:
    from tests.state_store import StateRedis

ALICE = UserKey("acme", "alice")
BOB = UserKey("acme", "bob")
LONG = 30.0
OPEN = {"name": "open_record", "description": "open", "parameters": {"type": "object"}}
FILTER = {"name": "set_filter", "description": "filter", "parameters": {"type": "object"}}


async def test_registrations_are_kept_per_user_and_connection(state_redis: StateRedis) -> None:
    worker_a = PageToolRegistrations(state_redis.redis, prefix=state_redis.prefix)
    worker_b = PageToolRegistrations(state_redis.redis, prefix=state_redis.prefix)

    await worker_a.put(ALICE, "conn-1", [OPEN], LONG)
    await worker_b.put(ALICE, "conn-2", [FILTER], LONG)
    await worker_b.put(BOB, "conn-3", [OPEN, FILTER], LONG)

    assert await worker_a.live(ALICE) == {"conn-1": [OPEN], "conn-2": [FILTER]}
    await worker_a.put(ALICE, "conn-1", [], LONG)  # a new set replaces the old one
    assert await worker_b.live(ALICE) == {"conn-1": [], "conn-2": [FILTER]}
    await worker_b.remove(ALICE, "conn-2")
    assert await worker_a.live(ALICE) == {"conn-1": []}
    assert await worker_a.live(BOB) == {"conn-3": [OPEN, FILTER]}


async def test_a_registration_nobody_renews_lapses(state_redis: StateRedis) -> None:
    store = PageToolRegistrations(state_redis.redis, prefix=state_redis.prefix)

    await store.put(ALICE, "conn-live", [OPEN], LONG)
    await store.put(ALICE, "conn-dead-worker", [FILTER], 0.2)
    await asyncio.sleep(0.5)

    assert await store.live(ALICE) == {"conn-live": [OPEN]}


async def test_an_entry_this_class_did_not_write_is_corrupt_state(
    state_redis: StateRedis,
) -> None:
    store = PageToolRegistrations(state_redis.redis, prefix=state_redis.prefix)
    await store.put(ALICE, "conn-1", [OPEN], LONG)
    await state_redis.redis.hset(KeySpace(state_redis.prefix).page_tools(ALICE), "conn-1", "{")

    with pytest.raises(CorruptState):
        await store.live(ALICE)
