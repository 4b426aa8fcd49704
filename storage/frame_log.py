"""The per-user frame log: ordered, numbered, published, resumable.

Every frame a user's tabs must all see goes through :meth:`FrameLog.append`, which, in
one Lua script call (so atomically), numbers it with the next ``seq`` of the user's log,
adds it to the user's Redis stream and publishes it on the user's channel. Workers
subscribed to that channel forward it to their tabs; a tab that reconnects asks
:meth:`FrameLog.read_after` for what it missed.

The log has an ``epoch``: a random id made together with the log. If Redis loses the log
(a restart without persistence, a failover to a stale replica, eviction), the next call
makes a new epoch and numbering starts again at 1, so a tab that still holds the old
epoch is told it cannot resume rather than being handed reused numbers.

Memory is bounded per user: the stream is trimmed to about ``max_len`` frames and to
frames younger than about ``max_age_s`` on every append. Trimming is Redis' approximate
``~`` trimming, which only drops whole stream nodes (up to ``stream-node-max-entries``,
100 by default, or ``stream-node-max-bytes``), so up to one node more may be kept; that
is what makes trimming cheap. Idle users' keys expire after ``max(2 * max_age_s, 1 day)``.

redis-py retries a command after a broken connection, and a reply lost after Redis ran
the script would make the retry append the frames again. So each ``FrameLog`` is a
*writer* with a random id that numbers its calls, keeps at most one append per user in
flight, and the script records per user and writer the last call it ran (in a small hash
that expires a minute after the user's last append). A repeat of that call is answered
from the record without logging or publishing anything twice. Memory for this is one
hash field per worker per recently active user, whatever the append rate.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from storage.errors import CorruptState
from storage.keys import DEFAULT_PREFIX, KeySpace, UserKey
from storage.redis_client import (
    RedisClient,
    reply_int,
    reply_list,
    reply_str,
    state_errors,
    wakeup_publish_command,
)

# Every frame handed to append starts like this; the seq is spliced in after the brace.
FRAME_START = '{"type":'
_SEQ_START = '{"seq":'
# The most stream entries one read asks Redis for; resuming after a long absence reads
# the log back in pieces of this size instead of in one large reply.
READ_CHUNK = 256
# How long a writer's last append is remembered for a retried call. It must outlast
# redis-py's retries (a few socket timeouts plus backoff); a minute leaves a wide margin.
APPEND_REPLAY_WINDOW_MS = 60_000
# How many users' last given seq a writer remembers (about 100 bytes each). A user it has
# forgotten loses only the writer's own check against a log that went back; the hubs that
# heard the user's frames still check theirs (FrameLog.position's ``at_least``).
WRITER_MEMORY_USERS = 10_000
# Keys of idle users expire after twice the frame age bound, and never sooner than this.
MIN_KEY_TTL_MS = 86_400_000

_APPEND_LUA = """
-- KEYS: 1 log meta hash, 2 frames stream, 3 writers hash
-- ARGV: 1 epoch for a new log, 2 max_len, 3 max_age_ms, 4 key ttl ms, 5 writers ttl ms,
--       6 channel, 7 writer id, 8 writer's call number, 9 epoch the writer last appended
--       under ('' if none), 10 last seq it was given there, 11.. frames without seq
-- Returns {first seq, epoch}.
local previous = redis.call('HGET', KEYS[3], ARGV[7])
if previous then
  local call, first = string.match(previous, '^(%d+) (%d+)$')
  if call == ARGV[8] then
    -- This very call already ran and its reply was lost: answer the same, do nothing.
    return {tonumber(first), redis.call('HGET', KEYS[1], 'epoch')}
  end
end
local head = redis.call('HMGET', KEYS[1], 'epoch', 'seq')
if not head[1] or (head[1] == ARGV[9] and tonumber(head[2]) < tonumber(ARGV[10])) then
  -- A new log (first use, or Redis lost the old one), or a log behind a seq already given
  -- out under its epoch (a failover to a replica that missed the last writes): a fresh
  -- epoch, numbering from 1, and no stream entries left over. Never a seq given twice.
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', ARGV[1], 'seq', 0)
end
local count = #ARGV - 10
local first = redis.call('HINCRBY', KEYS[1], 'seq', count) - count + 1
local texts = {}
for i = 1, count do
  local seq = string.format('%d', first + i - 1)
  local text = '{"seq":' .. seq .. ',' .. string.sub(ARGV[10 + i], 2)
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 's', seq, 'f', text)
  texts[i] = text
end
local now = redis.call('TIME')
local oldest_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
  - tonumber(ARGV[3])
