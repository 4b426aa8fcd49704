"""Whether the database schema is the one this code expects, for the readiness probe.

A worker pointed at a PostgreSQL database nobody migrated would fail on its first query;
readiness says so up front ("run parley migrate") instead.
"""

from __future__ import annotations

from alembic.script import ScriptDirectory

from storage.db import Database, alembic_config


def head_revision() -> str | None:
    """The newest migration this code ships."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def schema_revision(db: Database) -> str | None:
    """The migration the database is at (None when it was never migrated)."""
    async with db.engine.connect() as connection:
        has_table = await connection.run_sync(
            lambda sync: sync.dialect.has_table(sync, "alembic_version")
        )
        if not has_table:
            return None
        result = await connection.exec_driver_sql("SELECT version_num FROM alembic_version")
        row = result.first()
    return str(row[0]) if row is not None else None
