"""Views: tables, charts and metric cards a tool result carries for the user to look at.

A ``tool_result`` may carry one view (``view``), and a ``confirm_request`` may describe its
parameters (``fields``) so that a card can label and format them. Both are plain data the
widget renders; the model never sees them. Values keep their raw form (numbers as JSON numbers
or decimal strings, dates as ISO 8601 strings); ``type`` tells the widget how to format them in
the tenant's locale.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Final, TypeAlias

from protocol.fields import MAX_SAFE_INTEGER, Count, Kind, Name, invalid
from protocol.layout import kind_of, tagged_union_kind


class ViewKind(StrEnum):
    """What a view is: the ``kind`` that tells the three view classes apart."""

    TABLE = "table"
    CHART = "chart"
    METRICS = "metrics"


class ChartType(StrEnum):
    """How a chart view is drawn."""

    BAR = "bar"
    LINE = "line"
    PIE = "pie"


class ValueType(StrEnum):
    """How a column's, series' or metric's values are formatted.

    ``money`` comes with a ``currency``; ``date`` values are ISO 8601 strings; ``percent``
    values are fractions (0.25 is 25%).
    """

    TEXT = "text"
    NUMBER = "number"
    MONEY = "money"
    DATE = "date"
    PERCENT = "percent"


class FieldType(StrEnum):
    """How a confirmation card shows one parameter: a :class:`ValueType`, or ``list`` for a
    list of objects shown as a small table with ``columns``."""

    TEXT = "text"
    NUMBER = "number"
    MONEY = "money"
    DATE = "date"
    PERCENT = "percent"
    LIST = "list"


# ---------------------------------------------------------------------------------------------
# Field kinds of views
# ---------------------------------------------------------------------------------------------

CURRENCY_PATTERN: Final = r"^[A-Z]{3}$"
"""An ISO 4217 currency code, e.g. ``EUR``."""


def _is_scalar(value: object) -> bool:
    if type(value) is str or type(value) is bool:
        return True
    return (type(value) is int or type(value) is float) and (
        -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER
    )


_CURRENCY: Final = re.compile(CURRENCY_PATTERN)


def _check_currency(value: object, parent: str, key: str | int) -> object:
    if type(value) is str and _CURRENCY.fullmatch(value) is not None:
        return value
    raise invalid(parent, key, "must be an ISO 4217 code of three capital letters")


def _check_scalar(value: object, parent: str, key: str | int) -> object:
    if _is_scalar(value):
        return value
    raise invalid(parent, key, "must be a string, a number or a boolean")


def _check_row(value: object, parent: str, key: str | int) -> object:
    if type(value) is not dict:
        raise invalid(parent, key, "must be an object")
    for name, cell in value.items():
        if cell is not None and not _is_scalar(cell):
            raise invalid(
                parent, key, f"cell '{name}' must be a string, a number, a boolean or null"
            )
    return value


def _export_row(value: Mapping[str, object]) -> object:
    return value if type(value) is dict else dict(value)


_NUMBER_SCHEMA: Final = {
    "type": "number",
    "minimum": -MAX_SAFE_INTEGER,
    "maximum": MAX_SAFE_INTEGER,
}
_SCALAR_SCHEMA: Final = {"anyOf": [{"type": "string"}, _NUMBER_SCHEMA, {"type": "boolean"}]}

CURRENCY: Final = Kind("currency", _check_currency, {"type": "string", "pattern": CURRENCY_PATTERN})
SCALAR: Final = Kind("scalar", _check_scalar, _SCALAR_SCHEMA)
ROW: Final = Kind(
    "row",
    _check_row,
    {
        "type": "object",
        "additionalProperties": {
            "anyOf": [{"type": "string"}, _NUMBER_SCHEMA, {"type": "boolean"}, {"type": "null"}]
        },
    },
    export=_export_row,
)

Currency: TypeAlias = Annotated[str, CURRENCY]
"""An ISO 4217 currency code: three capital letters."""
Scalar: TypeAlias = Annotated[str | float | bool, SCALAR]
"""A string, a number within ±(2**53 - 1) or a boolean."""
Row: TypeAlias = Annotated[Mapping[str, object], ROW]
"""One row of a table or chart: column key → a scalar or null."""


# ---------------------------------------------------------------------------------------------
# Value classes
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Column:
    """One column of a table view (or of a list parameter on a confirmation card).

    Attributes:
        key: The key of the column's values in each row.
        label: The column heading.
        type: How its values are formatted and aligned.
        currency: For ``money``: the ISO 4217 code of its amounts.
    """

    key: Name
    label: str
    type: ValueType
    currency: Currency | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Series:
    """One series of a chart view: the values under ``key`` in each row.

    Attributes:
        label: The series' name in the legend.
        type: How its values are formatted (tooltips, axis); absent means ``number``.
        currency: For ``money``: the ISO 4217 code of its amounts.
    """

    key: Name
    label: str
    type: ValueType | None = None
    currency: Currency | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricItem:
    """One card of a metrics view.

    Attributes:
        label: What the value is ("Cash on hand").
        value: The value, a number or decimal string for numbers and money.
        hint: A short line under the value ("3 accounts").
        type: How the value is formatted; absent means as it is.
        currency: For ``money``: the ISO 4217 code.
    """

    label: str
    value: Scalar
    hint: str | None = None
    type: ValueType | None = None
    currency: Currency | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TableView:
    """A table of rows under named, typed columns.

    Attributes:
        title: A heading over the table.
        rows: The rows shown; when the view was cut to a size limit, its first rows.
        total_rows: How many rows there are in all, when ``rows`` holds only the first ones
            ("showing N of M").
    """

    kind: ClassVar[ViewKind] = ViewKind.TABLE
    title: str | None = None
    columns: tuple[Column, ...]
    rows: tuple[Row, ...]
    total_rows: Count | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ChartView:
    """A bar, line or pie chart: one category per row, one value per series.

    Attributes:
        chart: How it is drawn.
        title: A heading over the chart.
        x: The key of the category (the bars' labels, the line's x axis, the pie's slices).
        series: The values drawn per category.
        rows: The rows shown; when the view was cut to a size limit, its first rows.
        total_rows: How many rows there are in all, when ``rows`` holds only the first ones.
    """

    kind: ClassVar[ViewKind] = ViewKind.CHART
    chart: ChartType
    title: str | None = None
    x: Name
    series: tuple[Series, ...]
    rows: tuple[Row, ...]
    total_rows: Count | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricsView:
    """A row of KPI cards.

    Attributes:
        title: A heading over the cards.
    """

    kind: ClassVar[ViewKind] = ViewKind.METRICS
    title: str | None = None
    items: tuple[MetricItem, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ParamField:
    """How a confirmation card shows one parameter of the action.

    Attributes:
        key: The parameter's key in ``params``.
        label: Its label on the card.
        type: How its value is formatted; ``list`` shows a list of objects as a table.
        currency: For ``money``: the ISO 4217 code.
        columns: For ``list``: the columns of the table, one per key of the objects.
    """

    key: Name
    label: str
    type: FieldType
    currency: Currency | None = None
    columns: tuple[Column, ...] | None = None


VIEW: Final = tagged_union_kind("kind", (TableView, ChartView, MetricsView))
PARAM_FIELDS: Final = kind_of(tuple[ParamField, ...])

AnyView: TypeAlias = TableView | ChartView | MetricsView
"""Any view."""
View: TypeAlias = Annotated[AnyView, VIEW]
"""A table, chart or metrics view, told apart by its ``kind``."""


def decode_view(value: Any) -> AnyView:
    """Check a parsed JSON object as a view and build it.

    Raises:
        ProtocolError: ``invalid_field`` or ``missing_field`` naming the first bad field under
            ``view``.
    """
    return VIEW.check(value, "", "view")  # type: ignore[return-value]


def param_fields_to_json(fields: tuple[ParamField, ...]) -> list[dict[str, object]]:
    """Confirmation fields as their JSON, e.g. to store them with the confirmation."""
    assert PARAM_FIELDS.export is not None
    return PARAM_FIELDS.export(fields)  # type: ignore[return-value]


def param_fields_from_json(value: Any) -> tuple[ParamField, ...]:
    """Confirmation fields from their JSON, checked as ``confirm_request.fields`` is.

    Raises:
        ProtocolError: ``invalid_field`` or ``missing_field`` naming the first bad field under
            ``fields``.
    """
    return PARAM_FIELDS.check(value, "", "fields")  # type: ignore[return-value]
