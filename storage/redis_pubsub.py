"""Subscribing to wake-up channels, the same way on one Redis and on a cluster.

A worker listens on two kinds of channel: each connected user's log channel (the frame log
publishes every append there) and the control channel. :class:`WakeupSubscription` is that
listener. On one Redis (and the embedded store, and Sentinel's primary) it is redis-py's
plain pub/sub: ``SUBSCRIBE`` and ``PUBLISH``. On a cluster it is *sharded* pub/sub
(``SSUBSCRIBE``, Redis 7): a publish reaches only the shard that owns the channel's slot
instead of being copied to every node over the cluster bus, so fan-out grows with the
cluster instead of with every node's share of all traffic. Every channel carries the hash
tag of what it is about (a user's channel the user's), so it lives beside the keys its
publisher's script touches.

redis-py's ``ClusterPubSub`` keeps one connection per node that owns one of our channels and
moves a channel to its new owner when a slot migrates or a replica is promoted. Messages
published while a channel was moving, or while a connection was down, are lost: wake-ups
are only hints, and the log is the truth. So the subscription tells its owner when it may
have missed some — a connection came back, or a channel now lives on another node — through
the callback given to :meth:`WakeupSubscription.on_reconnect`, and the owner catches up from
the log by seq. A slot that moves by resharding is followed here: its old node unsubscribes us
from its channels, and the subscription subscribes them again on the new owner.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from storage.redis_client import RedisClient, is_cluster

# The message types a subscription hands on: plain and sharded pub/sub data messages.
_DATA_TYPES = frozenset({"message", "smessage"})
# redis-py reads a cluster subscription's node connections one after another, splitting the
# wait among them: a message that reaches one node while the reader waits on another waits
# out that node's share. With subscriptions on several nodes, a poll therefore waits at most
# this long in all, which bounds that extra delay; an idle worker pays for it with about
# 1 / SHARDED_POLL_S short polls a second.
SHARDED_POLL_S = 0.01


class WakeupSubscription:
    """Channels this worker listens to, over plain or sharded pub/sub.

    The surface is the part of redis-py's ``PubSub`` a listener needs: subscribe,
    unsubscribe, poll with a timeout, close. A data message comes back as a dict with
    ``type`` ``"message"``, ``channel`` and ``data`` (bytes), on a cluster too; subscribe
    confirmations are never handed on.
    """

    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis
        self._sharded = is_cluster(redis)
        # On a cluster the subscribe confirmations are read here, not dropped by redis-py: a
        # SUNSUBSCRIBE nobody asked for is how a node says a channel's slot moved away.
        self._pubsub: Any = redis.pubsub(ignore_subscribe_messages=not self._sharded)
        self._wanted: set[bytes] = set()  # sharded: the channels subscribed to, encoded
        self._watched: weakref.WeakSet[Any] = weakref.WeakSet()
        self._homes: dict[bytes, str] = {}  # sharded: channel -> node it was last read on
        self._on_reconnect: Callable[[Any], None] | None = None

    def on_reconnect(self, callback: Callable[[Any], None]) -> None:
        """Call ``callback`` (with the connection, or None) whenever messages may have been
        missed: a connection was re-established and subscribed again, or a channel moved
        to another node. It runs inside redis-py's reconnect, so it should only take note
        (set a flag) and leave the catching up to the reader."""
        self._on_reconnect = callback
        self._watch()

    async def subscribe(self, *channels: str) -> None:
        """Listen to ``channels`` (again, after an outage: subscribing twice is harmless).

        Raises:
            redis.exceptions.RedisError: Redis could not be reached (as for every method here).
        """
        if self._sharded:
            self._wanted.update(channel.encode() for channel in channels)
            await self._pubsub.ssubscribe(*channels)
        else:
            await self._pubsub.subscribe(*channels)
        self._watch()

    async def unsubscribe(self, *channels: str) -> None:
        """Stop listening to ``channels``."""
        if self._sharded:
            self._wanted.difference_update(channel.encode() for channel in channels)
            await self._pubsub.sunsubscribe(*channels)
        else:
            await self._pubsub.unsubscribe(*channels)

    async def get_message(self, timeout: float) -> dict[str, Any] | None:  # noqa: ASYNC109
        """The next data message, or None when none came within ``timeout`` seconds (at most
        ``SHARDED_POLL_S`` on a cluster whose subscriptions span several nodes).

        The wait is redis-py's own read timeout: the read is not to be cancelled from outside,
        since a cancelled read can leave a connection out of step with its replies; only a
        reader that closes the subscription right after (a stopping worker's) may."""
        if self._sharded:
            if len(self._pubsub.node_pubsub_mapping) > 1:
                timeout = min(timeout, SHARDED_POLL_S)
            message = await self._pubsub.get_sharded_message(
                ignore_subscribe_messages=False, timeout=timeout
            )
            if message is not None and message.get("type") == "sunsubscribe":
                channel = message["channel"]
                if channel in self._wanted:
                    await self._follow_moved(channel)
                return None
        else:
            message = await self._pubsub.get_message(
                ignore_subscribe_messages=True, timeout=timeout
            )
        self._watch()
        if message is None or message.get("type") not in _DATA_TYPES:
            return None
        return {"type": "message", "channel": message["channel"], "data": message["data"]}

    async def aclose(self) -> None:
        """Close every connection of the subscription."""
        await self._pubsub.aclose()

    # -- noticing reconnects -------------------------------------------------------------

    def _watch(self) -> None:
        """Follow new connections, and notice channels that moved to another node."""
        if self._sharded:
            connections = []
            homes: dict[bytes, str] = {}
            for node, pubsub in list(self._pubsub.node_pubsub_mapping.items()):
                connections.append(pubsub.connection)
                for channel in pubsub.shard_channels:
                    homes[channel] = node
            moved = any(self._homes.get(channel, node) != node for channel, node in homes.items())
            self._homes = homes
            if moved:
                self._missed(None)
        else:
            connections = [self._pubsub.connection]
        for connection in connections:
            if connection is not None and connection not in self._watched:
                # Kept as a weak method by redis-py; called after each reconnect, once the
                # connection has subscribed its channels again.
                connection.register_connect_callback(self._missed)
                self._watched.add(connection)

    async def _follow_moved(self, channel: bytes) -> None:
        """Subscribe again on the node that owns ``channel``'s slot now.

        A node unsubscribes its clients from the shard channels of a slot it gives away. The
        client learns the new owner from a fresh slot map (this is rare: resharding), then
        redis-py's ``ssubscribe`` moves the channel there; what was published in between is
        read back from the log by the owner of :meth:`on_reconnect`'s callback.
        """
        cluster: Any = self._redis
        await cluster.nodes_manager.initialize()
        await self._pubsub.ssubscribe(channel)
        self._watch()
        self._missed(None)

    def _missed(self, connection: Any) -> None:
        if self._on_reconnect is not None:
            self._on_reconnect(connection)
