"""Exactly-once actions: the answer given to each Idempotency-Key, kept to answer repeats.

Parley sends every action with ``Idempotency-Key: <confirmation token>`` and, when no answer
came, retries with the same key. The app claims the key (inserts its row) in the same
transaction as the action's own writes and stores the answer in that row before committing,
so the work and the record of it land together or not at all:

- a repeat after the commit finds the row and gets the stored answer, the work not done again;
- a repeat while the first is still running waits on the row (PostgreSQL's unique index, or
  SQLite's single writer) and then finds it;
- a first attempt that failed unexpectedly rolled back its claim too, so a retry runs afresh.

A key is bound to the request it first answered (operation, arguments and user): the same key
with anything else is refused (422) rather than answered with someone else's result.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, Text, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = [
    "IDEMPOTENCY_METADATA",
    "MAX_KEY_CHARS",
    "StoredAnswer",
    "claim",
    "fingerprint",
    "prune",
    "record",
    "stored_answer",
]

MAX_KEY_CHARS = 200

# The app's own table, apart from the books (it is not part of the ERP pack's schema).
IDEMPOTENCY_METADATA = MetaData()

idempotency_keys = Table(
    "erp_idempotency_key",
    IDEMPOTENCY_METADATA,
    Column("tenant", String(64), primary_key=True),
    Column("key", String(MAX_KEY_CHARS), primary_key=True),
    Column("user_id", String(200), nullable=False),
    Column("operation", String(64), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    # Empty only inside the claiming transaction: no one else ever sees a row without them.
    Column("status_code", Integer, nullable=True),
    Column("body", Text, nullable=True),
    Column("created_at", Float, nullable=False, index=True),
)


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    """What a key answered, and the request it answered."""

    user: str
    operation: str
    fingerprint: str
    status_code: int
    body: str


def fingerprint(operation: str, arguments: dict[str, Any]) -> str:
    """A digest of the request a key stands for: the operation and its arguments."""

    def exact(value: Any) -> str:
        if isinstance(value, Decimal):
            return str(value)
        raise TypeError(f"cannot fingerprint {type(value).__name__}")

    canonical = json.dumps(
        {"operation": operation, "arguments": arguments},
        sort_keys=True,
        separators=(",", ":"),
        default=exact,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


async def claim(
    connection: AsyncConnection,
    *,
    tenant: str,
    key: str,
    user: str,
    operation: str,
    digest: str,
) -> None:
    """Insert the key's row in the connection's transaction.

    Raises:
        sqlalchemy.exc.IntegrityError: the key is already taken; roll back and read its answer.
    """
    await connection.execute(
        idempotency_keys.insert().values(
            tenant=tenant,
            key=key,
            user_id=user,
            operation=operation,
            fingerprint=digest,
            created_at=time.time(),
        )
    )


async def record(
    connection: AsyncConnection, *, tenant: str, key: str, status_code: int, body: str
) -> None:
    """Store the answer in the claimed row (the caller then commits)."""
    await connection.execute(
        update(idempotency_keys)
        .where(idempotency_keys.c.tenant == tenant, idempotency_keys.c.key == key)
        .values(status_code=status_code, body=body)
    )


async def stored_answer(
    connection: AsyncConnection, *, tenant: str, key: str
) -> StoredAnswer | None:
    """The committed answer of `key` in `tenant`, if it has one."""
    row = (
        await connection.execute(
            select(idempotency_keys).where(
                idempotency_keys.c.tenant == tenant, idempotency_keys.c.key == key
            )
        )
    ).one_or_none()
    if row is None or row.status_code is None or row.body is None:
        return None
    return StoredAnswer(
        user=row.user_id,
        operation=row.operation,
        fingerprint=row.fingerprint,
        status_code=row.status_code,
        body=row.body,
    )


async def prune(connection: AsyncConnection, *, older_than_s: float) -> int:
    """Forget answers older than `older_than_s`; how many were forgotten."""
    result = await connection.execute(
        delete(idempotency_keys).where(idempotency_keys.c.created_at < time.time() - older_than_s)
    )
    return int(result.rowcount or 0)
