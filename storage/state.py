"""The Redis state layer in one import: what the server needs from Redis.

The implementation is split by concern:

* ``storage.frame_log`` — the per-user ordered frame log (append, position, resume),
* ``storage.leases`` — turn slots and leases, lapsed-turn sweeping, partial text,
* ``storage.small_stores`` — context cache, presence, rate counters,
  the control channel,
* ``storage.keys`` — every key and channel name,
* ``storage.redis_client`` — connecting (one Redis, Sentinel, Cluster or the embedded store),
* ``storage.redis_pubsub`` — listening to channels (plain or sharded pub/sub).

Every class takes the client from :func:`connect_redis` and a key ``prefix``.
"""

from __future__ import annotations

from storage.frame_log import FrameLog, LoggedFrame, StreamPosition
from storage.keys import KeySpace, UserKey
from storage.leases import TurnClaim, TurnLeases
from storage.redis_client import connect_redis, is_embedded
from storage.small_stores import (
    ContextCache,
    ControlChannel,
    Presence,
    WindowCounter,
)

__all__ = [
    "ContextCache",
    "ControlChannel",
    "FrameLog",
    "KeySpace",
    "LoggedFrame",
    "Presence",
    "StreamPosition",
    "TurnClaim",
    "TurnLeases",
    "UserKey",
    "WindowCounter",
    "connect_redis",
    "is_embedded",
]
