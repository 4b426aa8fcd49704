"""Views of tool results: where a tool's view comes from, and how it is cut to size.

A tool gives the user something to look at in one of three ways:

- a Python pack's tool returns ``ToolReturn(result, view=TableView(...))`` (or a plain dict in
  the shape of a view), optionally with ``export=`` a table of the detail rows behind a chart;
- a host app's tool answers JSON with the view under the key :data:`VIEW_KEY`
  (``"parley_view"``) at the top level (OpenAPI) or in its structured content (MCP), and
  optionally a table of the detail behind a chart under :data:`EXPORT_KEY`
  (``"parley_export"``); Parley takes both keys out before the model sees the answer;
- any tool that answers a list of flat objects gets a table derived from it.

The browser gets the view's first rows (``PARLEY_VIEW_MAX_ROWS``, ``PARLEY_VIEW_MAX_BYTES``)
with ``total_rows``; a table or chart also gets a CSV export of all its rows
(``PARLEY_EXPORT_MAX_ROWS``), kept in SQL by :class:`storage.exports.ExportStore`.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from protocol import (
    AnyView,
    ChartView,
    Column,
    MetricsView,
    ProtocolError,
    TableView,
    ToolResult,
    ValueType,
    decode_view,
    to_dict,
)
from protocol.fields import MAX_ID_LENGTH

__all__ = [
    "EXPORT_KEY",
    "SUMMARY_KEY",
    "VIEW_KEY",
    "Carried",
    "ExportRows",
    "cell_text",
    "derive_table",
    "humanize",
    "prepare_view",
    "take_view",
]

logger = logging.getLogger(__name__)

VIEW_KEY = "parley_view"
"""The key under which a host app's JSON answer may carry a view."""
EXPORT_KEY = "parley_export"
"""The key under which a host app's JSON answer may carry the table its view's CSV holds."""
SUMMARY_KEY = "parley_summary"
"""The key under which a host app's JSON answer may carry the tool line's short summary."""
_CARRIED_KEYS = (VIEW_KEY, EXPORT_KEY, SUMMARY_KEY)

_DERIVED_MAX_COLUMNS = 30  # a list of objects wider than this is data, not a table to look at
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ][0-9:.]+(Z|[+-]\d{2}:?\d{2})?)?$")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# Abbreviations that read wrong in sentence case ("Po number", "Sku").
_ACRONYMS = {
    word: word.upper() for word in ("id", "po", "sku", "vat", "iban", "bic", "url", "ar", "ap")
}


@dataclass(frozen=True, slots=True)
class ExportRows:
    """Every row of a view for its CSV, with the columns that name them.

    Attributes:
        columns: ``{"key", "label"}`` per column, in order.
        rows: the rows, cut to the export limit.
        total_rows: how many rows the tool returned.
    """

    title: str | None
    columns: list[dict[str, str]]
    rows: list[dict[str, Any]]
    total_rows: int


# -- where a view comes from ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Carried:
    """A host's answer split into what the model sees and what is for the user's eyes.

    Attributes:
        rest: the answer without the keys below (the answer itself when it has none of them).
        view: the raw view under :data:`VIEW_KEY`, or None.
        export: the raw export table under :data:`EXPORT_KEY`, or None.
        summary: the tool line's summary under :data:`SUMMARY_KEY`, when it is a non-empty
            string (whitespace collapsed), else None.
    """

    rest: Any
    view: Any = None
    export: Any = None
    summary: str | None = None


def take_view(result: Any) -> Carried:
    """Split a host's answer into what the model sees and what it carries for the user: a view,
    an export table and a summary, each under its key (:data:`VIEW_KEY`, :data:`EXPORT_KEY`,
    :data:`SUMMARY_KEY`)."""
    if not isinstance(result, dict) or not any(key in result for key in _CARRIED_KEYS):
        return Carried(result)
    rest = {key: value for key, value in result.items() if key not in _CARRIED_KEYS}
    summary = result.get(SUMMARY_KEY)
    text = " ".join(summary.split()) if isinstance(summary, str) else ""
    return Carried(rest, result.get(VIEW_KEY), result.get(EXPORT_KEY), text or None)


def as_view(tool: str, value: Any) -> AnyView | None:
    """A protocol view from a view object or its JSON form; None (and a warning in the log)
    when the JSON is not a valid view, so a host's bad view never costs the user the answer."""
    if value is None or isinstance(value, TableView | ChartView | MetricsView):
        return value
    try:
        plain = orjson.loads(orjson.dumps(value, default=_json_default))
        return decode_view(plain)
    except (ProtocolError, TypeError, orjson.JSONEncodeError) as exc:
        logger.warning("tool %r returned a view that is not valid, left out: %s", tool, exc)
        return None


