"""The Redis connection, and the boundary where redis-py's errors become ours.

:func:`connect_redis` gives either a real ``redis.asyncio.Redis`` (with ``REDIS_URL``) or
the embedded in-process store, a ``fakeredis.FakeAsyncRedis`` — a subclass of the same
class, running the same Lua — so the rest of the state layer has one code path.
:func:`is_embedded` tells them apart.

Clients always speak bytes (``decode_responses=False``); the state layer decodes what it
reads itself, so a frame's UTF-8 text is never re-encoded on the way through.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import fakeredis
from redis import exceptions as redis_errors
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff

from storage.errors import CorruptState, StateUnavailable

logger = logging.getLogger(__name__)

# How often an idle pooled connection is PINGed before reuse, so a connection a
# failover or a proxy silently dropped is replaced before a command is lost on it.
HEALTH_CHECK_INTERVAL_S = 30
# A command that fails on a broken connection is retried this many times, with
# exponential backoff and jitter (so many workers reconnecting after a failover do not
# retry in lockstep). Every write script is written to be safe to run twice.
RETRY_ATTEMPTS = 3
RETRY_BACKOFF_BASE_S = 0.05
RETRY_BACKOFF_CAP_S = 1.0
# The embedded store mimics the Redis major version production runs on.
EMBEDDED_VERSION = (7, 0)

_embedded_warned = False


async def connect_redis(
    url: str | None,
    *,
    max_connections: int = 50,
    timeout_s: float = 5.0,
    require_reachable: bool = True,
) -> Redis:
    """Connect to Redis at ``url``, or start the embedded store when ``url`` is None.

    With a URL the client runs over a ``BlockingConnectionPool``: when all
    ``max_connections`` are busy a command waits up to ``timeout_s`` for one instead of
    failing at once. ``timeout_s`` also bounds connecting and each reply. The server is
    PINGed before returning, so a wrong URL fails at startup rather than on first use; with
    ``require_reachable=False`` an unanswered PING is only logged, and the client connects
    when Redis comes up (a worker starts while Redis is down and recovers on its own).

    Without a URL every call makes a fresh, empty in-process store: share the returned
    client (and its ``pubsub()``) within the process. It is single-process only, which
    is logged once at WARNING.

    Use :func:`is_embedded` to learn which kind a client is. Close it with ``aclose()``.

    Raises:
        StateUnavailable: the Redis at ``url`` cannot be reached.
    """
    if url is None:
        return _embedded()
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=timeout_s,
        decode_responses=False,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        health_check_interval=HEALTH_CHECK_INTERVAL_S,
        retry=Retry(
            ExponentialWithJitterBackoff(base=RETRY_BACKOFF_BASE_S, cap=RETRY_BACKOFF_CAP_S),
            RETRY_ATTEMPTS,
        ),
    )
    client = Redis.from_pool(pool)
    try:
        with state_errors("connect"):
            await client.ping()
    except StateUnavailable as exc:
        if not require_reachable:
            logger.warning("Redis does not answer yet (%s); carrying on without it", exc)
            return client
        await client.aclose()
        raise
    return client


def is_embedded(redis: Redis) -> bool:
    """True when ``redis`` is the in-process store made by ``connect_redis(None)``."""
    return isinstance(redis, fakeredis.FakeAsyncRedis)


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
# subclass), a replica after failover refusing writes, and maxmemory reached.
_UNAVAILABLE: tuple[type[Exception], ...] = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.ReadOnlyError,
    redis_errors.OutOfMemoryError,
    redis_errors.ClusterDownError,
    redis_errors.TryAgainError,
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
