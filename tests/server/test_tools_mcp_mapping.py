"""The pure part of an MCP tool source: an MCP tool's description becomes a Parley tool spec,
and a result becomes what the model sees."""

from __future__ import annotations

import json
from typing import Any

import mcp_types as types
import pytest

from server.tools.registry import ToolReturn
from server.tools.sources.config import parse_sources
from server.tools.sources.errors import SourceLoadError
from server.tools.sources.mcp import bounded_result, describe_block, spec_fields, viewed_result

SCHEMA = {"type": "object", "properties": {"number": {"type": "string"}}, "required": ["number"]}


def source(**table: Any) -> Any:
    table = {"name": "crm", "kind": "mcp", "url": "http://127.0.0.1:9/mcp", **table}
    (config,) = parse_sources({"source": [table]}, "sources.toml", {})
    return config


def tool(name: str = "lookup", **fields: Any) -> types.Tool:
    return types.Tool(name=name, input_schema=fields.pop("input_schema", SCHEMA), **fields)


def hints(**values: Any) -> types.ToolAnnotations:
    return types.ToolAnnotations(**values)


def test_read_only_hint_makes_a_query() -> None:
    fields = spec_fields(tool(annotations=hints(read_only_hint=True)), source())
    assert fields["kind"] == "query"
    assert fields["destructive"] is None
    assert fields["name"] == "crm__lookup"
    assert fields["parameters"] == SCHEMA
    assert fields["source"] == "crm"


@pytest.mark.parametrize(
    ("annotations", "destructive"),
    [
        (None, True),
        (hints(), True),
        (hints(read_only_hint=False), True),
        (hints(destructive_hint=True), True),
        (hints(destructive_hint=False), False),
        (hints(read_only_hint=False, destructive_hint=False), False),
    ],
)
def test_anything_else_is_an_action_destructive_unless_the_server_says_not(
    annotations: types.ToolAnnotations | None, destructive: bool
) -> None:
    fields = spec_fields(tool(annotations=annotations), source())
    assert fields["kind"] == "action"
    assert fields["destructive"] is destructive


def test_the_operators_override_wins_over_the_hints() -> None:
    config = source(
        tools={"lookup": {"kind": "action", "roles": ["manager"]}, "wipe": {"kind": "query"}}
    )
    lookup = spec_fields(tool(annotations=hints(read_only_hint=True)), config)
    assert lookup["kind"] == "action"
    assert lookup["roles"] == frozenset({"manager"})
    wipe = spec_fields(tool("wipe", annotations=hints(destructive_hint=True)), config)
    assert wipe["kind"] == "query"
    assert wipe["destructive"] is None
    assert wipe["roles"] == frozenset()


def test_source_roles_gate_every_tool() -> None:
    fields = spec_fields(tool(), source(roles=["finance"]))
    assert fields["source_roles"] == frozenset({"finance"})


def test_the_description_falls_back_to_the_title_and_then_the_name() -> None:
    assert spec_fields(tool(description="Find a thing"), source())["description"] == "Find a thing"
    assert spec_fields(tool(title="Lookup"), source())["description"] == "Lookup"
    titled = tool(annotations=hints(title="Annotated"))
    assert spec_fields(titled, source())["description"] == "Annotated"
    assert "lookup" in spec_fields(tool(), source())["description"]


def test_a_name_no_model_accepts_is_a_load_error_naming_the_tool() -> None:
    with pytest.raises(SourceLoadError) as failed:
        spec_fields(tool("has space"), source())
    assert failed.value.source == "crm"
    assert "'has space'" in failed.value.where
    assert "exclude" in failed.value.reason
    with pytest.raises(SourceLoadError):
        spec_fields(tool("x" * 70), source())


def test_an_input_schema_that_is_not_an_object_is_a_load_error() -> None:
    with pytest.raises(SourceLoadError) as failed:
        spec_fields(tool(input_schema={"type": "array"}), source())
    assert "object" in failed.value.reason


def test_structured_and_text_content_both_reach_the_model() -> None:
    seen = bounded_result("Invoice INV-1 is open.", {"status": "open"}, 10_000)
    assert seen == {"structured_content": {"status": "open"}, "text": "Invoice INV-1 is open."}
    assert bounded_result("just text", None, 10_000) == {"text": "just text"}
    assert bounded_result("", {"a": 1}, 10_000) == {"structured_content": {"a": 1}}


def test_a_view_in_the_structured_content_is_taken_out_of_what_the_model_reads() -> None:
    view = {"kind": "metrics", "items": [{"label": "Open", "value": "5.00"}]}
    export = {"kind": "table", "columns": [], "rows": []}
    structured = {"status": "open", "parley_view": view, "parley_export": export}
    # SDK servers send the structured content as text too: that copy goes as well.
    seen = viewed_result(json.dumps(structured), structured, 10_000)
    assert seen == ToolReturn({"structured_content": {"status": "open"}}, view=view, export=export)
    said = viewed_result("Invoice INV-1 is open.", {"parley_view": view}, 10_000)
    assert said == ToolReturn(
        {"structured_content": {}, "text": "Invoice INV-1 is open."}, view=view
    )
    named = viewed_result("", {"status": "open", "parley_summary": "INV-1 is open"}, 10_000)
    assert named == ToolReturn({"structured_content": {"status": "open"}}, "INV-1 is open")
    # Without a view the result is as before.
    assert viewed_result("done", {"a": 1}, 10_000) == bounded_result("done", {"a": 1}, 10_000)


def test_text_that_repeats_the_structured_content_is_left_out() -> None:
    structured = {"status": "open", "amount": 5}
    seen = bounded_result(json.dumps(structured, indent=2), structured, 10_000)
    assert seen == {"structured_content": structured}
    # The SDKs wrap a plain value as {"result": value} and send it as text too.
    assert bounded_result("done", {"result": "done"}, 10_000) == {
        "structured_content": {"result": "done"}
    }
    assert bounded_result("42", {"result": 42}, 10_000) == {"structured_content": {"result": 42}}
    assert bounded_result("done", {"result": "other"}, 10_000)["text"] == "done"


def test_a_large_result_is_cut_with_a_note() -> None:
    seen = bounded_result("x" * 50_000, {"rows": list(range(5_000))}, 4_096)
    assert len(json.dumps(seen).encode()) <= 4_096
    assert seen["text"].startswith('{"rows":[0,1,2')
    assert "only the first" in seen["truncated"]


def test_content_blocks_that_are_not_text_are_described() -> None:
    image = types.ImageContent(type="image", data="aGk=", mime_type="image/png")
    assert describe_block(image) == "[image image/png not shown]"
    link = types.ResourceLink(type="resource_link", name="report", uri="file:///r.csv")
    assert describe_block(link) == "[resource report: file:///r.csv]"
    text = types.TextResourceContents(uri="file:///a.txt", text="inside")
    assert describe_block(types.EmbeddedResource(type="resource", resource=text)) == "inside"


def test_a_dot_in_a_tool_name_becomes_a_dash() -> None:
    assert spec_fields(tool("files.read"), source())["name"] == "crm__files-read"
