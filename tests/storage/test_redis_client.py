"""Connecting to Redis or the embedded store, and translating redis-py's errors."""

from __future__ import annotations

import logging

import pytest
from redis import exceptions as redis_errors
from redis.asyncio import BlockingConnectionPool, Redis

from storage import redis_client
from storage.errors import StateUnavailable
from storage.frame_log import FrameLog
from storage.keys import UserKey
from storage.redis_client import connect_redis, is_embedded, state_errors
from tests.state_store import REDIS_URL

UNREACHABLE_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1


async def test_without_a_url_the_store_is_embedded_and_says_so_once(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_client, "_embedded_warned", False)
    caplog.set_level(logging.WARNING, logger="storage.redis_client")

    first, second = await connect_redis(None), await connect_redis(None)
    try:
        assert is_embedded(first)
        await first.set("k", b"v")
        assert await first.get("k") == b"v"
        assert await second.get("k") is None  # each call is its own store
        assert [r.levelname for r in caplog.records] == ["WARNING"]
        assert "single worker" in caplog.records[0].getMessage()
    finally:
        await first.aclose()
        await second.aclose()


@pytest.mark.redis
async def test_with_a_url_the_client_uses_a_bounded_blocking_pool() -> None:
    try:
        client = await connect_redis(REDIS_URL, max_connections=7, timeout_s=2.0)
    except StateUnavailable as exc:
        pytest.skip(f"no Redis at {REDIS_URL}: {exc}")
    try:
        assert not is_embedded(client)
        pool = client.connection_pool
        assert isinstance(pool, BlockingConnectionPool)
        assert pool.max_connections == 7
        assert pool.timeout == 2.0
        assert pool.connection_kwargs["decode_responses"] is False
        assert pool.connection_kwargs["socket_timeout"] == 2.0
        assert pool.connection_kwargs["retry"].get_retries() == redis_client.RETRY_ATTEMPTS
        assert await client.ping()
    finally:
        await client.aclose()


async def test_an_unreachable_redis_fails_at_connect() -> None:
    with pytest.raises(StateUnavailable, match="during connect") as caught:
        await connect_redis(UNREACHABLE_URL, timeout_s=1.0)
    assert isinstance(caught.value.__cause__, redis_errors.ConnectionError)
    assert caught.value.operation == "connect"


async def test_state_calls_on_a_lost_redis_raise_state_unavailable() -> None:
    client = Redis.from_url(UNREACHABLE_URL, socket_connect_timeout=1.0)
    try:
        with pytest.raises(StateUnavailable, match="frame log append"):
            await FrameLog(client).append(UserKey("acme", "alice"), ['{"type":"x"}'])
    finally:
        await client.aclose()


def test_only_availability_errors_are_translated() -> None:
    for error in (
        redis_errors.TimeoutError("timed out"),
        redis_errors.BusyLoadingError("loading"),
        redis_errors.ReadOnlyError("read only replica"),
        redis_errors.OutOfMemoryError("oom"),
    ):
        with pytest.raises(StateUnavailable) as caught, state_errors("probe"):
            raise error
        assert caught.value.__cause__ is error

    with pytest.raises(redis_errors.ResponseError), state_errors("probe"):
        raise redis_errors.ResponseError("WRONGTYPE")
