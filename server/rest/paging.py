"""Cursor paging for REST lists: newest first, ``limit`` items, an opaque ``next_cursor``.

A cursor is the storage layer's page position (time and id of the last item shown) with the
name of the list it belongs to, as URL-safe base64 of JSON. Clients treat it as opaque; it is
not signed, because it grants nothing: every list is scoped to the caller anyway, so a forged
cursor can only start a page of the caller's own rows somewhere else.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

import orjson
from pydantic import BaseModel, ConfigDict, Field

from server.config import Settings
from server.rest.errors import invalid
from storage.paging import PagePosition, as_utc


class PageQuery(BaseModel):
    """Query parameters every list takes."""

    model_config = ConfigDict(extra="ignore")

    limit: int | None = Field(
        default=None,
        ge=1,
        description="items per page (default PARLEY_API_PAGE_SIZE, at most PARLEY_API_PAGE_MAX)",
    )
    cursor: str | None = Field(
        default=None, max_length=500, description="`next_cursor` of the previous page"
    )


def encode_cursor(kind: str, position: PagePosition | None) -> str | None:
    """The cursor that continues ``kind`` after ``position`` (None on the last page)."""
    if position is None:
        return None
    moment = as_utc(position.time).isoformat(timespec="microseconds")
    raw = orjson.dumps([kind, moment, position.id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str | None) -> PagePosition | None:
    """The position a cursor of ``kind`` names.

    Raises:
        ApiError: 422 naming ``cursor`` when it is not a cursor of this list.
    """
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        named, moment, ident = orjson.loads(raw)
        if named != kind or not isinstance(ident, str) or not isinstance(moment, str):
            raise ValueError(kind)
        return PagePosition(time=as_utc(datetime.fromisoformat(moment)), id=ident)
    except (binascii.Error, orjson.JSONDecodeError, ValueError, TypeError):
        raise invalid("cursor", "is not a cursor of this list") from None


def page_limit(query: PageQuery, settings: Settings) -> int:
    """The page size asked for, or the default.

    Raises:
        ApiError: 422 naming ``limit`` when it is above the configured maximum.
    """
    if query.limit is None:
        return settings.api_page_size
    if query.limit > settings.api_page_max:
        raise invalid("limit", f"must be at most {settings.api_page_max}")
    return query.limit
