"""Small Redis-backed stores: context cache, presence, rate counters, control.

Each is bounded: every key has a TTL, the context cache also a byte limit, presence sets
drop stale entries on every call. Times that several workers must agree on (presence
expiry, rate windows) come from Redis' clock, not the workers'.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from storage import control_messages
from storage.control_messages import ControlMessage
from storage.errors import CorruptState
from storage.keys import DEFAULT_PREFIX, KeySpace, UserKey
from storage.redis_client import (
    RedisClient,
    is_cluster,
    reply_int,
    reply_list,
    state_errors,
    to_ms,
)

logger = logging.getLogger(__name__)

# -- context cache -------------------------------------------------------------------


class ContextCache:
    """The chat-message window last sent to the model for a conversation, cached."""

    def __init__(
        self, redis: RedisClient, *, prefix: str = DEFAULT_PREFIX, max_bytes: int = 256 * 1024
    ) -> None:
        """
        Args:
            max_bytes: windows larger than this once encoded are not cached.

        Raises:
            ValueError: the prefix contains braces.
        """
        self._redis = redis
        self._keys = KeySpace(prefix)
        self._max_bytes = max_bytes

    async def get(self, user: UserKey, conversation_id: str) -> list[dict[str, Any]] | None:
        """The cached messages, or None on a miss (an unreadable entry counts as one).

        Raises:
            StateUnavailable: Redis could not be reached.
        """
        with state_errors("context cache get"):
            raw = await self._redis.get(self._keys.context(user, conversation_id))
        if raw is None:
            return None
        try:
            messages = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            return None
        return messages

    async def set(
        self,
        user: UserKey,
        conversation_id: str,
        messages: Sequence[Mapping[str, Any]],
        ttl_s: float,
    ) -> bool:
        """Cache ``messages`` for ``ttl_s`` seconds.

        Returns:
            False when they exceed ``max_bytes`` encoded; then nothing is cached and any
            older entry is dropped, since it no longer matches the conversation.

        Raises:
            StateUnavailable: Redis could not be reached.
            TypeError: a message holds something orjson cannot encode.
        """
        key = self._keys.context(user, conversation_id)
        encoded = orjson.dumps(list(messages))
        with state_errors("context cache set"):
            if len(encoded) > self._max_bytes:
                await self._redis.delete(key)
                return False
            await self._redis.set(key, encoded, px=to_ms(ttl_s))
        return True

    async def invalidate(self, user: UserKey, conversation_id: str) -> None:
        """Drop the cached window (the conversation changed).

        Raises:
            StateUnavailable: Redis could not be reached.
        """
        with state_errors("context cache invalidate"):
            await self._redis.delete(self._keys.context(user, conversation_id))


# -- presence ------------------------------------------------------------------------

# Scores are expiry times in ms on Redis' clock. Entries at or before now are stale and
# dropped first; the key itself expires with its longest-lived entry.
_PRESENCE_PRUNE = """
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now))
"""
_TOUCH_LUA = (
    """
-- KEYS: 1 presence zset
-- ARGV: 1 connection id, 2 ttl ms
"""
    + _PRESENCE_PRUNE
    + """
redis.call('ZADD', KEYS[1], string.format('%d', now + tonumber(ARGV[2])), ARGV[1])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], string.format('%d', tonumber(last[2])))
return redis.call('ZCARD', KEYS[1])
"""
)
_COUNT_LUA = (
    """
-- KEYS: 1 presence zset
"""
    + _PRESENCE_PRUNE
    + """
return redis.call('ZCARD', KEYS[1])
"""
)


class Presence:
    """Which of a user's connections (tabs) are live, across all workers."""

    def __init__(self, redis: RedisClient, *, prefix: str = DEFAULT_PREFIX) -> None:
        """
        Raises:
            ValueError: the prefix contains braces.
        """
        self._redis = redis
        self._keys = KeySpace(prefix)
        self._touch_script = redis.register_script(_TOUCH_LUA)
        self._count_script = redis.register_script(_COUNT_LUA)

    async def touch(self, user: UserKey, connection_id: str, ttl_s: float) -> int:
        """Mark the connection live for ``ttl_s`` more seconds.

        Returns:
            How many of the user's connections are live now, this one included.

        Raises:
            StateUnavailable: Redis could not be reached.
        """
        key = self._keys.presence(user)
        with state_errors("presence touch"):
            live = await self._touch_script(keys=[key], args=[connection_id, to_ms(ttl_s)])
        return reply_int(live, key)

    async def leave(self, user: UserKey, connection_id: str) -> None:
        """Mark the connection gone.

        Raises:
            StateUnavailable: Redis could not be reached.
        """
        with state_errors("presence leave"):
            await self._redis.zrem(self._keys.presence(user), connection_id)

    async def count(self, user: UserKey) -> int:
        """How many of the user's connections are live.

        Raises:
            StateUnavailable: Redis could not be reached.
        """
        key = self._keys.presence(user)
        with state_errors("presence count"):
            return reply_int(await self._count_script(keys=[key]), key)


