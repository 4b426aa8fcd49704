"""Messages waiting for a conversation's running turn to end (double-texting policy ``queue``).

A short Redis list per conversation. Whoever holds the conversation's turn slot pops from it,
so a queued message runs on whichever worker frees or claims the slot first.
"""

from __future__ import annotations

from redis.asyncio import Redis

from storage.keys import DEFAULT_PREFIX, KeySpace, UserKey
from storage.redis_client import state_errors

QUEUE_TTL_S = 3600


class TurnQueue:
    """Pending turn requests per conversation, as opaque JSON texts, bounded in length."""

    def __init__(self, redis: Redis, *, prefix: str = DEFAULT_PREFIX) -> None:
        self._redis = redis
        self._keys = KeySpace(prefix)

    def _key(self, user: UserKey, conversation_id: str) -> str:
        return self._keys.turn_queue(user, conversation_id)

    async def push(self, user: UserKey, conversation_id: str, entry: str, *, limit: int) -> bool:
        """Append ``entry``; False (and nothing stored) when ``limit`` entries already wait.

        Raises:
            StateUnavailable: Redis could not be reached (as for every method here).
        """
        key = self._key(user, conversation_id)
        with state_errors("turn queue push"):
            length = await self._redis.rpush(key, entry)
            if length > limit:
                await self._redis.rpop(key)
                return False
            await self._redis.expire(key, QUEUE_TTL_S)
        return True

    async def pop(self, user: UserKey, conversation_id: str) -> str | None:
        with state_errors("turn queue pop"):
            value = await self._redis.lpop(self._key(user, conversation_id))
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)

    async def waiting(self, user: UserKey, conversation_id: str) -> int:
        with state_errors("turn queue length"):
            return int(await self._redis.llen(self._key(user, conversation_id)))

    async def clear(self, user: UserKey, conversation_id: str) -> None:
        with state_errors("turn queue clear"):
            await self._redis.delete(self._key(user, conversation_id))
