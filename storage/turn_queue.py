"""Messages waiting for a conversation's running turn to end (double-texting policy ``queue``).

A short Redis list per conversation. Whoever holds the conversation's turn slot pops from it,
so a queued message runs on whichever worker frees or claims the slot first.

Every conversation with messages waiting is also named in one global index, scored by when it
was last looked at. Normally the turn that ends starts the next message at once; the index is
for when that did not happen (every worker shut down while messages waited, or Redis failed at
the wrong moment): sweepers find conversations that waited too long and start them.
"""

from __future__ import annotations

import time

from storage.keys import DEFAULT_PREFIX, KeySpace, UserKey
from storage.redis_client import RedisClient, reply_str, state_errors

QUEUE_TTL_S = 3600


class TurnQueue:
    """Pending turn requests per conversation, as opaque JSON texts, bounded in length."""

    def __init__(self, redis: RedisClient, *, prefix: str = DEFAULT_PREFIX) -> None:
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
            member = self._keys.turn_queue_member(user, conversation_id)
            await self._redis.zadd(self._keys.turn_queues_waiting(), {member: time.time()})
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
            member = self._keys.turn_queue_member(user, conversation_id)
            await self._redis.zrem(self._keys.turn_queues_waiting(), member)

    async def stalled(self, *, older_than_s: float, limit: int = 100) -> list[tuple[UserKey, str]]:
        """Up to ``limit`` conversations whose queue nobody looked at for ``older_than_s``.

        Each is marked as looked at now, so one that stays busy (a long turn runs) comes back
        only after another ``older_than_s``. Conversations whose queue is empty leave the
        index. Two sweepers may both get a conversation: the turn slot lets one of them run it.

        Raises:
            StateUnavailable: Redis could not be reached.
        """
        index = self._keys.turn_queues_waiting()
        now = time.time()
        found: list[tuple[UserKey, str]] = []
        with state_errors("stalled turn queues"):
            due = await self._redis.zrangebyscore(index, "-inf", now - older_than_s, 0, limit)
            for raw in due:
                member = reply_str(raw, index)
                try:
                    user, conversation_id = self._keys.parse_turn_queue_member(member)
                except ValueError:
                    await self._redis.zrem(index, member)  # not ours: drop it
                    continue
                if not await self._redis.llen(self._key(user, conversation_id)):
                    await self._redis.zrem(index, member)
                    continue
                await self._redis.zadd(index, {member: now}, xx=True)
                found.append((user, conversation_id))
        return found
