"""Conditional updates: change a row only if it still is what the check saw.

On PostgreSQL the tools lock the rows they check (``SELECT … FOR UPDATE``), which already keeps
two transactions from acting on the same state. SQLite has no row locks, and its Python driver
reads outside the write transaction, so a check there may see a state another writer is about
to change. Writing with the checked state in the ``WHERE`` clause closes that gap on every
backend: if someone else got there first, no row matches and the action is refused instead of
overwriting their change.
"""

from typing import Any

from sqlalchemy import update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from examples.erp.models import ErpBase
from server.tools.errors import ToolError

__all__ = ["guarded_update"]


async def guarded_update(
    session: AsyncSession,
    model: type[ErpBase],
    row_id: int | None,
    *conditions: Any,
    values: dict[str, Any],
    what: str,
) -> None:
    """``UPDATE model SET values WHERE id = row_id AND conditions``, for exactly one row.

    Raises:
        ToolError: no row matched: `what` changed since it was read.
    """
    row_key = col(model.id)  # type: ignore[attr-defined]
    statement = update(model).where(row_key == row_id, *conditions).values(**values)
    result = await session.exec(statement)
    if result.rowcount != 1:
        raise ToolError(
            f"{what} was changed by someone else just now; nothing was saved, please try again",
            code="conflict",
        )
