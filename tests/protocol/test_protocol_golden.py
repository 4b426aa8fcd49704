"""The golden frame fixtures shared with client-js: every valid one decodes, re-encodes to the
same text and matches the JSON Schema; every invalid one fails with the stated error."""

import dataclasses
import json
from typing import Any

import pytest
from protocol_support import (
    DECODERS,
    FIXTURES,
    FRAME_CLASSES,
    INVALID_FIXTURES,
    VALID_FIXTURES,
    schema_validator,
)

from protocol import LOGGED_TYPES, ErrorCode, FrameType, ProtocolError, encode, to_dict

# JSON Schema cannot bound the nesting depth of free-form values; only the decoder enforces it.
SCHEMA_CANNOT_SEE = {"user-message-context-too-deep"}


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _ids(fixtures: list[dict[str, Any]]) -> list[str]:
    return [fixture["name"] for fixture in fixtures]


def test_fixture_files_are_well_formed() -> None:
    for path in [*FIXTURES.glob("*.json"), *FIXTURES.glob("invalid/*.json")]:
        fixture = json.loads(path.read_text("utf-8"))
        assert fixture["name"] == path.stem
        assert fixture["direction"] in ("client", "server")
        assert fixture["note"]
        assert isinstance(fixture["wire"], str)
        if path.parent.name == "invalid":
            assert set(fixture) == {"name", "note", "direction", "wire", "error"}
            assert set(fixture["error"]) == {"code", "field"}
        else:
            assert set(fixture) == {"name", "note", "direction", "frame", "wire"}


def test_every_frame_type_has_a_fixture_in_each_of_its_directions() -> None:
    covered = {(f["direction"], f["frame"]["type"]) for f in VALID_FIXTURES}
    expected = {
        (direction, cls.type) for direction, classes in FRAME_CLASSES.items() for cls in classes
    }
    assert expected <= covered


def test_fixtures_include_a_spliced_seq_variant() -> None:
    assert any(f["wire"].startswith('{"seq":') for f in VALID_FIXTURES)


@pytest.mark.parametrize("fixture", VALID_FIXTURES, ids=_ids(VALID_FIXTURES))
def test_valid_fixture_decodes_and_reencodes(fixture: dict[str, Any]) -> None:
    frame = DECODERS[fixture["direction"]](fixture["wire"])

    assert frame.type == fixture["frame"]["type"]
    assert to_dict(frame) == fixture["frame"]
    assert json.loads(fixture["wire"]) == fixture["frame"]
    # Byte input decodes to the same frame.
    assert DECODERS[fixture["direction"]](fixture["wire"].encode()) == frame

    wire = fixture["wire"]
    if wire.startswith('{"seq":'):
        # The frame log's form: encode without seq, then splice it in after the brace.
        seq = fixture["frame"]["seq"]
        unsequenced = encode(dataclasses.replace(frame, seq=None))
        assert f'{{"seq":{seq},' + unsequenced[1:] == wire
    else:
        assert encode(frame) == wire


@pytest.mark.parametrize("fixture", VALID_FIXTURES, ids=_ids(VALID_FIXTURES))
def test_valid_fixture_matches_json_schema(fixture: dict[str, Any]) -> None:
    schema_validator(fixture["direction"]).validate(json.loads(fixture["wire"]))


@pytest.mark.parametrize("fixture", VALID_FIXTURES, ids=_ids(VALID_FIXTURES))
def test_seq_appears_only_on_logged_frames(fixture: dict[str, Any]) -> None:
    if "seq" in fixture["frame"]:
        assert FrameType(fixture["frame"]["type"]) in LOGGED_TYPES
        assert fixture["direction"] == "server"


@pytest.mark.parametrize("fixture", INVALID_FIXTURES, ids=_ids(INVALID_FIXTURES))
def test_invalid_fixture_fails_with_stated_error(fixture: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError) as caught:
        DECODERS[fixture["direction"]](fixture["wire"])

    error = caught.value
    assert error.code == ErrorCode(fixture["error"]["code"])
    assert error.field == fixture["error"]["field"]
    assert error.message
    assert error.message == error.message.strip()
    assert error.message[0].islower()


@pytest.mark.parametrize("fixture", INVALID_FIXTURES, ids=_ids(INVALID_FIXTURES))
def test_invalid_fixture_is_rejected_by_json_schema(fixture: dict[str, Any]) -> None:
    try:
        document = json.loads(fixture["wire"], parse_constant=_reject_constant)
    except ValueError:
        return  # not JSON at all: nothing for a schema to judge
    if fixture["name"] in SCHEMA_CANNOT_SEE:
        assert schema_validator(fixture["direction"]).is_valid(document)
    else:
        assert not schema_validator(fixture["direction"]).is_valid(document)
