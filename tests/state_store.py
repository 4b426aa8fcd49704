"""The state store a test runs on: one store, two kinds.

The ``state_redis`` fixture (registered in tests/conftest.py, so the storage and server
suites share it) runs each test twice: on the embedded store (a fresh fakeredis server
per test) and on the real Redis at ``PARLEY_TEST_REDIS_URL`` (default
127.0.0.1:6379/0), shared with other runs, so each test gets its own random key prefix
and deletes exactly its own keys afterwards. Nothing here ever flushes the real Redis.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import cast

import fakeredis
import pytest
from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from storage.errors import StateUnavailable
from storage.redis_client import EMBEDDED_VERSION, connect_redis

REDIS_URL = os.environ.get("PARLEY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@dataclass
class StateRedis:
    """A store for one test: a client, the test's key prefix, and a few powers."""

    kind: str  # "embedded" or "redis"
    redis: Redis
    prefix: str
    _connect: Callable[[], Awaitable[Redis]]
    _clients: list[Redis] = field(default_factory=list)
    _subscriptions: list[PubSub] = field(default_factory=list)

    async def new_client(self) -> Redis:
        """Another client on the same data with its own connection pool (another worker)."""
        client = await self._connect()
        self._clients.append(client)
        return client

    async def subscribe(self, channel: str) -> PubSub:
        """A subscription to ``channel`` on its own client, closed after the test."""
        pubsub = (await self.new_client()).pubsub(ignore_subscribe_messages=True)
        self._subscriptions.append(pubsub)
        await pubsub.subscribe(channel)
        return pubsub

    async def test_keys(self) -> list[bytes]:
        """Every key this test made."""
        return [key async for key in self.redis.scan_iter(match=f"{self.prefix}*", count=500)]

    async def lose_data(self) -> None:
        """What Redis losing its data (restart without persistence) looks like to this test."""
        if self.kind == "embedded":
            await self.redis.flushall()  # this test's own in-process server
        else:
            await self._delete_test_keys()

    async def _delete_test_keys(self) -> None:
        keys = await self.test_keys()
        for start in range(0, len(keys), 500):
            await self.redis.unlink(*keys[start : start + 500])

    async def close(self) -> None:
        for pubsub in self._subscriptions:
            # PubSub.aclose carries no annotations in redis-py; give it its real type.
            await cast("Callable[[], Awaitable[None]]", pubsub.aclose)()
        if self.kind == "redis":
            await self._delete_test_keys()
        for client in [*self._clients, self.redis]:
            await client.aclose()


STORE_KINDS = ["embedded", pytest.param("redis", marks=pytest.mark.redis)]


@asynccontextmanager
async def open_state_redis(kind: str) -> AsyncIterator[StateRedis]:
    """A store of ``kind`` ("embedded" or "redis") for one test; skips without a Redis."""
    prefix = f"parley-test:{secrets.token_hex(6)}:"
    connect: Callable[[], Awaitable[Redis]]
    if kind == "embedded":
        server = fakeredis.FakeServer(version=EMBEDDED_VERSION)

        async def connect() -> Redis:
            return fakeredis.FakeAsyncRedis(server=server)

    else:

        async def connect() -> Redis:
            return await connect_redis(REDIS_URL, max_connections=20)

    try:
        redis = await connect()
    except StateUnavailable as exc:
        pytest.skip(f"no Redis at {REDIS_URL}: {exc}")
    state = StateRedis(kind, redis, prefix, connect)
    try:
        yield state
    finally:
        await state.close()
