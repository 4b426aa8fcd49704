"""Property tests stating the codec's contract.

- Any frame survives encode → decode unchanged, and ``to_dict`` is the parsed encoding.
- Any text or bytes either decodes to a frame of that direction or raises ProtocolError with a
  decode error code: nothing else escapes, whatever the input (deep nesting, huge numbers,
  invalid UTF-8, NaN literals, lone surrogates, almost-valid frames).
- A frame that decodes can always be encoded again, to a text that decodes to the same frame.
- The JSON Schema accepts exactly the objects the decoder accepts.
"""

import json
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from protocol_support import (
    DECODERS,
    FRAME_CLASSES,
    frames,
    json_values,
    property_settings,
    schema_validator,
)

from protocol import MAX_VALUE_DEPTH, ErrorCode, ProtocolError, encode, to_dict

DIRECTIONS = ["client", "server"]
DECODE_CODES = {
    ErrorCode.INVALID_JSON,
    ErrorCode.INVALID_FRAME,
    ErrorCode.UNKNOWN_TYPE,
    ErrorCode.MISSING_FIELD,
    ErrorCode.INVALID_FIELD,
}


def decode_or_error(direction: str, data: str | bytes) -> Any:
    """Decode ``data``; return the frame, or None after checking the ProtocolError is sound.

    Any other exception propagates and fails the test.
    """
    try:
        frame = DECODERS[direction](data)
    except ProtocolError as exc:
        error = exc
    else:
        assert isinstance(frame, FRAME_CLASSES[direction])
        # Whatever decodes can be sent on: re-encoding works and is stable.
        assert DECODERS[direction](encode(frame)) == frame
        return frame
    assert error.code in DECODE_CODES
    assert error.message
    assert error.field is None or error.field
    return None


# ---------------------------------------------------------------------------------------------
# Round trip
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("direction", DIRECTIONS)
@property_settings
@given(data=st.data())
def test_encode_then_decode_returns_the_same_frame(direction: str, data: st.DataObject) -> None:
    frame = data.draw(frames(direction))
    text = encode(frame)

    assert DECODERS[direction](text) == frame
    assert DECODERS[direction](text.encode()) == frame
    assert orjson.loads(text) == to_dict(frame)
    assert text.startswith('{"type":')


@pytest.mark.parametrize("direction", DIRECTIONS)
@property_settings
@given(data=st.data())
def test_encoded_frames_match_the_json_schema(direction: str, data: st.DataObject) -> None:
    frame = data.draw(frames(direction))
    schema_validator(direction).validate(orjson.loads(encode(frame)))


@pytest.mark.parametrize("direction", DIRECTIONS)
@property_settings
@given(data=st.data())
def test_optional_fields_are_omitted_not_null(direction: str, data: st.DataObject) -> None:
    frame = data.draw(frames(direction))
    encoded = to_dict(frame)
    for name in type(frame).__dataclass_fields__:
        if getattr(frame, name) is None and name != "result":
            assert name not in encoded


# ---------------------------------------------------------------------------------------------
# Any input: a frame or ProtocolError
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("direction", DIRECTIONS)
@property_settings
@given(text=st.text())
def test_any_text_decodes_or_raises_protocol_error(direction: str, text: str) -> None:
    decode_or_error(direction, text)


@pytest.mark.parametrize("direction", DIRECTIONS)
@property_settings
@given(data=st.binary())
def test_any_bytes_decode_or_raise_protocol_error(direction: str, data: bytes) -> None:
    decode_or_error(direction, data)


@pytest.mark.parametrize("direction", DIRECTIONS)
@property_settings
@given(value=json_values)
def test_any_json_value_decodes_or_raises_protocol_error(direction: str, value: object) -> None:
    decode_or_error(direction, orjson.dumps(value))


@pytest.mark.parametrize("direction", DIRECTIONS)
@property_settings
@given(data=st.data())
def test_corrupted_bytes_of_a_frame_decode_or_raise(direction: str, data: st.DataObject) -> None:
    raw = bytearray(encode(data.draw(frames(direction))).encode())
    position = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
    # Bytes that are never valid in UTF-8 (0xC0, 0xC1, 0xF5-0xFF) and plain garbage.
    raw[position] = data.draw(st.sampled_from([0xC0, 0xFF, 0xED, 0x80, 0x00, ord("{"), ord('"')]))
    decode_or_error(direction, bytes(raw))


