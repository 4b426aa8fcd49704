"""CSV exports of the views tool results carried: every row, streamed, to their owner only."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from http import HTTPStatus
from urllib.parse import quote

from starlette.responses import StreamingResponse

from server.rest.api import ApiCall, ApiRouter
from server.rest.errors import ApiError, RestErrorCode
from server.tools.views import cell_text
from storage.models import ViewExport

router = ApiRouter("exports", "CSV files of the tables and charts in the assistant's answers.")

_ROWS_PER_CHUNK = 200


@router.get(
    "/exports/{call_id}.csv",
    response=None,
    media_type="text/csv",
    media_schema={"type": "string", "description": "CSV with a header row of column labels"},
)
async def export_csv(call: ApiCall[None, None]) -> StreamingResponse:
    """The CSV of a table or chart view I was shown.

    `call_id` is the tool call's id, as in `tool_result.export`. The first line names the
    columns by their labels; every row of the result follows (up to `PARLEY_EXPORT_MAX_ROWS`),
    values unformatted: numbers and money as the tool gave them, dates in ISO 8601, empty for
    null. A text value a spreadsheet would run as a formula gets a leading apostrophe. Another
    user's export, or one already removed to keep within `PARLEY_EXPORT_MAX_PER_USER`, is 404.
    """
    call_id = call.path("call_id")
    found = await call.rest.exports.get(call.owner, call_id)
    if found is None:
        raise ApiError(
            HTTPStatus.NOT_FOUND, RestErrorCode.EXPORT_NOT_FOUND, f"no export '{call_id}'"
        )
    filename = _filename(found)
    return StreamingResponse(
        _lines(found),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": (
                f'attachment; filename="{filename.encode("ascii", "replace").decode()}"; '
                f"filename*=UTF-8''{quote(filename)}"
            )
        },
    )


def _lines(export: ViewExport) -> Iterator[str]:
    """The CSV a chunk of rows at a time, so a large export is never one string in memory."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    keys = [column["key"] for column in export.columns]
    writer.writerow([column.get("label") or column["key"] for column in export.columns])
    for start in range(0, len(export.rows), _ROWS_PER_CHUNK):
        for row in export.rows[start : start + _ROWS_PER_CHUNK]:
            writer.writerow([cell_text(row.get(key)) for key in keys])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue()


def _filename(export: ViewExport) -> str:
    base = export.title or export.tool.rpartition("__")[2] or "export"
    cleaned = "".join(ch if ch.isalnum() or ch in "-_ " else "-" for ch in base).strip()
    return f"{cleaned or 'export'}.csv"
