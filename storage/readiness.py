"""Whether the database schema is the one this code expects, for the readiness probe.

A worker pointed at a PostgreSQL database nobody migrated would fail on its first query;
readiness says so up front ("run parley migrate") instead.
"""

from __future__ import annotations

from alembic.script import ScriptDirectory
from alembic.util import CommandError

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


def is_known_revision(revision: str) -> bool:
    """Whether this code ships migration ``revision``.

    A revision it does not know is one a newer release made (alembic raises for it rather than
    answering None, hence the catch).
    """
    try:
        return ScriptDirectory.from_config(alembic_config()).get_revision(revision) is not None
    except CommandError:
        return False
