"""Cost analytics: tokens and cost from ``usage_record``, summed over a time range and grouped.

Days are UTC calendar days. SQLite and PostgreSQL spell "the UTC date of a timestamp"
differently, which is the one dialect difference here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select

from storage.db import Database
from storage.models import UsageRecord
from storage.paging import as_utc


class UsageDimension(StrEnum):
    """What usage can be grouped by."""

    DAY = "day"
    USER = "user"
    MODEL = "model"
    CONVERSATION = "conversation"


@dataclass(frozen=True, slots=True)
class UsageTotals:
    """Sums over a set of model calls."""

    calls: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost_usd: Decimal


@dataclass(frozen=True, slots=True)
class UsageGroup:
    """The sums of one group; a dimension not grouped by is None."""

    totals: UsageTotals
    day: str | None = None
    user: str | None = None
    model: str | None = None
    conversation_id: str | None = None


@dataclass(frozen=True, slots=True)
class UsageReport:
    """Groups (at most the limit asked for, ``truncated`` when there were more) and the totals
    of the whole range."""

    groups: list[UsageGroup]
    totals: UsageTotals
    truncated: bool


class UsageStore:
    """Sums ``usage_record`` rows of a tenant (or one of its users) over a time range."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def report(
        self,
        tenant: str,
        *,
        user: str | None,
        since: datetime,
        until: datetime,
        group_by: Sequence[UsageDimension],
        limit: int,
    ) -> UsageReport:
        """Usage between ``since`` (inclusive) and ``until`` (exclusive).

        Groups come ordered by day (oldest first) when grouped by day, then by cost, highest
        first.
        """
        conditions = [
            col(UsageRecord.tenant) == tenant,
            col(UsageRecord.created_at) >= as_utc(since),
            col(UsageRecord.created_at) < as_utc(until),
        ]
        if user is not None:
            conditions.append(col(UsageRecord.user_id) == user)
        keys = [self._dimension(dimension).label(dimension.value) for dimension in group_by]
        sums = _sums()
        cost = sums[-1]
        order: list[Any] = []
        if UsageDimension.DAY in group_by:
            order.append(keys[group_by.index(UsageDimension.DAY)].asc())
        order.append(cost.desc())
        order.extend(key.asc() for key in keys)
        grouped = (
            select(*keys, *sums)
            .where(*conditions)
            .group_by(*keys)
            .order_by(*order)
            .limit(limit + 1)
        )
        total = select(*_sums()).where(*conditions)
        async with self._db.session() as session:
            rows = list((await session.exec(grouped)).all())
            totals = _totals((await session.exec(total)).one())
        groups = [
            UsageGroup(
                totals=_totals(row[len(keys) :]),
                **{
                    _FIELD[dimension]: _key_text(row[index])
                    for index, dimension in enumerate(group_by)
                },
            )
            for row in rows[:limit]
        ]
        return UsageReport(groups=groups, totals=totals, truncated=len(rows) > limit)

    def _dimension(self, dimension: UsageDimension) -> Any:
        if dimension is UsageDimension.DAY:
            if self._db.is_sqlite:
                return func.date(UsageRecord.created_at)
            return func.date(func.timezone("UTC", UsageRecord.created_at))
        if dimension is UsageDimension.USER:
            return col(UsageRecord.user_id)
        if dimension is UsageDimension.MODEL:
            return col(UsageRecord.model)
        return col(UsageRecord.conversation_id)


_FIELD = {
    UsageDimension.DAY: "day",
    UsageDimension.USER: "user",
    UsageDimension.MODEL: "model",
    UsageDimension.CONVERSATION: "conversation_id",
}


def _sums() -> list[Any]:
    return [
        func.count(col(UsageRecord.id)),
        func.coalesce(func.sum(UsageRecord.prompt_tokens), 0),
        func.coalesce(func.sum(UsageRecord.completion_tokens), 0),
        func.coalesce(func.sum(UsageRecord.total_tokens), 0),
        func.coalesce(func.sum(UsageRecord.cost_usd), 0),
    ]


def _totals(values: Sequence[Any]) -> UsageTotals:
    calls, prompt, completion, total, cost = values
    return UsageTotals(
        calls=int(calls),
        prompt_tokens=int(prompt),
        completion_tokens=int(completion),
        total_tokens=int(total),
        cost_usd=Decimal(str(cost)),
    )


def _key_text(value: Any) -> str:
    if isinstance(value, date):
        return value.isoformat()
    return str(value)
