"""A conversation's transcript between turns, cached in Redis.

Each turn needs the conversation so far. Rather than read the newest hundred rows from SQL every
time, a worker keeps the finished part of the transcript in the user's context cache and reads
only what was added since. Only finished messages are cached: a reply still streaming changes
until its turn ends, so the cached part stops just before the first one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from storage.keys import UserKey
from storage.models import Message
from storage.small_stores import ContextCache
from storage.transcripts import TranscriptStore

_FIELDS = ("id", "conversation_id", "role", "text", "status", "turn_id", "tool_rounds")


class HistoryCache:
    """Loads a conversation's recent messages, from the cache where it can."""

    def __init__(
        self,
        cache: ContextCache,
        transcripts: TranscriptStore,
        *,
        limit: int,
        ttl_s: float,
    ) -> None:
        self._cache = cache
        self._transcripts = transcripts
        self._limit = limit
        self._ttl_s = ttl_s

    async def recent(self, owner: UserKey, conversation_id: str) -> list[Message]:
        """The newest ``limit`` messages of the conversation, oldest first."""
        cached = await self._cache.get(owner, conversation_id)
        if cached:
            known = [_load(entry) for entry in cached]
            newer = await self._transcripts.messages_since(
                owner, conversation_id, known[-1].created_at, limit=self._limit
            )
            seen = {message.id for message in known}
            rows = known + [message for message in newer if message.id not in seen]
        else:
            rows = await self._transcripts.recent_messages(
                owner, conversation_id, limit=self._limit
            )
        rows = rows[-self._limit :]
        finished: list[Message] = []
        for message in rows:
            if message.status == "streaming":
                break
            finished.append(message)
        if finished:
            await self._cache.set(
                owner, conversation_id, [_dump(message) for message in finished], self._ttl_s
            )
        return rows


def _dump(message: Message) -> dict[str, Any]:
    entry = {name: getattr(message, name) for name in _FIELDS}
    # Kept exactly as the database returned it (SQLite: naive; PostgreSQL: aware), so it
    # compares correctly when sent back as the watermark of the next read.
    entry["created_at"] = message.created_at.isoformat()
    return entry


def _load(entry: dict[str, Any]) -> Message:
    fields: dict[str, Any] = {name: entry.get(name) for name in _FIELDS}
    return Message(
        **fields,
        tenant="",
        user_id="",
        created_at=datetime.fromisoformat(entry["created_at"]),
    )
