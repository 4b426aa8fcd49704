"""The per-user frame log of the embedded store, kept in this process's memory.

Without ``REDIS_URL`` Parley runs one worker and its state lives in the process. The other
state stays on the embedded fakeredis, but the frame log is written for every streamed
``response_delta``, and fakeredis runs each Lua script by compiling it and emulating every
``redis.call`` in Python: about a millisecond of CPU per append, several times what the real
Redis costs the worker (docs/benchmarks.md has the figures). This log keeps the same contract
as :class:`~storage.frame_log.FrameLog` (invariants 1 and 2) with plain Python structures:

* ``append`` numbers frames with the next seqs of the user's log and keeps them; it has no
  ``await`` inside, so on one event loop it is atomic, as the Lua script is in Redis. Nothing
  is published: the only worker is this one, and the hub hands its own appends out directly.
  A repeated ``call`` cannot happen (no reply is lost between a process and itself).
* the log has an ``epoch`` made with it; a restart loses the log (as it lost the fakeredis
  one), so a tab that comes back presents an unknown epoch and rebuilds from a snapshot.
* memory is bounded as in Redis: frames beyond ``max_len`` or older than ``max_age_s`` are
  dropped on every append, and the log of a user idle for ``max(2 * max_age_s, 1 day)`` is
  dropped whole.
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from storage.frame_log import (
    FRAME_START,
    MIN_KEY_TTL_MS,
    FrameLog,
    LoggedFrame,
    StreamPosition,
    splice_seq,
)
from storage.keys import DEFAULT_PREFIX, KeySpace, UserKey


@dataclass(slots=True)
class _UserLog:
    epoch: str
    seq: int = 0
    # (monotonic time of the append, frame), oldest first.
    frames: deque[tuple[float, LoggedFrame]] = field(default_factory=deque)
    used: float = 0.0  # monotonic time of the last append or position


class MemoryFrameLog:
    """Append to, and read back, each user's ordered frame log, in this process."""

    def __init__(
        self,
        *,
        prefix: str = DEFAULT_PREFIX,
        max_len: int = 10_000,
        max_age_s: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """
        Args:
            prefix: names the channels, as :class:`FrameLog` does (nothing is published).
            max_len: frames kept per user (``PARLEY_LOG_MAX_FRAMES``).
            max_age_s: frames older than this are dropped (``PARLEY_LOG_MAX_AGE_S``).
            clock: seconds on a clock that only goes forward (tests pass their own).

        Raises:
            ValueError: a bound is not positive.
        """
        if max_len < 1:
            raise ValueError(f"max_len must be at least 1, got {max_len}")
        if max_age_s <= 0:
            raise ValueError(f"max_age_s must be positive, got {max_age_s}")
        self._keys = KeySpace(prefix)
        self._max_len = max_len
        self._max_age_s = max_age_s
        self._idle_s = max(2 * max_age_s, MIN_KEY_TTL_MS / 1000)
        # Least recently used first, so the logs of idle users are found at the front.
        self._logs: OrderedDict[UserKey, _UserLog] = OrderedDict()
        self._calls = itertools.count(1)
        self._clock = clock

    def channel(self, user: UserKey) -> str:
        """The channel :class:`FrameLog` would publish on (this log publishes nothing)."""
        return self._keys.log_channel(user)

    def new_call(self) -> int:
        """A call number, accepted for the same signature as :class:`FrameLog`."""
        return next(self._calls)

    async def append(
        self, user: UserKey, frames: Sequence[str], *, call: int | None = None
    ) -> list[LoggedFrame]:
        """Number and keep ``frames`` for ``user``, in order, after the last seq given out.

        Returns:
            The logged frames in order (empty for no frames).

        Raises:
            RuntimeError: a frame is not one-line JSON starting ``{"type":``.
        """
        if not frames:
            return []
        for frame in frames:
            if not frame.startswith(FRAME_START) or "\n" in frame:
                raise RuntimeError(
                    f"a logged frame must be one-line JSON starting {FRAME_START!r}: {frame[:60]!r}"
                )
        now = self._clock()
        log = self._touch(user, now)
        first = log.seq + 1
        logged = [
            LoggedFrame(seq, splice_seq(seq, frame))
            for seq, frame in enumerate(frames, start=first)
        ]
        log.seq += len(logged)
        kept = log.frames
        kept.extend((now, frame) for frame in logged)
        while len(kept) > self._max_len:
            kept.popleft()
        oldest = now - self._max_age_s
        while kept and kept[0][0] < oldest:
            kept.popleft()
        return logged

    async def position(
        self, user: UserKey, *, at_least: StreamPosition | None = None
    ) -> StreamPosition:
        """The user's epoch and last seq; makes the log (new epoch, seq 0) if there is none.

        ``at_least`` is accepted for :class:`FrameLog`'s signature: that log can fall behind
        a seq it gave out (a failover to a lagging replica); one in this process's memory
        cannot, and loses everything at once when the process goes.
        """
        log = self._touch(user, self._clock())
        return StreamPosition(log.epoch, log.seq)

    async def read_after(
        self, user: UserKey, epoch: str, after_seq: int, *, max_frames: int | None = None
    ) -> list[LoggedFrame] | None:
        """The frames a tab that saw ``epoch`` up to ``after_seq`` has missed, in order.

        Returns:
            As :meth:`FrameLog.read_after`: ``[]`` when it missed nothing, the frames after
            ``after_seq``, or None when it cannot resume (another or no epoch, ``after_seq``
            beyond the last seq or negative, frames it needs dropped, more than
            ``max_frames`` missed).
        """
        log = self._logs.get(user)
        if after_seq < 0 or log is None or log.epoch != epoch or after_seq > log.seq:
            return None
        wanted = log.seq - after_seq
        if max_frames is not None and wanted > max_frames:
            return None
        kept = log.frames
        if wanted > len(kept):
            return None
        return [frame for _, frame in itertools.islice(kept, len(kept) - wanted, None)]

    parse_published = staticmethod(FrameLog.parse_published)

    def _touch(self, user: UserKey, now: float) -> _UserLog:
        """The user's log, made if there is none, marked as used; idle logs are dropped."""
        logs = self._logs
        while logs:
            idle_user, idle_log = next(iter(logs.items()))
            if idle_log.used > now - self._idle_s:
                break
            del logs[idle_user]
        log = logs.get(user)
        if log is None:
            log = logs[user] = _UserLog(epoch=secrets.token_hex(8))
        else:
            logs.move_to_end(user)
        log.used = now
        return log


# What the hub, the snapshots and the sweeper take: the Redis log or this one.
AnyFrameLog = FrameLog | MemoryFrameLog
