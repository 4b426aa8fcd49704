"""Views of tool results, without a server: where a tool's view comes from (a pack's
ToolReturn, a host's parley_view, a derived table), how it is cut to the limits, what its CSV
cells hold, and the confirmation fields read from an action's schema."""

from __future__ import annotations

import dataclasses
import logging
from datetime import date
from decimal import Decimal
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, Field
from sqlmodel.ext.asyncio.session import AsyncSession

from protocol import (
    ChartType,
    ChartView,
    Column,
    FieldType,
    MetricItem,
    MetricsView,
    Series,
    TableView,
    ValueType,
)
from server.tools.context import ToolContext
from server.tools.param_fields import param_fields
from server.tools.registry import ToolPack, ToolRegistry, ToolReturn
from server.tools.views import cell_text, derive_table, humanize, prepare_view


def context() -> ToolContext:
    def no_database() -> AsyncSession:
        raise AssertionError("these tools read no database")

    return ToolContext(
        tenant="acme",
        user="ann",
        roles=frozenset({"viewer"}),
        conversation_id="c1",
        turn_id="t1",
        currency="EUR",
        locale="de-DE",
        sessions=no_database,  # type: ignore[arg-type]
    )


ORDERS = TableView(
    title="Orders",
    columns=(
        Column(key="number", label="Order", type=ValueType.TEXT),
        Column(key="total", label="Total", type=ValueType.MONEY, currency="EUR"),
    ),
    rows=tuple({"number": f"PO-{n}", "total": f"{n}.50"} for n in range(1, 8)),
)


def build_registry() -> ToolRegistry:
    pack = ToolPack("views")

    @pack.query()
    async def orders(ctx: ToolContext) -> ToolReturn:
        """Orders with a table view."""
        return ToolReturn({"count": 7}, "7 orders", view=ORDERS)

    @pack.query()
    async def per_status(ctx: ToolContext) -> ToolReturn:
        """A chart whose CSV is the orders behind it, both as plain dicts."""
        chart = {
            "kind": "chart",
            "chart": "pie",
            "x": "status",
            "series": [{"key": "count", "label": "Orders"}],
            "rows": [{"status": "open", "count": 7}],
        }
        return ToolReturn({"open": 7}, view=chart, export=ORDERS)

    @pack.query()
    async def hosted(ctx: ToolContext) -> dict[str, Any]:
        """A host's answer carrying its view, as an OpenAPI source's JSON would."""
        return {
            "total": "12.50",
            "parley_view": {"kind": "metrics", "items": [{"label": "Total", "value": "12.50"}]},
        }

    @pack.query()
    async def summarized(ctx: ToolContext) -> dict[str, Any]:
        """A host's answer naming its own tool line, as an OpenAPI source's JSON would."""
        return {"total": "12.50", "parley_summary": "  Cash:\n USD 12.50 " + "x" * 300}

    @pack.query()
    async def badly_summarized(ctx: ToolContext) -> dict[str, Any]:
        """A host's answer whose summary is not text."""
        return {"total": 1, "parley_summary": {"line": "no"}}

    @pack.query()
    async def badly_hosted(ctx: ToolContext) -> dict[str, Any]:
        """A host's answer whose view does not validate."""
        return {"total": 1, "parley_view": {"kind": "map"}}

    @pack.query()
    async def flat_list(ctx: ToolContext) -> list[dict[str, Any]]:
        """A list of flat objects."""
        return [
            {"sku": "W-1", "on_hand": 3, "counted": "2026-12-01", "price": Decimal("1.50")},
            {"sku": "G-2", "on_hand": 4.5, "counted": None, "note": "a|b"},
        ]

    @pack.query()
    async def nested_list(ctx: ToolContext) -> list[dict[str, Any]]:
        """A list of objects that are not flat."""
        return [{"sku": "W-1", "lines": [1, 2]}]

    registry = ToolRegistry()
    registry.add_pack(pack)
    return registry


async def run(registry: ToolRegistry, name: str) -> Any:
    call = registry.validate(name, "{}", frozenset({"viewer"}))
    return await registry.run(call, context())


async def test_a_pack_returns_a_view_beside_its_result() -> None:
    registry = build_registry()
    outcome = await run(registry, "orders")
    assert (outcome.result, outcome.summary, outcome.view) == ({"count": 7}, "7 orders", ORDERS)
    charted = await run(registry, "per_status")
    assert charted.view == ChartView(
        chart=ChartType.PIE,
        x="status",
        series=(Series(key="count", label="Orders"),),
        rows=({"status": "open", "count": 7},),
    )
    assert charted.export == ORDERS
    assert charted.summary == "per_status done"


