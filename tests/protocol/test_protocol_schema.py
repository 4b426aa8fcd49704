"""The generated JSON Schema and its checked-in copy."""

import json
from pathlib import Path

import jsonschema
from protocol_support import SCHEMA_FILE

from protocol import CLIENT_FRAMES, SERVER_FRAMES, json_schema, write_schema


def test_checked_in_schema_equals_the_generated_one() -> None:
    # When this fails, run: .venv/bin/python -c "import protocol;
    # protocol.write_schema('docs/protocol.schema.json')"
    assert json.loads(SCHEMA_FILE.read_text("utf-8")) == json_schema()


def test_write_schema_writes_what_json_schema_returns(tmp_path: Path) -> None:
    target = tmp_path / "schema.json"
    write_schema(target)
    text = target.read_text("utf-8")
    assert json.loads(text) == json_schema()
    assert text.endswith("}\n")
    assert text == SCHEMA_FILE.read_text("utf-8")


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    schema = json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def test_schema_defines_every_frame_and_both_directions() -> None:
    schema = json_schema()
    defs = schema["$defs"]
    assert isinstance(defs, dict)
    for cls in [*CLIENT_FRAMES.values(), *SERVER_FRAMES.values()]:
        definition = defs[cls.__name__]
        assert definition["properties"]["type"] == {"const": cls.type.value}
        assert "type" in definition["required"]
        assert definition["description"]
    assert defs["ClientFrame"]["oneOf"] == [
        {"$ref": f"#/$defs/{cls.__name__}"} for cls in CLIENT_FRAMES.values()
    ]
    assert defs["ServerFrame"]["oneOf"] == [
        {"$ref": f"#/$defs/{cls.__name__}"} for cls in SERVER_FRAMES.values()
    ]
    assert len(schema["oneOf"]) == len({*CLIENT_FRAMES.values(), *SERVER_FRAMES.values()})  # type: ignore[arg-type]
    for name in ("UserInfo", "Usage", "ConversationSummary", "MessageSnapshot"):
        assert "type" not in defs[name]["properties"]


def test_every_reference_resolves() -> None:
    schema = json_schema()
    defs = schema["$defs"]
    assert isinstance(defs, dict)
    refs = {
        ref.removeprefix("#/$defs/")
        for ref in _values_of_key(schema, "$ref")
        if isinstance(ref, str)
    }
    assert refs <= set(defs)


def test_json_schema_returns_a_fresh_document_each_call() -> None:
    first = json_schema()
    first["$defs"]["Hello"]["properties"]["protocol"]["minimum"] = 99  # type: ignore[index]
    assert json_schema()["$defs"]["Hello"]["properties"]["protocol"]["minimum"] == 0  # type: ignore[index]


def _values_of_key(node: object, key: str) -> list[object]:
    if isinstance(node, dict):
        found = [node[key]] if key in node else []
        return found + [v for child in node.values() for v in _values_of_key(child, key)]
    if isinstance(node, list):
        return [v for child in node for v in _values_of_key(child, key)]
    return []
