"""Reading the database the way an operator would: plain SQL, no Parley code in between."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine


async def rows(database_url: str, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            result = await connection.execute(text(sql), params)
            return [tuple(row) for row in result.all()]
    finally:
        await engine.dispose()
