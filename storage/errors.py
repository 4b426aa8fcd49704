"""Errors raised by the storage package.

Every error the storage layer raises on purpose derives from one root::

    StorageError
    ├── StateError            the Redis state layer (frame log, leases, small stores)
    │   ├── StateUnavailable  Redis cannot be reached or cannot take writes right now
    │   └── CorruptState      Redis holds data this code did not write in this shape
    ├── NotFound              a record the caller named does not exist for this owner
    └── Conflict              a write lost against a concurrent or earlier one

Third-party errors (redis-py's ``ConnectionError``, ``TimeoutError``, ...) are translated
into these at the storage boundary with ``raise ... from exc``, so callers never import
redis or SQLAlchemy just to catch a failure. Programming mistakes (a malformed argument)
raise ``RuntimeError`` instead: they are bugs, not states of the world.
"""

from __future__ import annotations


class StorageError(Exception):
    """Root of every error the storage package raises on purpose.

    The message is a lowercase fragment naming the thing concerned, e.g.
    ``conversation 'c1'``.
    """


class StateError(StorageError):
    """Something went wrong in the Redis state layer."""


class StateUnavailable(StateError):
    """Redis is unreachable, timed out, is loading, read-only or out of memory.

    Attributes:
        operation: what the storage layer was doing, e.g. ``"frame log append"``.
        reason: the underlying error's text.

    Whether a write that raised this took effect is unknown; every write in the
    state layer is safe to repeat (see the module docstrings), so the caller may
    simply retry later.
    """

    def __init__(self, operation: str, reason: str) -> None:
        super().__init__(f"state store unavailable during {operation}: {reason}")
        self.operation = operation
        self.reason = reason


class CorruptState(StateError):
    """A value read from Redis does not have the shape this layer writes.

    Attributes:
        key: the key or channel the value came from (empty when unknown).
        reason: what was wrong with it.
    """

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"unexpected data in '{key}': {reason}")
        self.key = key
        self.reason = reason


class NotFound(StorageError):
    """A record the caller named does not exist (for this owner)."""


class Conflict(StorageError):
    """A write could not be applied because a concurrent or earlier write won."""