if oldest_ms > 0 then
  redis.call('XTRIM', KEYS[2], 'MINID', '~', string.format('%d', oldest_ms))
end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
redis.call('HSET', KEYS[3], ARGV[7], ARGV[8] .. ' ' .. string.format('%d', first))
redis.call('PEXPIRE', KEYS[3], ARGV[5])
redis.call('PUBLISH', ARGV[6], table.concat(texts, '\\n'))
return {first, redis.call('HGET', KEYS[1], 'epoch')}
"""
# The publish above names the command literally (a script's commands are best spelled out,
# not passed in): on a cluster the same script publishes with SPUBLISH instead, so the
# wake-up goes only to the shard that owns the user's slot (the channel carries the
# user's hash tag, like the keys).
assert _APPEND_LUA.count("'PUBLISH'") == 1

_POSITION_LUA = """
-- KEYS: 1 log meta hash, 2 frames stream
-- ARGV: 1 epoch for a new log, 2 key ttl ms, 3 epoch the caller knows ('' if none),
--       4 a seq the caller knows was given out under it
local head = redis.call('HMGET', KEYS[1], 'epoch', 'seq')
if not head[1] or (head[1] == ARGV[3] and tonumber(head[2]) < tonumber(ARGV[4])) then
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', ARGV[1], 'seq', 0)
  head = {ARGV[1], '0'}
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return head
"""

_READ_TAIL_LUA = """
-- KEYS: 1 log meta hash, 2 frames stream
-- ARGV: 1 epoch the reader holds, 2 after_seq, 3 most entries to return
-- Returns {-1} when the epoch differs (or there is no log), else {last seq, newest
-- entries}: up to ARGV[3] of them, and only as many as lie after after_seq.
local head = redis.call('HMGET', KEYS[1], 'epoch', 'seq')
if head[1] ~= ARGV[1] then
  return {-1}
end
local last = tonumber(head[2])
local wanted = last - tonumber(ARGV[2])
if wanted <= 0 then
  return {last, {}}
