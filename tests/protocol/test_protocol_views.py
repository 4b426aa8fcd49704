"""Views and confirmation fields: what decode accepts and refuses beyond the golden fixtures."""

from dataclasses import dataclass
from typing import ClassVar

import pytest

from protocol import (
    ChartType,
    ChartView,
    Column,
    FieldType,
    MetricItem,
    MetricsView,
    ParamField,
    ProtocolError,
    TableView,
    ToolResult,
    ValueType,
    decode_view,
    param_fields_from_json,
    param_fields_to_json,
    to_dict,
)
from protocol.layout import kind_of, tagged_union_kind


def test_decode_view_builds_each_kind() -> None:
    table = decode_view(
        {
            "kind": "table",
            "columns": [{"key": "amount", "label": "Amount", "type": "money", "currency": "EUR"}],
            "rows": [{"amount": "12.50"}, {"amount": None}],
        }
    )
    assert table == TableView(
        columns=(Column(key="amount", label="Amount", type=ValueType.MONEY, currency="EUR"),),
        rows=({"amount": "12.50"}, {"amount": None}),
    )
    chart = decode_view(
        {"kind": "chart", "chart": "pie", "x": "k", "series": [], "rows": [], "total_rows": 0}
    )
    assert isinstance(chart, ChartView)
    assert chart.chart is ChartType.PIE
    metrics = decode_view({"kind": "metrics", "items": [{"label": "Open", "value": True}]})
    assert metrics == MetricsView(items=(MetricItem(label="Open", value=True),))


def test_a_view_encodes_with_its_kind_first() -> None:
    view = MetricsView(title="Cash", items=(MetricItem(label="Total", value=3),))
    frame = ToolResult(
        conversation_id="c", turn_id="t", call_id="x", name="n", ok=True, summary="s", view=view
    )
    assert list(to_dict(frame)["view"]) == ["kind", "title", "items"]  # type: ignore[call-overload]


@pytest.mark.parametrize(
    ("value", "field", "problem"),
    [
        ([], "view", "must be an object"),
        ({"kind": 3}, "view.kind", "must be one of 'table', 'chart', 'metrics'"),
        ({"kind": "metrics", "items": [{"label": "a", "value": [1]}]}, "view.items[0].value", ""),
        ({"kind": "metrics", "items": [{"label": "a", "value": 2**60}]}, "view.items[0].value", ""),
        ({"kind": "table", "columns": [], "rows": ["a"]}, "view.rows[0]", "must be an object"),
        (
            {
                "kind": "table",
                "columns": [{"key": "a", "label": "A", "type": "money", "currency": "EU1"}],
                "rows": [],
            },
            "view.columns[0].currency",
            "ISO 4217",
        ),
    ],
)
def test_decode_view_names_the_offending_field(value: object, field: str, problem: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        decode_view(value)
    assert caught.value.field == field
    assert problem in caught.value.message


def test_a_union_member_without_its_tag_is_a_programming_mistake() -> None:
    @dataclass(frozen=True, slots=True, kw_only=True)
    class Untagged:
        kind: ClassVar[str] = "plain"

    with pytest.raises(RuntimeError, match="Untagged: no 'kind' class variable"):
        tagged_union_kind("kind", (Untagged,))


def test_param_fields_round_trip_through_their_json() -> None:
    fields = (
        ParamField(
            key="lines",
            label="Lines",
            type=FieldType.LIST,
            columns=(Column(key="price", label="Price", type=ValueType.MONEY, currency="EUR"),),
        ),
        ParamField(key="note", label="Note", type=FieldType.TEXT),
    )
    stored = param_fields_to_json(fields)
    assert stored == [
        {
            "key": "lines",
            "label": "Lines",
            "type": "list",
            "columns": [{"key": "price", "label": "Price", "type": "money", "currency": "EUR"}],
        },
        {"key": "note", "label": "Note", "type": "text"},
    ]
    assert param_fields_from_json(stored) == fields
    with pytest.raises(ProtocolError) as caught:
        param_fields_from_json([{"key": "a", "label": "A", "type": "blob"}])
    assert caught.value.field == "fields[0].type"


def test_kind_of_refuses_an_annotation_without_a_wire_kind() -> None:
    with pytest.raises(RuntimeError, match="no wire kind"):
        kind_of(set[int])
