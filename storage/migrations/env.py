"""Alembic environment: runs on a connection handed over by ``Database.migrate`` or, from the
``alembic`` command line, on an engine built from ``sqlalchemy.url``."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import AutoString

import storage.models  # noqa: F401  (registers Parley's tables on SQLModel.metadata)
from storage.knowledge_search import include_name
from storage.models import EnumString

target_metadata = SQLModel.metadata


def _render_item(kind: str, item: Any, _context: AutogenContext) -> str | Literal[False]:
    # Render SQLModel's string type as plain SQLAlchemy, so migrations do not import sqlmodel;
    # an enum column is a plain string in the database, so it renders the same way.
    if kind == "type" and isinstance(item, EnumString):
        return f"sa.String(length={item.length})"
    if kind == "type" and isinstance(item, AutoString):
        return f"sa.String(length={item.length})" if item.length else "sa.Text()"
    return False


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_item=_render_item,
        include_name=include_name,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_with_own_engine(url: str) -> None:
    engine = create_async_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


given = context.config.attributes.get("connection")
if given is not None:
    _run(given)
else:
    asyncio.run(_run_with_own_engine(context.config.get_main_option("sqlalchemy.url") or ""))
