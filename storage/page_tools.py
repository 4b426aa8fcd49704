"""Which page tools each of a user's open connections offers, shared by all workers.

A turn may run on one worker while the user's tabs hang on others, so a connection's page tool
registration is kept in the state store, keyed by user: a hash from connection id to the
registration (JSON), beside a sorted set of the same ids scored by expiry on Redis' clock. The
connection's worker renews the entry while the connection lives and removes it when it closes;
an entry of a worker that died lapses with its TTL and is dropped on the next read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from storage.errors import CorruptState
from storage.keys import DEFAULT_PREFIX, KeySpace, UserKey
from storage.redis_client import RedisClient, reply_list, state_errors, to_ms

_PUT_LUA = """
-- KEYS: 1 registrations hash, 2 expiry zset
-- ARGV: 1 connection id, 2 registration JSON, 3 ttl ms
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], string.format('%d', now + tonumber(ARGV[3])), ARGV[1])
-- Both keys go with the longest-lived entry.
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], string.format('%d', tonumber(last[2])))
redis.call('PEXPIREAT', KEYS[2], string.format('%d', tonumber(last[2])))
return 1
"""

_READ_LUA = """
-- KEYS: 1 registrations hash, 2 expiry zset
-- Returns the live registrations as a flat list: id, JSON, id, JSON, ...
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local stale = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', string.format('%d', now))
for _, id in ipairs(stale) do
  redis.call('HDEL', KEYS[1], id)
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', string.format('%d', now))
return redis.call('HGETALL', KEYS[1])
"""


class PageToolRegistrations:
    """The page tools of every open connection of a user, across workers."""

    def __init__(self, redis: RedisClient, *, prefix: str = DEFAULT_PREFIX) -> None:
        """
        Raises:
            ValueError: the prefix contains braces.
        """
        self._redis = redis
        self._keys = KeySpace(prefix)
        self._put_script = redis.register_script(_PUT_LUA)
        self._read_script = redis.register_script(_READ_LUA)

    async def put(
        self, user: UserKey, connection_id: str, tools: list[dict[str, Any]], ttl_s: float
    ) -> None:
        """Store (or renew) the connection's page tools for ``ttl_s`` seconds.

        Raises:
            StateUnavailable: Redis could not be reached.
        """
        keys = [self._keys.page_tools(user), self._keys.page_tools_expiry(user)]
        payload = orjson.dumps({"tools": tools}).decode()
        with state_errors("page tools put"):
            await self._put_script(keys=keys, args=[connection_id, payload, to_ms(ttl_s)])

    async def remove(self, user: UserKey, connection_id: str) -> None:
        """Forget the connection's page tools.

        Raises:
            StateUnavailable: Redis could not be reached.
        """
        with state_errors("page tools remove"):
            await self._redis.hdel(self._keys.page_tools(user), connection_id)
            await self._redis.zrem(self._keys.page_tools_expiry(user), connection_id)

    async def live(self, user: UserKey) -> Mapping[str, list[dict[str, Any]]]:
        """Connection id → its page tools, for every live connection that registered any.

        Raises:
            StateUnavailable: Redis could not be reached.
            CorruptState: an entry is not the JSON this class writes.
        """
        key = self._keys.page_tools(user)
        keys = [key, self._keys.page_tools_expiry(user)]
        with state_errors("page tools read"):
            flat = reply_list(await self._read_script(keys=keys), key)
        found: dict[str, list[dict[str, Any]]] = {}
        for raw_id, raw_value in zip(flat[::2], flat[1::2], strict=True):
            connection_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
            try:
                value = orjson.loads(raw_value)  # type: ignore[arg-type]
                tools = value["tools"]
            except (orjson.JSONDecodeError, TypeError, KeyError) as exc:
                raise CorruptState(key, f"registration of {connection_id!r}") from exc
            if not isinstance(tools, list):
                raise CorruptState(key, f"registration of {connection_id!r}: tools not a list")
            found[connection_id] = tools
        return found
