"""Keyset paging for newest-first lists.

A page is read as "the ``limit`` rows that sort before this position", where a position is a
(time, id) pair: the time orders the rows and the id breaks ties, so no row is skipped or shown
twice however many rows share a timestamp. Offsets are never used: they drift when rows are
added while a reader pages, and they cost a scan of everything skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import and_, or_
from sqlalchemy.sql.elements import ColumnElement

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PagePosition:
    """The sort key of the last row of a page; the next page starts after it."""

    time: datetime
    id: str


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """Rows of one page, newest first, and where the next page starts (None on the last)."""

    items: list[T]
    next: PagePosition | None


def before(time_column: Any, id_column: Any, position: PagePosition | None) -> ColumnElement[bool]:
    """The condition "sorts after ``position`` in newest-first order" (true with no position).

    Written as ``time < t OR (time = t AND id < i)`` rather than a row-value comparison, which
    older SQLite builds and some planners handle poorly.
    """
    if position is None:
        return and_(True)
    moment = as_utc(position.time)
    return or_(time_column < moment, and_(time_column == moment, id_column < position.id))


def page_of(rows: Sequence[T], limit: int, key: Any) -> Page[T]:
    """Cut ``limit + 1`` fetched rows into a page; ``key(row)`` gives a row's (time, id)."""
    items = list(rows[:limit])
    if len(rows) <= limit or not items:
        return Page(items=items, next=None)
    time, row_id = key(items[-1])
    return Page(items=items, next=PagePosition(time=as_utc(time), id=row_id))


def as_utc(moment: datetime) -> datetime:
    """``moment`` as an aware UTC datetime (SQLite hands back naive ones, stored as UTC)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
