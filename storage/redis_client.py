"""The Redis connection, and the boundary where redis-py's errors become ours.

:func:`connect_redis` gives one of three clients, chosen by :class:`RedisMode`:

* a plain ``redis.asyncio.Redis`` for one Redis server (and the embedded in-process store,
  a ``fakeredis.FakeAsyncRedis``, a subclass of the same class running the same Lua);
* a ``redis.asyncio.RedisCluster`` for a Redis Cluster, which routes each command to the
  master owning its key's slot and follows slot moves and failovers by itself;
* a plain ``Redis`` over a Sentinel-managed pool for a primary watched by Sentinels
  (``redis+sentinel://`` URLs), which asks the Sentinels where the primary is on every
  new connection and drops connections to a primary that was demoted.

By default the mode is detected: a ``redis+sentinel://`` URL means Sentinel, and a node
that reports ``cluster_enabled:1`` means Cluster. :data:`RedisClient` is the type every
state class takes; :func:`is_embedded` and :func:`is_cluster` tell the kinds apart where it
matters (sharded pub/sub on a cluster, the readiness probe).

Clients always speak bytes (``decode_responses=False``); the state layer decodes what it
reads itself, so a frame's UTF-8 text is never re-encoded on the way through.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeAlias
from urllib.parse import unquote

import fakeredis
from redis import exceptions as redis_errors
from redis.asyncio import BlockingConnectionPool, Redis, RedisCluster, Sentinel
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff

from storage.errors import CorruptState, StateUnavailable

logger = logging.getLogger(__name__)

RedisClient: TypeAlias = Redis | RedisCluster
"""What every state class takes: one server (or Sentinel's primary), or a cluster."""

# How often an idle pooled connection is PINGed before reuse, so a connection a
# failover or a proxy silently dropped is replaced before a command is lost on it.
HEALTH_CHECK_INTERVAL_S = 30
# A command that fails on a broken connection is retried this many times, with
# exponential backoff and jitter (so many workers reconnecting after a failover do not
# retry in lockstep). Every write script is written to be safe to run twice.
RETRY_ATTEMPTS = 3
RETRY_BACKOFF_BASE_S = 0.05
RETRY_BACKOFF_CAP_S = 1.0
# A cluster client retries longer: a failover takes the cluster's node timeout plus an
# election (a few seconds), and a command that waits it out through the client's own
# topology refreshes is better than one that fails and is repeated by its caller.
CLUSTER_RETRY_ATTEMPTS = 8
# The embedded store mimics the Redis major version production runs on.
EMBEDDED_VERSION = (7, 0)
SENTINEL_SCHEME = "redis+sentinel"
DEFAULT_SENTINEL_PORT = 26379

_embedded_warned = False


class RedisMode(StrEnum):
    """How to reach Redis (``PARLEY_REDIS_MODE``)."""

    # Sentinel for a redis+sentinel:// URL, else the node is asked whether it is a cluster.
    AUTO = "auto"
    STANDALONE = "standalone"
    CLUSTER = "cluster"
    SENTINEL = "sentinel"


@dataclass(frozen=True, slots=True)
class SentinelAddress:
    """What a ``redis+sentinel://`` URL names: the Sentinels, the service and the database."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    username: str | None = None
    password: str | None = None


def parse_sentinel_url(url: str) -> SentinelAddress:
    """Read ``redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/service[/db]``.

    The password (and user) are the primary's; the Sentinels are asked without one. A
    Sentinel without a port listens on 26379.

    Raises:
        ValueError: ``url`` is not of that form; the message names the part that is wrong.
    """
    prefix = f"{SENTINEL_SCHEME}://"
    if not url.startswith(prefix):
        raise ValueError(f"a Sentinel URL starts with {prefix!r}")
    rest = url[len(prefix) :]
    hosts, _, path = rest.partition("/")
    username = password = None
    if "@" in hosts:
        credentials, _, hosts = hosts.rpartition("@")
        user_part, has_password, password_part = credentials.partition(":")
        username = unquote(user_part) or None
        password = unquote(password_part) if has_password else None
    sentinels: list[tuple[str, int]] = []
    for item in hosts.split(","):
        host, has_port, port = item.rpartition(":") if ":" in item else (item, "", "")
        if not host:
            raise ValueError(f"sentinel address {item!r} names no host")
        try:
            number = int(port) if has_port else DEFAULT_SENTINEL_PORT
        except ValueError as exc:
            raise ValueError(f"sentinel address {item!r} has a bad port") from exc
        sentinels.append((host, number))
    parts = [unquote(part) for part in path.split("/") if part]
    if not parts or len(parts) > 2:
        raise ValueError("a Sentinel URL names the service after the hosts: .../service[/db]")
    try:
        db = int(parts[1]) if len(parts) == 2 else 0
    except ValueError as exc:
        raise ValueError(f"database {parts[1]!r} is not a number") from exc
    return SentinelAddress(tuple(sentinels), parts[0], db, username, password)


async def connect_redis(
    url: str | None,
    *,
    mode: RedisMode = RedisMode.AUTO,
    max_connections: int = 50,
    timeout_s: float = 5.0,
    require_reachable: bool = True,
) -> RedisClient:
    """Connect to Redis at ``url`` in ``mode``, or start the embedded store when ``url`` is None.

    With a URL, ``timeout_s`` bounds connecting and each reply. A standalone client runs over
    a ``BlockingConnectionPool``: when all ``max_connections`` are busy a command waits up to
    ``timeout_s`` for one instead of failing at once. A cluster client keeps up to
    ``max_connections`` per node, a Sentinel client that many to the primary.

    Redis is PINGed before returning (every master, on a cluster), so a wrong URL fails at
    startup rather than on first use; with ``require_reachable=False`` an unanswered PING
    is only logged, and the client connects when Redis comes up (a worker starts while
    Redis is down and recovers on its own). Detecting a cluster (``mode=AUTO``) needs an
    answer too: a node that gives none is taken for a standalone server, which is logged.

    Without a URL every call makes a fresh, empty in-process store: share the returned
    client (and its subscriptions) within the process. It is single-process only, which
    is logged once at WARNING.

    Close the client with ``aclose()``.

    Raises:
        StateUnavailable: the Redis at ``url`` cannot be reached.
        ValueError: ``url`` does not fit ``mode`` (a Sentinel URL is needed for Sentinel, a
            cluster takes no database number other than 0).
    """
    if url is None:
        return _embedded()
    if mode is RedisMode.AUTO:
        if url.startswith(f"{SENTINEL_SCHEME}://"):
            mode = RedisMode.SENTINEL
        else:
            mode = await _detect(url, timeout_s, require_reachable=require_reachable)
    elif url.startswith(f"{SENTINEL_SCHEME}://") != (mode is RedisMode.SENTINEL):
        raise ValueError(
            f"REDIS_URL must use {SENTINEL_SCHEME}:// exactly when the mode is sentinel"
        )
    client: RedisClient
    if mode is RedisMode.SENTINEL:
        client = _sentinel_client(parse_sentinel_url(url), max_connections, timeout_s)
    elif mode is RedisMode.CLUSTER:
        client = _cluster_client(url, max_connections, timeout_s)
    else:
        client = _standalone_client(url, max_connections, timeout_s)
    try:
        with state_errors("connect"):
            await ping(client)
    except StateUnavailable as exc:
        if not require_reachable:
            logger.warning("Redis does not answer yet (%s); carrying on without it", exc)
            return client
        await client.aclose()
        raise
    logger.info("connected to Redis (%s)", mode.value)
    return client


async def ping(client: RedisClient) -> None:
    """PING the server, or every master of a cluster (a replica's outage is no outage).

    Raises:
        redis.exceptions.RedisError: one of them did not answer (translate with
            :func:`state_errors`).
    """
    if isinstance(client, RedisCluster):
        await client.ping(target_nodes=RedisCluster.PRIMARIES)
    else:
        await client.ping()


def is_embedded(redis: RedisClient) -> bool:
    """True when ``redis`` is the in-process store made by ``connect_redis(None)``."""
    return isinstance(redis, fakeredis.FakeAsyncRedis)


def is_cluster(redis: RedisClient) -> bool:
    """True when ``redis`` talks to a Redis Cluster (sharded pub/sub, per-slot routing)."""
    return isinstance(redis, RedisCluster)


def wakeup_publish_command(redis: RedisClient) -> str:
    """The command that publishes a wake-up: sharded ``SPUBLISH`` on a cluster, so it goes
    to the shard owning the channel's slot only, plain ``PUBLISH`` elsewhere (which every
    Redis since 2.0 and the embedded store know)."""
    return "SPUBLISH" if is_cluster(redis) else "PUBLISH"


async def _detect(url: str, timeout_s: float, *, require_reachable: bool) -> RedisMode:
    """Ask the node at ``url`` whether it belongs to a cluster."""
    probe = Redis.from_url(
        url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, decode_responses=False
    )
    try:
        with state_errors("connect"):
            info = await probe.info("cluster")
    except StateUnavailable as exc:
        if require_reachable:
            raise
        logger.warning(
            "Redis does not answer (%s): cannot tell whether it is a cluster; taking it for a "
            "single server (set PARLEY_REDIS_MODE=cluster if it is one)",
            exc,
        )
        return RedisMode.STANDALONE
    finally:
        await probe.aclose()
    enabled = info.get("cluster_enabled") in (1, "1", b"1")
    return RedisMode.CLUSTER if enabled else RedisMode.STANDALONE


def _retry(attempts: int) -> Retry:
    return Retry(
        ExponentialWithJitterBackoff(base=RETRY_BACKOFF_BASE_S, cap=RETRY_BACKOFF_CAP_S), attempts
    )


def _standalone_client(url: str, max_connections: int, timeout_s: float) -> Redis:
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=timeout_s,
        decode_responses=False,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        health_check_interval=HEALTH_CHECK_INTERVAL_S,
        retry=_retry(RETRY_ATTEMPTS),
    )
    return Redis.from_pool(pool)


def _cluster_client(url: str, max_connections: int, timeout_s: float) -> RedisCluster:
    # The URL names one node; the client learns the others (and the slot map) from it, and
    # keeps the map fresh when a MOVED reply or a lost node says it changed.
    return RedisCluster.from_url(
        url,
        max_connections=max_connections,
        decode_responses=False,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        health_check_interval=HEALTH_CHECK_INTERVAL_S,
        retry=_retry(CLUSTER_RETRY_ATTEMPTS),
    )


def _sentinel_client(address: SentinelAddress, max_connections: int, timeout_s: float) -> Redis:
    options: dict[str, Any] = {
        "socket_timeout": timeout_s,
        "socket_connect_timeout": timeout_s,
    }
    sentinel = Sentinel(list(address.sentinels), sentinel_kwargs=options, **options)
    client: Redis = sentinel.master_for(
        address.service,
        db=address.db,
        username=address.username,
        password=address.password,
        max_connections=max_connections,
        decode_responses=False,
        health_check_interval=HEALTH_CHECK_INTERVAL_S,
        retry=_retry(RETRY_ATTEMPTS),
    )
    return client


def _embedded() -> Redis:
    global _embedded_warned
    if not _embedded_warned:
        _embedded_warned = True
        logger.warning(
            "REDIS_URL is not set: state and fan-out live in this process only; "
            "run a single worker, or set REDIS_URL to scale out"
        )
    server = fakeredis.FakeServer(version=EMBEDDED_VERSION)
    return fakeredis.FakeAsyncRedis(server=server, decode_responses=False)


# -- error boundary ------------------------------------------------------------------

# Errors that mean "Redis cannot serve this right now", as opposed to a bug in how we
# call it: connection loss, timeouts, loading after a restart (a ConnectionError
# subclass), a replica after failover refusing writes, and maxmemory reached; on a
# cluster also a slot whose master is down or moving, and a cluster no node of which
# answers (these two are not RedisError subclasses in redis-py).
_UNAVAILABLE: tuple[type[Exception], ...] = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.ReadOnlyError,
    redis_errors.OutOfMemoryError,
    redis_errors.ClusterDownError,
    redis_errors.TryAgainError,
    redis_errors.SlotNotCoveredError,
    redis_errors.RedisClusterUnreachableError,
)


@contextmanager
def state_errors(operation: str) -> Iterator[None]:
    """Translate redis-py's availability errors raised inside into ``StateUnavailable``.

    Raises:
        StateUnavailable: Redis could not serve ``operation``.
    """
    try:
        yield
    except _UNAVAILABLE as exc:
        raise StateUnavailable(operation, str(exc) or type(exc).__name__) from exc


def to_ms(seconds: float) -> int:
    """A duration as whole milliseconds, at least 1 (Redis rejects a zero TTL)."""
    return max(1, round(seconds * 1000))


# -- decoding replies ----------------------------------------------------------------
# Script replies are typed ``Any`` by redis-py; these narrow them at runtime, so a shape
# we did not expect becomes a CorruptState naming the key instead of a TypeError later.


def reply_str(value: object, key: str) -> str:
    """A bulk-string reply as text.

    Raises:
        CorruptState: ``value`` is not UTF-8 bytes.
    """
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError as exc:
            raise CorruptState(key, "value is not utf-8") from exc
    if isinstance(value, str):
        return value
    raise CorruptState(key, f"expected a string, got {type(value).__name__}")


def reply_optional_str(value: object, key: str) -> str | None:
    """Like :func:`reply_str`, but a nil reply is None.

    Raises:
        CorruptState: ``value`` is neither nil nor UTF-8 bytes.
    """
    return None if value is None else reply_str(value, key)


def reply_int(value: object, key: str) -> int:
    """An integer reply, or a bulk string holding a decimal integer.

    Raises:
        CorruptState: ``value`` is not an integer.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, bytes | str):
        try:
            return int(value)
        except ValueError as exc:
            raise CorruptState(key, f"not an integer: {value!r}") from exc
    raise CorruptState(key, f"expected an integer, got {type(value).__name__}")


def reply_list(value: object, key: str) -> list[object]:
    """An array reply.

    Raises:
        CorruptState: ``value`` is not an array.
    """
    if isinstance(value, list):
        return value
    raise CorruptState(key, f"expected an array, got {type(value).__name__}")
