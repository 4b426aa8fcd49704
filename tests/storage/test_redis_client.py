"""Connecting to Redis or the embedded store, and translating redis-py's errors."""

from __future__ import annotations

import logging

import pytest
from redis import exceptions as redis_errors
from redis.asyncio import BlockingConnectionPool, Redis, RedisCluster
from redis.asyncio.sentinel import SentinelConnectionPool

from storage import redis_client
from storage.errors import StateUnavailable
from storage.frame_log import FrameLog
from storage.keys import UserKey
from storage.redis_client import (
    RedisMode,
    SentinelAddress,
    connect_redis,
    is_cluster,
    is_embedded,
    parse_sentinel_url,
    state_errors,
    wakeup_publish_command,
)
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


def test_cluster_outages_are_translated_too() -> None:
    for error in (
        redis_errors.ClusterDownError("CLUSTERDOWN the cluster is down"),
        redis_errors.SlotNotCoveredError("slot 42 not covered"),
        redis_errors.RedisClusterUnreachableError("no node answers"),
    ):
        with pytest.raises(StateUnavailable) as caught, state_errors("probe"):
            raise error
        assert caught.value.__cause__ is error


# -- modes -------------------------------------------------------------------------------


@pytest.mark.redis
async def test_auto_mode_takes_a_single_server_for_one() -> None:
    try:
        client = await connect_redis(REDIS_URL, timeout_s=2.0)
    except StateUnavailable as exc:
        pytest.skip(f"no Redis at {REDIS_URL}: {exc}")
    try:
        assert isinstance(client, Redis)
        assert not is_cluster(client)
        assert wakeup_publish_command(client) == "PUBLISH"
    finally:
        await client.aclose()


async def test_the_embedded_store_is_no_cluster() -> None:
    client = await connect_redis(None)
    try:
        assert not is_cluster(client)
        assert wakeup_publish_command(client) == "PUBLISH"
    finally:
        await client.aclose()


async def test_an_unanswering_node_in_auto_mode_is_taken_for_a_single_server(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="storage.redis_client")
    client = await connect_redis(UNREACHABLE_URL, timeout_s=0.5, require_reachable=False)
    try:
        assert isinstance(client, Redis)
        assert "PARLEY_REDIS_MODE=cluster" in caplog.text
    finally:
        await client.aclose()


async def test_an_explicit_cluster_mode_is_not_second_guessed() -> None:
    client = await connect_redis(
        UNREACHABLE_URL, mode=RedisMode.CLUSTER, timeout_s=0.5, require_reachable=False
    )
    try:
        assert isinstance(client, RedisCluster)
        assert wakeup_publish_command(client) == "SPUBLISH"
    finally:
        await client.aclose()


async def test_a_sentinel_url_gets_a_client_that_asks_the_sentinels() -> None:
    client = await connect_redis(
        "redis+sentinel://127.0.0.1:1/primary", timeout_s=0.5, require_reachable=False
    )
    try:
        assert isinstance(client.connection_pool, SentinelConnectionPool)
        assert client.connection_pool.service_name == "primary"
    finally:
        await client.aclose()


@pytest.mark.parametrize(
    ("url", "mode"),
    [
        ("redis://127.0.0.1:6379/0", RedisMode.SENTINEL),
        ("redis+sentinel://127.0.0.1:26379/primary", RedisMode.STANDALONE),
        ("redis+sentinel://127.0.0.1:26379/primary", RedisMode.CLUSTER),
    ],
)
async def test_a_url_that_does_not_fit_the_mode_is_refused(url: str, mode: RedisMode) -> None:
    with pytest.raises(ValueError, match="redis\\+sentinel://"):
        await connect_redis(url, mode=mode, require_reachable=False)


def test_sentinel_urls_name_hosts_service_database_and_credentials() -> None:
    address = parse_sentinel_url("redis+sentinel://:s%40cret@a:26380,b,c:1/my-primary/2")
    assert address == SentinelAddress(
        sentinels=(("a", 26380), ("b", 26379), ("c", 1)),
        service="my-primary",
        db=2,
        username=None,
        password="s@cret",
    )
    assert parse_sentinel_url("redis+sentinel://u:p@h/svc") == SentinelAddress(
        (("h", 26379),), "svc", 0, "u", "p"
    )


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("redis://h/svc", "starts with"),
        ("redis+sentinel://h", "names the service"),
        ("redis+sentinel://h/svc/0/extra", "names the service"),
        ("redis+sentinel://h:port/svc", "bad port"),
        ("redis+sentinel://:26379/svc", "no host"),
        ("redis+sentinel://h/svc/zero", "not a number"),
    ],
)
def test_bad_sentinel_urls_say_what_is_wrong(url: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_sentinel_url(url)