end
local count = math.min(wanted, tonumber(ARGV[3]))
return {last, redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', count)}
"""


@dataclass(frozen=True, slots=True)
class LoggedFrame:
    """A frame as logged: its seq and its JSON text with ``"seq"`` spliced in first."""

    seq: int
    data: str


@dataclass(frozen=True, slots=True)
class StreamPosition:
    """Where a user's log stands: its epoch and the last seq given out (0 if none yet)."""

    epoch: str
    last_seq: int


def splice_seq(seq: int, frame: str) -> str:
    """``frame`` (a JSON object text) with ``"seq": seq`` as its first member."""
    return f"{_SEQ_START}{seq},{frame[1:]}"


class FrameLog:
    """Append to, and read back, each user's ordered frame log (invariants 1 and 2)."""

    def __init__(
        self,
        redis: RedisClient,
        *,
        prefix: str = DEFAULT_PREFIX,
        max_len: int = 10_000,
        max_age_s: float = 600.0,
    ) -> None:
        """
        Args:
            redis: the client from ``connect_redis``.
            prefix: prepended to every key and channel name, so that several
                deployments (or test runs) can share one Redis.
            max_len: frames kept per user, about (``PARLEY_LOG_MAX_FRAMES``).
            max_age_s: frames older than this are trimmed, about (``PARLEY_LOG_MAX_AGE_S``).

        Raises:
            ValueError: a bound is not positive, or the prefix contains braces.
        """
        if max_len < 1:
            raise ValueError(f"max_len must be at least 1, got {max_len}")
        if max_age_s <= 0:
            raise ValueError(f"max_age_s must be positive, got {max_age_s}")
        self._redis = redis
        self._keys = KeySpace(prefix)
        self._max_len = max_len
        self._max_age_ms = max(1, round(max_age_s * 1000))
        self._key_ttl_ms = max(2 * self._max_age_ms, MIN_KEY_TTL_MS)
        self._append_script = redis.register_script(
            _APPEND_LUA.replace("'PUBLISH'", f"'{wakeup_publish_command(redis)}'")
        )
        self._position_script = redis.register_script(_POSITION_LUA)
        self._read_tail_script = redis.register_script(_READ_TAIL_LUA)
        # This log's identity as a writer, its call counter, and the per-user gate that
        # keeps one append per user in flight, which is what lets Redis recognise a
        # retried call by comparing it with the writer's last one (see module docstring).
        self._writer_id = secrets.token_hex(8)
        self._calls = itertools.count(1)
        self._in_flight = _PerUserGate()
        # The last seq this writer was given per user, so that a log found behind it is
        # renewed rather than numbered on (see the append script).
        self._given = _RecentHeads(WRITER_MEMORY_USERS)

    def channel(self, user: UserKey) -> str:
        """The pub/sub channel on which each append publishes its batch for ``user``."""
        return self._keys.log_channel(user)

    def new_call(self) -> int:
        """A call number for :meth:`append` that the caller may repeat (see there)."""
        return next(self._calls)

    async def append(
        self, user: UserKey, frames: Sequence[str], *, call: int | None = None
    ) -> list[LoggedFrame]:
        """Number, log and publish ``frames`` for ``user``, atomically and in order.

        ``frames`` are compact JSON object texts without ``seq``, each starting with
        ``{"type":`` and holding no raw newline. They get consecutive seqs, directly
        after the last seq given out, whatever else appends concurrently, and one message
        carrying all of them (joined by ``"\\n"``) goes to :meth:`channel`.

        A caller that repeats an append after ``StateUnavailable`` passes the same ``call``
        from :meth:`new_call` each time: if an earlier attempt did reach Redis, the repeat is
        answered with its seqs instead of logging the frames twice (as long as no other
        append for ``user`` from this log ran in between).

        Returns:
            The logged frames in order (empty for no frames, with nothing sent to Redis).

        Raises:
            StateUnavailable: Redis could not be reached; the frames may or may not be
                logged (repeat with the same ``call`` to log them once).
            RuntimeError: a frame is not of the required shape.
        """
        if not frames:
            return []
        for frame in frames:
            if not frame.startswith(FRAME_START) or "\n" in frame:
                raise RuntimeError(
                    f"a logged frame must be one-line JSON starting {FRAME_START!r}: {frame[:60]!r}"
                )
        async with self._in_flight.hold(user):
            return await self._append(user, frames, self.new_call() if call is None else call)

    async def _append(self, user: UserKey, frames: Sequence[str], call: int) -> list[LoggedFrame]:
        meta = self._keys.log_meta(user)
        given = self._given.get(user)
        with state_errors("frame log append"):
            reply = await self._append_script(
                keys=[meta, self._keys.log_frames(user), self._keys.log_writers(user)],
                args=[
                    _new_epoch(),
                    self._max_len,
                    self._max_age_ms,
                    self._key_ttl_ms,
                    APPEND_REPLAY_WINDOW_MS,
                    self.channel(user),
                    self._writer_id,
                    call,
                    given.epoch if given else "",
                    given.last_seq if given else 0,
                    *frames,
                ],
            )
        first_reply, epoch_reply = reply_list(reply, meta)
        first = reply_int(first_reply, meta)
        self._given.remember(
            user, StreamPosition(reply_str(epoch_reply, meta), first + len(frames) - 1)
        )
        return [
            LoggedFrame(seq, splice_seq(seq, frame))
            for seq, frame in enumerate(frames, start=first)
        ]

    async def position(
        self, user: UserKey, *, at_least: StreamPosition | None = None
    ) -> StreamPosition:
        """The user's epoch and last seq; makes the log (new epoch, seq 0) if there is none.

        ``at_least`` is a position the caller knows was reached (the newest frame it heard).
        A log under that epoch that stands before it lost writes (a failover to a replica
        that had not received them): it is made anew under a new epoch, as if it were gone,
        since numbering on from where it stands would give a seq out twice.

        Raises:
            StateUnavailable: Redis could not be reached.
        """
        meta = self._keys.log_meta(user)
        known = at_least or self._given.get(user)
        with state_errors("frame log position"):
            reply = await self._position_script(
                keys=[meta, self._keys.log_frames(user)],
                args=[
                    _new_epoch(),
                    self._key_ttl_ms,
                    known.epoch if known else "",
                    known.last_seq if known else 0,
                ],
            )
        epoch, last_seq = reply_list(reply, meta)
        return StreamPosition(reply_str(epoch, meta), reply_int(last_seq, meta))

    async def read_after(
        self, user: UserKey, epoch: str, after_seq: int, *, max_frames: int | None = None
    ) -> list[LoggedFrame] | None:
        """The frames a tab that saw ``epoch`` up to ``after_seq`` has missed, in order.

        Returns:
            ``[]`` when it missed nothing; the frames with seq > ``after_seq`` otherwise;
            None when it cannot resume and must rebuild from a snapshot: the epoch is not
            the log's (or there is no log), ``after_seq`` lies beyond the last seq or is
            negative, some of the frames it needs were trimmed, or it missed more than
            ``max_frames`` (then none of them are read).

        Raises:
            StateUnavailable: Redis could not be reached.
        """
        if after_seq < 0:
            return None
        meta, stream = self._keys.log_meta(user), self._keys.log_frames(user)
        with state_errors("frame log read"):
            # Reading from the newest frame backwards touches only what the tab missed,
            # usually a handful. The first piece comes in the same script as the head, so
            # it is consistent with it; older pieces can only lose entries to trimming
            # meanwhile, which the continuity check below notices.
            reply = reply_list(
                await self._read_tail_script(
                    keys=[meta, stream], args=[epoch, after_seq, READ_CHUNK]
                ),
                meta,
            )
            last = reply_int(reply[0], meta)
            if last < 0 or after_seq > last:
                return None
            wanted = last - after_seq
            if max_frames is not None and wanted > max_frames:
                return None
            piece = [_entry_from_script(raw, stream) for raw in reply_list(reply[1], stream)]
            newest_first = list(piece)
            asked = min(wanted, READ_CHUNK)
            while len(newest_first) < wanted and len(piece) == asked:
                asked = min(wanted - len(newest_first), READ_CHUNK)
                older = await self._redis.xrevrange(
                    stream, max=b"(" + newest_first[-1][0], min="-", count=asked
                )
                piece = [_entry_from_client(raw, stream) for raw in older or []]
                newest_first.extend(piece)
        frames = [frame for _, frame in newest_first]
        if len(frames) != wanted or any(f.seq != last - i for i, f in enumerate(frames)):
            return None
        frames.reverse()
        return frames

    @staticmethod
    def parse_published(message: bytes | str) -> list[LoggedFrame]:
        """The frames in one message received on a user's :meth:`channel`, in order.

        Raises:
            CorruptState: the message was not published by :meth:`append`.
        """
        try:
            text = message.decode() if isinstance(message, bytes) else message
        except UnicodeDecodeError as exc:
            raise CorruptState("published message", "not utf-8") from exc
        return [_logged(line, "published message") for line in text.split("\n")]


class _RecentHeads:
    """The last position seen per user, for the ``limit`` users appended for most recently."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._heads: OrderedDict[UserKey, StreamPosition] = OrderedDict()

    def get(self, user: UserKey) -> StreamPosition | None:
        return self._heads.get(user)

    def remember(self, user: UserKey, head: StreamPosition) -> None:
        self._heads[user] = head
        self._heads.move_to_end(user)
        if len(self._heads) > self._limit:
            self._heads.popitem(last=False)


class _PerUserGate:
    """One asyncio lock per user, dropped again once nobody holds or awaits it."""

    def __init__(self) -> None:
        self._locks: dict[UserKey, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, user: UserKey) -> AsyncIterator[None]:
        lock, users = self._locks.get(user, (asyncio.Lock(), 0))
        self._locks[user] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[user]
            if users == 1:
                del self._locks[user]
            else:
                self._locks[user] = (lock, users - 1)


def _new_epoch() -> str:
    return secrets.token_hex(8)


def _logged(data: str, where: str) -> LoggedFrame:
    """Read the seq back out of a logged frame's text."""
    end = data.find(",", len(_SEQ_START))
    if not data.startswith(_SEQ_START) or end < 0:
        raise CorruptState(where, f"not a logged frame: {data[:60]!r}")
    try:
        return LoggedFrame(int(data[len(_SEQ_START) : end]), data)
    except ValueError as exc:
        raise CorruptState(where, f"bad seq in logged frame: {data[:60]!r}") from exc


def _entry_from_script(raw: object, stream: str) -> tuple[bytes, LoggedFrame]:
    """One stream entry as a script returns it: ``[id, [field, value, ...]]``."""
    entry = reply_list(raw, stream)
    fields = reply_list(entry[1], stream) if len(entry) == 2 else []
    values = dict(zip(fields[::2], fields[1::2], strict=True))
    return _entry(entry[0], values.get(b"f"), stream)


def _entry_from_client(raw: tuple[object, object], stream: str) -> tuple[bytes, LoggedFrame]:
    """One stream entry as redis-py's XREVRANGE returns it: ``(id, {field: value})``."""
    entry_id, fields = raw
    values = fields if isinstance(fields, dict) else {}
    return _entry(entry_id, values.get(b"f"), stream)


def _entry(entry_id: object, text: object, stream: str) -> tuple[bytes, LoggedFrame]:
    if not isinstance(entry_id, bytes):
        raise CorruptState(stream, f"bad stream entry id {entry_id!r}")
    if text is None:
        raise CorruptState(stream, f"stream entry {entry_id!r} has no frame")
    return entry_id, _logged(reply_str(text, stream), stream)
