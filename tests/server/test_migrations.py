"""The migrations build exactly the schema the SQLModel tables describe, on SQLite and on
PostgreSQL: a model change without its migration fails here, not in a deployment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import storage.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from storage.db import Database
from storage.knowledge_search import include_name


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'migrated.db'}"
    return str(request.getfixturevalue("postgres_database"))


async def test_the_migrations_build_the_schema_the_models_describe(database_url: str) -> None:
    db = Database(database_url)
    try:
        await db.migrate()
        async with db.engine.connect() as connection:
            differences = await connection.run_sync(_differences)
    finally:
        await db.close()
    assert differences == []


def _differences(connection: Any) -> list[Any]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "include_name": include_name}
    )
    return list(compare_metadata(context, SQLModel.metadata))