def derive_table(result: Any) -> TableView | None:
    """A table of a list of flat objects (every value a string, number, boolean or null);
    None for anything else.

    Columns follow the keys in order of first appearance; a column whose values are all numbers
    is ``number``, all ISO dates ``date``, else ``text``.
    """
    if not isinstance(result, list) or not result:
        return None
    keys: dict[str, None] = {}
    for row in result:
        if not isinstance(row, dict) or not all(_is_cell(cell) for cell in row.values()):
            return None
        keys.update(dict.fromkeys(row))
    names = [key for key in keys if isinstance(key, str) and 0 < len(key) <= MAX_ID_LENGTH]
    if not names or len(names) != len(keys) or len(names) > _DERIVED_MAX_COLUMNS:
        return None
    columns = tuple(
        Column(key=key, label=humanize(key), type=_column_type([row.get(key) for row in result]))
        for key in names
    )
    return TableView(columns=columns, rows=tuple(result))


def humanize(key: str) -> str:
    """A label from a key: ``open_amount`` → ``Open amount``, ``dueDate`` → ``Due date``,
    ``po_number`` → ``PO number``."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", key).replace("_", " ").replace("-", " ")
    words = [_ACRONYMS.get(word, word) for word in spaced.lower().split()]
    if not words:
        return key
    return " ".join([words[0][:1].upper() + words[0][1:], *words[1:]])


# -- what the browser and the CSV get ----------------------------------------------------------


def prepare_view(
    view: AnyView,
    export: AnyView | None,
    *,
    max_rows: int,
    max_bytes: int,
    export_max_rows: int,
) -> tuple[AnyView | None, ExportRows | None]:
    """The view cut to its first rows for the browser, and the rows of its CSV.

    ``export`` is a table of the detail behind a chart (its open documents, say); without one,
    a table's or chart's own rows are exported. A metrics view has no CSV and keeps its first
    ``max_rows`` cards. A view still larger than ``max_bytes`` without any rows (a host's
    thousand columns) is not shown at all; its CSV still is.
    """
    shown = _cut(view, max_rows, max_bytes)
    source = export if export is not None else view
    if isinstance(source, MetricsView):
        return shown, None
    return shown, _export_rows(source, export_max_rows)


def cell_text(value: Any) -> str:
    """One CSV cell: the raw value, unformatted; null is empty, booleans ``true``/``false``.

    A text cell that a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``,
    ``@``) gets a leading apostrophe, unless it is a plain number such as ``-12.50``.
    """
    if value is None:
        return ""
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, str):
        if value.startswith(_FORMULA_START) and not _is_number_text(value):
            return "'" + value
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _cut(view: AnyView, max_rows: int, max_bytes: int) -> AnyView | None:
    if isinstance(view, MetricsView):
        cards = dataclasses.replace(view, items=view.items[: max(0, max_rows)])
        return cards if _encoded_size(cards) <= max_bytes else None
    # A tool may itself have sent only the first rows of more: the larger count wins.
    total = max(len(view.rows), view.total_rows or 0)
    keep = min(len(view.rows), max(0, max_rows))
    while True:
        candidate = dataclasses.replace(
            view,
            rows=view.rows[:keep],
            total_rows=total if keep < len(view.rows) else view.total_rows,
        )
        if _encoded_size(candidate) <= max_bytes:
            return candidate
        if keep == 0:
            return None
        keep //= 2


def _export_rows(view: TableView | ChartView, max_rows: int) -> ExportRows:
    if isinstance(view, TableView):
        columns = [{"key": column.key, "label": column.label} for column in view.columns]
    else:
        columns = [{"key": view.x, "label": humanize(view.x)}]
        columns += [{"key": series.key, "label": series.label} for series in view.series]
    rows = [dict(row) for row in view.rows[: max(0, max_rows)]]
    total = max(len(view.rows), view.total_rows or 0)
    return ExportRows(view.title, columns, rows, total)


def _encoded_size(view: AnyView) -> int:
    # The view as it travels: encoded by the protocol's own exporter inside a frame.
    frame = ToolResult(
        conversation_id="c", turn_id="t", call_id="c", name="n", ok=True, summary="", view=view
    )
    return len(orjson.dumps(to_dict(frame)["view"]))


def _column_type(values: list[Any]) -> ValueType:
    present = [value for value in values if value is not None]
    if not present:
        return ValueType.TEXT
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return ValueType.NUMBER
    if all(isinstance(v, str) and _DATE.match(v) for v in present):
        return ValueType.DATE
    return ValueType.TEXT


def _is_cell(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _is_number_text(text: str) -> bool:
    try:
        Decimal(text)
    except InvalidOperation:
        return False
    return True


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON")
