"""Fan-out of every user's frame stream to that user's tabs on this worker.

The Redis Stream behind ``FrameLog`` is the source of truth; pub/sub only says "something new".
A worker holds one pub/sub connection, subscribed to the channels of the users it has tabs
for. Frames are handed to tabs strictly in ``seq`` order: a frame that arrives ahead of its
predecessor (a lost or late wake-up) makes the worker read the missing ones from the stream
first. Frames this worker appends itself are offered straight away through the same ordered
path, so a tab on the appending worker does not wait for the round trip through Redis.

Redis going away is survived, not hidden. While it is unreachable, appends fail (callers turn
that into a retryable ``store_unavailable``) and ``healthy`` is False, which ``/readyz``
reports. The reader never cancels a read: it polls with a timeout, and redis-py reconnects the
pub/sub connection and subscribes it again. Every reconnect — also one redis-py manages inside
its own retries, which the reader never sees fail — makes the hub catch each local user up from
the stream, because wake-ups published meanwhile are gone. If the stream itself is gone (Redis
restarted without persistence, or failed over to a replica that lacked it), the log has a new
epoch; the user's local tabs are closed with 1012 and come back with ``resumed: false`` and a
snapshot, since no seq of the old epoch can be trusted any more. Redis can also lose one log
while the connection stays up (its keys expired under a long-idle tab, or were evicted): the
new log's seqs start again at 1, which the hub hears as a seq going back on the channel and
treats the same way once the epoch confirms it. A log that survived a failover but lost its
newest writes (the promoted replica had not received them) is behind a seq already heard; the
position check renews its epoch then, so no seq is ever given out twice under one epoch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import RedisError

from protocol import CloseCode
from server.ops import metrics
from server.socket.connection import Connection
from storage.frame_log import FrameLog, LoggedFrame, StreamPosition
from storage.keys import UserKey
from storage.redis_client import RedisClient, state_errors
from storage.redis_pubsub import WakeupSubscription

logger = logging.getLogger(__name__)

POLL_TIMEOUT_S = 1.0
RECONNECT_PAUSE_S = 0.5
RECONNECT_PAUSE_MAX_S = 5.0


@dataclass(slots=True)
class _UserStream:
    """What this worker knows of one user's stream."""

    key: UserKey
    epoch: str
    last_seq: int
    # The highest seq known to be logged under ``epoch`` that pub/sub can still bring: what
    # the stream held when it was looked at, then the newest seq heard on the channel.
    heard_seq: int = 0
    tabs: set[Connection] = field(default_factory=set)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass(frozen=True, slots=True)
class ReplayLimit:
    """The most a resuming tab is sent of what it missed; beyond it, a snapshot."""

    frames: int
    bytes: int


@dataclass(frozen=True, slots=True)
class Attachment:
    """The outcome of attaching a tab: where its stream stands and whether it resumed."""

    position: StreamPosition
    resumed: bool
    missed: list[LoggedFrame] = field(default_factory=list)


