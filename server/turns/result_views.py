"""What the user sees of a query's result: its view cut to size and the CSV export behind it."""

from __future__ import annotations

import logging
from urllib.parse import quote

from protocol import AnyView
from server.config import Settings
from server.tools.registry import ToolOutcome
from server.tools.views import prepare_view
from storage.exports import ExportStore
from storage.keys import UserKey

logger = logging.getLogger(__name__)

EXPORT_PATH = "/api/v1/exports/{call_id}.csv"
"""Where the CSV of a tool call's view is served (``server.rest.exports``)."""


def export_path(call_id: str) -> str:
    """The path of the CSV of ``call_id``'s view."""
    return EXPORT_PATH.format(call_id=quote(call_id, safe=""))


class ResultViews:
    """Cuts a result's view to the configured size and stores all its rows for the CSV."""

    def __init__(self, settings: Settings, exports: ExportStore) -> None:
        self._settings = settings
        self._exports = exports

    async def present(
        self,
        owner: UserKey,
        conversation_id: str,
        call_id: str,
        tool: str,
        outcome: ToolOutcome,
    ) -> tuple[AnyView | None, str | None]:
        """The view for the ``tool_result`` frame and the path of its CSV (None: none).

        A CSV that cannot be stored (the database is away) costs the user the download link,
        never the view or the answer.
        """
        if not outcome.ok or outcome.view is None:
            return None, None
        settings = self._settings
        view, rows = prepare_view(
            outcome.view,
            outcome.export,
            max_rows=settings.view_max_rows,
            max_bytes=settings.view_max_bytes,
            export_max_rows=settings.export_max_rows,
        )
        if view is None:
            logger.warning("the view of call %r is too large to show, even without rows", call_id)
        if rows is None:
            return view, None
        try:
            await self._exports.save(
                owner,
                call_id=call_id,
                conversation_id=conversation_id,
                tool=tool,
                title=rows.title,
                columns=rows.columns,
                rows=rows.rows,
                total_rows=rows.total_rows,
            )
        except Exception:
            logger.exception("could not store the CSV export of call %r", call_id)
            return view, None
        return view, export_path(call_id)
