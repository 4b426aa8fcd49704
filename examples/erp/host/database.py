"""The ERP's own database: the engine, transactions that behave on SQLite, and first-start setup.

SQLite through Python's driver starts a transaction only at the first write and does not
support savepoints reliably; the app needs both, because an action runs inside one transaction
together with the record of its Idempotency-Key, and the pack's tools commit their own work
(which, inside that transaction, only releases a savepoint). So on SQLite the app turns the
driver's own transaction handling off and emits ``BEGIN`` itself — ``BEGIN IMMEDIATE`` for
actions, which takes the write lock at once instead of failing halfway when another writer
holds it. PostgreSQL needs none of this.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from examples.erp.companies import Today
from examples.erp.host.idempotency import IDEMPOTENCY_METADATA
from examples.erp.pack import prepare_database

__all__ = ["WRITE_OPTION", "create_engine", "prepare"]

# Execution option marking a connection that will write: on SQLite it begins immediately.
WRITE_OPTION = "erp_write"
_SQLITE_BUSY_TIMEOUT_MS = 30_000
# Any fixed number, another than the pack's: processes starting together create the app's
# own table one at a time.
_SETUP_LOCK_KEY = 0x4552504B4559  # "ERPKEY"


def create_engine(url: str) -> AsyncEngine:
    """An engine on `url`, with SQLite's transactions made explicit (see the module docstring)."""
    engine = create_async_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        _explicit_sqlite_transactions(engine)
    return engine


def _explicit_sqlite_transactions(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # WAL lets readers go on while an action writes; the timeout makes a second writer
        # (another process on the same file) wait for the first instead of failing.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(connection: Connection) -> None:
        writing = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writing else "BEGIN")


async def prepare(engine: AsyncEngine, *, seed: bool, today: Today = date.today) -> None:
    """Create the books' tables and the app's own, and seed the demo tenants when `seed`."""
    await prepare_database(engine, seed, today)
    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            await connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SETUP_LOCK_KEY}
            )
        await connection.run_sync(IDEMPOTENCY_METADATA.create_all)