# -- rate counters -------------------------------------------------------------------

_HIT_LUA = """
-- KEYS: 1 counter
-- ARGV: 1 window ms
-- Returns {hits in this window, ms until it ends}.
local hits = redis.call('INCR', KEYS[1])
local left = redis.call('PTTL', KEYS[1])
if left < 0 then
  -- The first hit opens the window (or the counter somehow lost its TTL).
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  left = tonumber(ARGV[1])
end
return {hits, left}
"""


class WindowCounter:
    """Fixed-window rate counters, shared by all workers.

    A window opens with the first hit and lasts ``window_s``; hits past the limit are
    refused until it ends. Refused hits count too, so a client that keeps hammering
    stays refused for the rest of the window. Fixed windows may let up to twice the
    limit through around a window boundary; for flood protection that is acceptable
    and costs one key and one round trip per hit.
    """

    def __init__(self, redis: RedisClient, *, prefix: str = DEFAULT_PREFIX) -> None:
        """
        Raises:
            ValueError: the prefix contains braces.
        """
        self._redis = redis
        self._keys = KeySpace(prefix)
        self._hit_script = redis.register_script(_HIT_LUA)

    async def hit(self, key_parts: str, limit: int, window_s: float) -> tuple[bool, int, float]:
        """Count one hit on the counter named ``key_parts`` (e.g. ``"msg:<tenant>:<user>"``).

        Returns:
            ``(allowed, hits in the current window, retry_after seconds)``; retry_after
            is 0.0 when allowed, else the time until the window ends.

        Raises:
            StateUnavailable: Redis could not be reached.
        """
        key = self._keys.rate(key_parts)
        with state_errors("rate counter hit"):
            reply = reply_list(await self._hit_script(keys=[key], args=[to_ms(window_s)]), key)
        hits, left_ms = reply_int(reply[0], key), reply_int(reply[1], key)
        if hits <= limit:
            return True, hits, 0.0
        return False, hits, left_ms / 1000


# -- control channel -----------------------------------------------------------------


class ControlChannel:
    """The global channel workers use to tell each other things (e.g. cancel a turn).

    Publishing and reading messages is here (``storage.control_messages`` has their form);
    subscribing is the server's, through ``storage.redis_pubsub.WakeupSubscription``. On a
    cluster the channel is a sharded one, like the users' channels: its messages (cancel,
    a decided confirmation, start the next message) are rare, so one shard carries them
    without becoming a hot spot, and no publish is copied to every node.
    """

    def __init__(self, redis: RedisClient, *, prefix: str = DEFAULT_PREFIX) -> None:
        """
        Raises:
            ValueError: the prefix contains braces.
        """
        self._redis = redis
        self._channel = KeySpace(prefix).control_channel()
        self._sharded = is_cluster(redis)

    @property
    def channel(self) -> str:
        """The channel name to subscribe to."""
        return self._channel

    async def publish(self, message: ControlMessage) -> int:
        """Send ``message`` to every subscribed worker.

        Returns:
            How many subscribers received it (on this node).

        Raises:
            StateUnavailable: Redis could not be reached.
        """
        payload = control_messages.encode(message)
        with state_errors("control publish"):
            if self._sharded:
                return int(await self._redis.spublish(self._channel, payload))
            return int(await self._redis.publish(self._channel, payload))

    def read(self, data: bytes | str) -> ControlMessage | None:
        """The message a subscriber received as ``data``; None, after a warning naming what was
        wrong, for data that is no control message (a bug or an incompatible worker sent it:
        acting on a guess could cancel or wake the wrong thing)."""
        try:
            return control_messages.decode(data, channel=self._channel)
        except CorruptState as exc:
            logger.warning("dropped a control message on %s: %s", self._channel, exc.reason)
            return None