class FrameHub:
    """Delivers logged frames to local tabs, in order, exactly once each."""

    def __init__(self, redis: RedisClient, frame_log: FrameLog) -> None:
        self._redis = redis
        self._log = frame_log
        self._users: dict[UserKey, _UserStream] = {}
        self._by_channel: dict[str, UserKey] = {}
        self._pubsub: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._stopping = False
        self._resync = False  # a pub/sub connection was re-established, or a channel moved
        self.healthy = True

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        # Plain pub/sub on one Redis, sharded pub/sub on a cluster (storage.redis_pubsub).
        self._pubsub = WakeupSubscription(self._redis)
        self._pubsub.on_reconnect(self._reconnected)
        self._reader = asyncio.create_task(self._read_forever(), name="frame hub reader")

    async def stop(self) -> None:
        self._stopping = True
        if self._reader is not None:
            # The reader polls with a timeout and checks the flag; it is not cancelled
            # mid-read (a cancelled read can leave a pooled connection out of step).
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._reader, POLL_TIMEOUT_S * 3)
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()

    # -- tabs ----------------------------------------------------------------------------------

    async def attach(
        self,
        tab: Connection,
        user: UserKey,
        epoch: str | None,
        last_seq: int | None,
        *,
        max_replay: ReplayLimit | None = None,
    ) -> Attachment:
        """Register ``tab`` and find what it missed since (``epoch``, ``last_seq``).

        A tab that missed more than ``max_replay`` allows does not resume: replaying it all
        would overflow its send queue and drop it, again at every reconnect. It rebuilds from
        a snapshot instead, like a tab whose frames were trimmed.

        Live frames are held back on the tab until the caller has queued ``ready`` and then
        the missed frames with ``Connection.finish_replay``.
        """
        stream = await self._stream_for(user)
        async with stream.lock:
            tab.hold_live_frames()
            stream.tabs.add(tab)
            position = StreamPosition(epoch=stream.epoch, last_seq=stream.last_seq)
        missed: list[LoggedFrame] | None = None
        if epoch is not None and last_seq is not None:
            limit = max_replay.frames if max_replay else None
            missed = await self._log.read_after(user, epoch, last_seq, max_frames=limit)
            if missed and max_replay and sum(len(f.data) for f in missed) > max_replay.bytes:
                missed = None
        tab.epoch = position.epoch
        if missed is None:
            tab.last_seq = position.last_seq
            return Attachment(position=position, resumed=False)
        tab.last_seq = last_seq or 0
        return Attachment(position=position, resumed=True, missed=missed)

    async def detach(self, tab: Connection, user: UserKey) -> None:
        stream = self._users.get(user)
        if stream is None:
            return
        stream.tabs.discard(tab)
        if not stream.tabs:
            del self._users[user]
            channel = self._log.channel(user)
            self._by_channel.pop(channel, None)
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.unsubscribe(channel)

    def tabs_of(self, user: UserKey) -> Sequence[Connection]:
        stream = self._users.get(user)
        return tuple(stream.tabs) if stream else ()

    def all_tabs(self) -> list[Connection]:
        return [tab for stream in self._users.values() for tab in stream.tabs]

    # -- publishing ----------------------------------------------------------------------------

    def new_call(self) -> int:
        """A call number that makes repeats of one :meth:`publish` log its frames once."""
        return self._log.new_call()

    async def publish(
        self, user: UserKey, frames: Sequence[str], *, call: int | None = None
    ) -> list[LoggedFrame]:
        """Append frames to the user's stream and hand them to local tabs at once.

        Raises:
            StateUnavailable: Redis could not be reached (repeat with the same ``call``).
        """
        logged = await self._log.append(user, frames, call=call)
        stream = self._users.get(user)
        if stream is not None:
            await self._offer(stream, logged)
        return logged

    # -- internals -----------------------------------------------------------------------------

    async def _stream_for(self, user: UserKey) -> _UserStream:
        stream = self._users.get(user)
        if stream is not None:
            return stream
        channel = self._log.channel(user)
        # Subscribe before reading the position: anything appended in between then arrives
        # both ways, and the seq check drops the copy.
        with state_errors("frame hub subscribe"):
            await self._pubsub.subscribe(channel)
        position = await self._log.position(user)
        stream = self._users.get(user)  # another tab of the user may have won the race
        if stream is None:
            stream = _UserStream(
                key=user,
                epoch=position.epoch,
                last_seq=position.last_seq,
                heard_seq=position.last_seq,
            )
            self._users[user] = stream
            self._by_channel[channel] = user
        return stream

    async def _offer_heard(self, stream: _UserStream, frames: Sequence[LoggedFrame]) -> None:
        """Frames heard on the user's channel.

        On one channel seqs only go up, so a frame at or below one heard before (or below
        what the stream held when it was looked at) is either a wake-up that raced the
        first look at the stream or the first of a log made anew: Redis lost the log
        without this connection noticing (its keys expired or were evicted). The epoch
        tells the two apart; a duplicate seq alone would swallow the new log's frames.
        """
        if frames and frames[0].seq <= stream.heard_seq:
            async with stream.lock:
                position = await self._log.position(stream.key, at_least=_heard(stream))
                if position.epoch != stream.epoch:
                    await self._lost_stream(stream)
                    return
        if frames:
            stream.heard_seq = max(stream.heard_seq, frames[-1].seq)
        await self._offer(stream, frames)

    async def _offer(self, stream: _UserStream, frames: Sequence[LoggedFrame]) -> None:
        async with stream.lock:
            for frame in frames:
                if frame.seq <= stream.last_seq:
                    continue
                if frame.seq > stream.last_seq + 1:
                    await self._backfill(stream)
                    if frame.seq <= stream.last_seq:
                        continue
                self._hand_out(stream, frame)

    async def _backfill(self, stream: _UserStream) -> None:
        missed = await self._log.read_after(stream.key, stream.epoch, stream.last_seq)
        if missed is None:
            await self._lost_stream(stream)
            return
        for frame in missed:
            self._hand_out(stream, frame)

    def _hand_out(self, stream: _UserStream, frame: LoggedFrame) -> None:
        stream.last_seq = frame.seq
        metrics.frames_sent(frame.data, len(stream.tabs))
        for tab in stream.tabs:
            tab.deliver_logged(frame.seq, frame.data)

    async def _lost_stream(self, stream: _UserStream) -> None:
        """The stream was trimmed past us or Redis lost it: tabs must rebuild."""
        logger.warning(
            "frame stream of %s lost continuity; asking its tabs to reconnect", stream.key
        )
        position = await self._log.position(stream.key)
        stream.epoch, stream.last_seq = position.epoch, position.last_seq
        stream.heard_seq = position.last_seq
        for tab in list(stream.tabs):
            tab.close(CloseCode.SERVICE_RESTART, "stream reset: reconnect to resync")

    async def _read_forever(self) -> None:
        pause = RECONNECT_PAUSE_S
        while not self._stopping:
            try:
                if not self._by_channel:
                    await asyncio.sleep(0.05)
                    continue
                message = await self._pubsub.get_message(timeout=POLL_TIMEOUT_S)
                # Catch up before handing out what arrived: after a reconnect it may belong
                # to a log made anew, which only the epoch check tells.
                if self._resync or not self.healthy:
                    await self._recover()
                pause = RECONNECT_PAUSE_S
                if message is None or message.get("type") != "message":
                    continue
                channel = _text(message["channel"])
                user = self._by_channel.get(channel)
                stream = self._users.get(user) if user else None
                if stream is not None:
                    await self._offer_heard(stream, FrameLog.parse_published(message["data"]))
            except (RedisError, OSError) as exc:
                if self.healthy:
                    logger.error("frame hub lost Redis (%s); retrying", type(exc).__name__)
                self.healthy = False
                metrics.redis_error("fanout")
                await asyncio.sleep(pause)
                pause = min(pause * 2, RECONNECT_PAUSE_MAX_S)
                with contextlib.suppress(RedisError, OSError):
                    await self._resubscribe()
            except Exception:
                logger.exception("frame hub reader failed; continuing")
                await asyncio.sleep(pause)

    async def _resubscribe(self) -> None:
        channels = list(self._by_channel)
        if channels:
            await self._pubsub.subscribe(*channels)

    def _reconnected(self, _connection: Any) -> None:
        self._resync = True

    async def _recover(self) -> None:
        """Back from a Redis outage: catch every local user up from the stream."""
        self._resync = False
        for stream in list(self._users.values()):
            async with stream.lock:
                # A failover may have left the log behind what was heard: then it is renewed.
                position = await self._log.position(stream.key, at_least=_heard(stream))
                if position.epoch != stream.epoch:
                    await self._lost_stream(stream)
                else:
                    await self._backfill(stream)
        self.healthy = True
        logger.info("frame hub reconnected to Redis")


def _heard(stream: _UserStream) -> StreamPosition:
    """The newest position known to have been logged under the stream's epoch."""
    return StreamPosition(stream.epoch, max(stream.heard_seq, stream.last_seq))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
