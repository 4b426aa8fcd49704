"""CSV exports of views: every row of a table or chart view, kept per user and tool call."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlmodel import col, delete, select

from storage.db import Database
from storage.keys import UserKey
from storage.models import ViewExport


class ExportStore:
    """Keeps the rows behind views for their CSV export, a bounded number per user."""

    def __init__(self, db: Database, keep_per_user: int) -> None:
        self._db = db
        self._keep = max(1, keep_per_user)

    async def save(
        self,
        owner: UserKey,
        *,
        call_id: str,
        conversation_id: str,
        tool: str,
        title: str | None,
        columns: Sequence[dict[str, Any]],
        rows: Sequence[dict[str, Any]],
        total_rows: int,
    ) -> None:
        """Store the rows of one tool call's view, replacing any earlier ones of that call,
        and drop the owner's oldest exports beyond the limit."""
        async with self._db.session() as session:
            await session.exec(
                delete(ViewExport).where(
                    col(ViewExport.tenant) == owner.tenant,
                    col(ViewExport.user_id) == owner.user,
                    col(ViewExport.call_id) == call_id,
                )
            )
            session.add(
                ViewExport(
                    tenant=owner.tenant,
                    user_id=owner.user,
                    call_id=call_id,
                    conversation_id=conversation_id,
                    tool=tool[:200],
                    title=title[:500] if title is not None else None,
                    columns=list(columns),
                    rows=list(rows),
                    total_rows=total_rows,
                )
            )
            await session.flush()
            kept = (
                select(ViewExport.id)
                .where(
                    col(ViewExport.tenant) == owner.tenant,
                    col(ViewExport.user_id) == owner.user,
                )
                .order_by(col(ViewExport.created_at).desc(), col(ViewExport.id).desc())
                .limit(self._keep)
            )
            await session.exec(
                delete(ViewExport).where(
                    col(ViewExport.tenant) == owner.tenant,
                    col(ViewExport.user_id) == owner.user,
                    col(ViewExport.id).not_in(kept.scalar_subquery()),
                )
            )
            await session.commit()

    async def get(self, owner: UserKey, call_id: str) -> ViewExport | None:
        """The export of ``call_id`` if it belongs to ``owner``; None otherwise."""
        async with self._db.session() as session:
            found = await session.exec(
                select(ViewExport).where(
                    col(ViewExport.tenant) == owner.tenant,
                    col(ViewExport.user_id) == owner.user,
                    col(ViewExport.call_id) == call_id,
                )
            )
            return found.first()