@pytest.mark.parametrize("direction", DIRECTIONS)
@property_settings
@given(data=st.data())
def test_lone_surrogates_are_invalid_json(direction: str, data: st.DataObject) -> None:
    text = encode(data.draw(frames(direction)))
    surrogate = data.draw(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF))
    position = data.draw(st.integers(min_value=1, max_value=len(text) - 1))
    with pytest.raises(ProtocolError) as caught:
        DECODERS[direction](text[:position] + surrogate + text[position:])
    assert caught.value.code == ErrorCode.INVALID_JSON


@pytest.mark.parametrize("direction", DIRECTIONS)
@property_settings
@given(number=st.integers() | st.floats(allow_nan=False, allow_infinity=False))
def test_any_number_in_a_numeric_field_decodes_or_raises(direction: str, number: float) -> None:
    n = json.dumps(number)  # Python writes integers of any size
    if direction == "client":
        texts = [
            '{"type":"hello","protocol":1,"last_seq":' + n + "}",
            '{"type":"ping","t":' + n + "}",
            '{"type":"feedback","message_id":"m","rating":' + n + "}",
            '{"type":"user_message","client_msg_id":"c","text":"","context":{"n":' + n + "}}",
        ]
    else:
        texts = [
            '{"seq":' + n + ',"type":"typing","conversation_id":"c","active":true}',
            '{"type":"error","code":"rate_limited","message":"m","retryable":true,"retry_after":'
            + n
            + "}",
            '{"type":"action_executed","token":"t","action":"a","ok":true,"audit_id":"a",'
            '"result":[' + n + "]}",
        ]
    for text in texts:
        decode_or_error(direction, text)


@pytest.mark.parametrize("direction", DIRECTIONS)
@property_settings
@given(
    depth=st.integers(min_value=0, max_value=3000),
    opener=st.sampled_from(["[", '{"k":']),
)
def test_deep_nesting_decodes_or_raises(direction: str, depth: int, opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    nested = opener * depth + "1" + closer * depth
    if direction == "client":
        text = (
            '{"type":"user_message","client_msg_id":"c","text":"","context":{"v":' + nested + "}}"
        )
    else:
        text = (
            '{"type":"action_executed","token":"t","action":"a","ok":true,"audit_id":"a","result":'
            + nested
            + "}"
        )
    frame = decode_or_error(direction, text)
    # The value sits one level below the frame object in client frames (inside context).
    allowed = MAX_VALUE_DEPTH - 1 if direction == "client" else MAX_VALUE_DEPTH
    assert (frame is not None) == (depth <= allowed)
    decode_or_error(direction, nested)


# ---------------------------------------------------------------------------------------------
# Almost-valid frames: decode and JSON Schema agree
# ---------------------------------------------------------------------------------------------


def _mutations(data: st.DataObject, document: dict[str, Any]) -> dict[str, Any]:
    """Apply one to three random edits to a frame's dict, at the top level or one level down."""
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        target = document
        nested = [key for key, value in document.items() if isinstance(value, dict) and value]
        if len(nested) > 0 and data.draw(st.booleans()):
            target = document[data.draw(st.sampled_from(sorted(nested)))]
        edit = data.draw(st.sampled_from(["delete", "replace", "add", "null"]))
        keys = sorted(target)
        if edit == "add" or not keys:
            target[data.draw(st.text(max_size=12))] = data.draw(json_values)
            continue
        key = data.draw(st.sampled_from(keys))
        if edit == "delete":
            del target[key]
        elif edit == "null":
            target[key] = None
        else:
            target[key] = data.draw(json_values | st.sampled_from(["up", "approve", "", "x" * 201]))
    return document


@pytest.mark.parametrize("direction", DIRECTIONS)
@property_settings
@given(data=st.data())
def test_schema_accepts_exactly_what_decode_accepts(direction: str, data: st.DataObject) -> None:
    frame = data.draw(frames(direction))
    document = _mutations(data, orjson.loads(encode(frame)))
    try:
        text = orjson.dumps(document)
    except TypeError:
        assume(False)  # a mutation built something deeper than the encoder writes
    decoded = decode_or_error(direction, text)
    assert (decoded is not None) == schema_validator(direction).is_valid(document)


@pytest.mark.parametrize("direction", DIRECTIONS)
@property_settings
@given(data=st.data(), extra=st.dictionaries(st.text(max_size=12), json_values, max_size=3))
def test_unknown_fields_are_ignored(
    direction: str, data: st.DataObject, extra: dict[str, object]
) -> None:
    frame = data.draw(frames(direction))
    document = to_dict(frame)
    document.update({key: value for key, value in extra.items() if key not in document})
    decode: Callable[[bytes], Any] = DECODERS[direction]
    assert decode(orjson.dumps(document)) == frame