async def test_a_hosts_view_is_taken_out_of_what_the_model_reads(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = build_registry()
    outcome = await run(registry, "hosted")
    assert outcome.result == {"total": "12.50"}
    assert outcome.view == MetricsView(items=(MetricItem(label="Total", value="12.50"),))
    with caplog.at_level(logging.WARNING):
        bad = await run(registry, "badly_hosted")
    # A view that does not validate is left out and logged; the answer itself is kept.
    assert (bad.ok, bad.result, bad.view) == (True, {"total": 1}, None)
    assert "'badly_hosted' returned a view that is not valid" in caplog.text
    assert "view.kind" in caplog.text


async def test_a_hosts_summary_names_the_tool_line_and_the_model_never_reads_it() -> None:
    registry = build_registry()
    outcome = await run(registry, "summarized")
    assert outcome.result == {"total": "12.50"}
    # Whitespace collapsed and cut like any summary, so a long line cannot flood the tabs.
    assert outcome.summary.startswith("Cash: USD 12.50 xxx")
    assert len(outcome.summary) <= 160
    assert outcome.summary.endswith("…")
    # A summary that is not text is dropped from the answer and a line is derived as usual.
    bad = await run(registry, "badly_summarized")
    assert (bad.result, bad.summary) == ({"total": 1}, "badly_summarized done")


async def test_a_list_of_flat_objects_gets_a_derived_table() -> None:
    registry = build_registry()
    outcome = await run(registry, "flat_list")
    assert outcome.view == TableView(
        columns=(
            Column(key="sku", label="SKU", type=ValueType.TEXT),
            Column(key="on_hand", label="On hand", type=ValueType.NUMBER),
            Column(key="counted", label="Counted", type=ValueType.DATE),
            Column(key="price", label="Price", type=ValueType.TEXT),
            Column(key="note", label="Note", type=ValueType.TEXT),
        ),
        rows=tuple(outcome.result),
    )
    assert (await run(registry, "nested_list")).view is None
    assert derive_table([]) is None
    assert derive_table({"a": 1}) is None
    assert derive_table([{"": 1}]) is None
    assert derive_table([{f"k{n}": n for n in range(31)}]) is None


def test_labels_are_made_from_keys() -> None:
    assert humanize("open_amount") == "Open amount"
    assert humanize("dueDate") == "Due date"
    assert humanize("po_number") == "PO number"
    assert humanize("customer_id") == "Customer ID"
    assert humanize("") == ""


def test_a_view_is_cut_to_its_first_rows_and_its_csv_keeps_them_all() -> None:
    shown, rows = prepare_view(ORDERS, None, max_rows=3, max_bytes=64 * 1024, export_max_rows=5)
    assert isinstance(shown, TableView)
    assert [row["number"] for row in shown.rows] == ["PO-1", "PO-2", "PO-3"]
    assert shown.total_rows == 7
    assert rows is not None
    assert rows.columns == [{"key": "number", "label": "Order"}, {"key": "total", "label": "Total"}]
    # The CSV is bounded by its own limit, and still knows how many rows there were.
    assert [row["number"] for row in rows.rows] == ["PO-1", "PO-2", "PO-3", "PO-4", "PO-5"]
    assert rows.total_rows == 7
    # Within the row limit but over the byte limit: rows are dropped until it fits.
    small, _ = prepare_view(ORDERS, None, max_rows=50, max_bytes=300, export_max_rows=50)
    assert isinstance(small, TableView)
    assert 0 < len(small.rows) < 7
    assert small.total_rows == 7
    # A view too large even without rows is not shown; its CSV still has the rows.
    gone, kept = prepare_view(ORDERS, None, max_rows=50, max_bytes=20, export_max_rows=50)
    assert gone is None
    assert kept is not None
    assert len(kept.rows) == 7
    # A tool that sent the first rows of more keeps its count when cut further.
    partial = dataclasses.replace(ORDERS, total_rows=100)
    cut, _ = prepare_view(partial, None, max_rows=2, max_bytes=65536, export_max_rows=50)
    assert isinstance(cut, TableView)
    assert (len(cut.rows), cut.total_rows) == (2, 100)
    _, partial_rows = prepare_view(partial, None, max_rows=2, max_bytes=65536, export_max_rows=50)
    assert partial_rows is not None
    assert partial_rows.total_rows == 100
    # A view within both limits goes as it is.
    whole, _ = prepare_view(ORDERS, None, max_rows=50, max_bytes=64 * 1024, export_max_rows=50)
    assert whole == ORDERS


def test_a_chart_exports_its_category_and_series_or_the_table_behind_it() -> None:
    chart = ChartView(
        chart=ChartType.BAR,
        x="bucket",
        series=(Series(key="amount", label="Open", type=ValueType.MONEY, currency="USD"),),
        rows=({"bucket": "current", "amount": "10.00"},),
    )
    _, own = prepare_view(chart, None, max_rows=50, max_bytes=65536, export_max_rows=50)
    assert own is not None
    assert own.columns == [{"key": "bucket", "label": "Bucket"}, {"key": "amount", "label": "Open"}]
    _, detail = prepare_view(chart, ORDERS, max_rows=50, max_bytes=65536, export_max_rows=50)
    assert detail is not None
    assert detail.title == "Orders"
    assert len(detail.rows) == 7
    metrics = MetricsView(items=tuple(MetricItem(label=f"K{n}", value=n) for n in range(3)))
    shown, none = prepare_view(metrics, None, max_rows=2, max_bytes=65536, export_max_rows=1)
    assert none is None
    assert shown == MetricsView(items=metrics.items[:2])
    assert prepare_view(metrics, None, max_rows=2, max_bytes=10, export_max_rows=1) == (None, None)


def test_csv_cells_are_raw_values_and_never_formulas() -> None:
    assert [cell_text(v) for v in (None, True, False, 3, 2.0, 2.5, "-12.50", "x")] == [
        "",
        "true",
        "false",
        "3",
        "2",
        "2.5",
        "-12.50",
        "x",
    ]
    assert cell_text('=HYPERLINK("http://x")') == '\'=HYPERLINK("http://x")'
    assert cell_text("+1 555") == "'+1 555"
    assert cell_text("@SUM(A1)") == "'@SUM(A1)"


class Line(BaseModel):
    """One line."""

    item: str = Field(title="Article")
    quantity: Decimal
    price: Decimal = Field(json_schema_extra={"x-parley-type": "money", "x-parley-currency": "CHF"})


def build_action_pack() -> ToolPack:
    pack = ToolPack("actions")

    @pack.action(summary="Order for {customer}")
    async def place_order(
        ctx: ToolContext,
        customer: str,
        lines: list[Line],
        deliver_on: date,
        discount: Annotated[Decimal, Field(json_schema_extra={"x-parley-type": "percent"})],
        deposit: Annotated[
            Decimal | None, Field(json_schema_extra={"x-parley-type": "money"})
        ] = None,
        tags: list[str] | None = None,
        rush: bool = False,
    ) -> None:
        """Place an order."""

    return pack


def test_confirmation_fields_come_from_the_actions_schema() -> None:
    schema = build_action_pack().tools["place_order"].parameters
    fields = {field.key: field for field in param_fields(schema, "EUR")}
    assert list(fields) == [
        "customer",
        "lines",
        "deliver_on",
        "discount",
        "deposit",
        "tags",
        "rush",
    ]
    assert (fields["customer"].label, fields["customer"].type) == ("Customer", FieldType.TEXT)
    assert fields["lines"].type is FieldType.LIST
    assert fields["lines"].columns == (
        Column(key="item", label="Article", type=ValueType.TEXT),
        Column(key="quantity", label="Quantity", type=ValueType.NUMBER),
        Column(key="price", label="Price", type=ValueType.MONEY, currency="CHF"),
    )
    assert fields["deliver_on"].type is FieldType.DATE
    assert fields["discount"].type is FieldType.PERCENT
    # Money without a currency of its own is in the tenant's.
    assert (fields["deposit"].type, fields["deposit"].currency) == (FieldType.MONEY, "EUR")
    # A list of plain values and a boolean are shown as text.
    assert fields["tags"].type is FieldType.TEXT
    assert fields["rush"].type is FieldType.TEXT


def test_confirmation_fields_of_an_unusual_schema_degrade_to_text() -> None:
    assert param_fields({}, "USD") == ()
    assert param_fields({"properties": []}, "USD") == ()
    odd = {
        "properties": {
            "": {"type": "string"},
            "when": {"type": ["string", "null"], "format": "date-time"},
            "count": {"oneOf": [{"type": "integer"}, {"type": "null"}]},
            "blob": "not a schema",
            "rows": {"type": "array", "items": {"type": "object", "properties": {}}},
            "cost": {"x-parley-type": "money", "x-parley-currency": "euro"},
        }
    }
    fields = {field.key: field for field in param_fields(odd, "USD")}
    assert list(fields) == ["when", "count", "blob", "rows", "cost"]
    assert fields["when"].type is FieldType.DATE
    assert fields["count"].type is FieldType.NUMBER
    assert fields["blob"].type is FieldType.TEXT
    assert fields["rows"].type is FieldType.TEXT
    # A currency that is no IS 4217 code is left out rather than sent.
    assert (fields["cost"].type, fields["cost"].currency) == (FieldType.MONEY, None)
