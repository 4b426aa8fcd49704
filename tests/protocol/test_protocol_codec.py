"""Codec behaviour the golden fixtures do not pin down on their own."""

from types import MappingProxyType

import orjson
import pytest

from protocol import (
    MAX_VALUE_DEPTH,
    ActionExecuted,
    Confirm,
    Decision,
    Error,
    ErrorCode,
    Feedback,
    Hello,
    Ping,
    ProtocolError,
    Ready,
    Role,
    Thumb,
    ToolCall,
    Typing,
    UserInfo,
    UserMessage,
    decode_client,
    decode_server,
    encode,
    to_dict,
    tool_line_to_dict,
)
from tests.protocol.protocol_support import FIXTURES


def decode_error(data: str | bytes, *, server: bool = False) -> ProtocolError:
    with pytest.raises(ProtocolError) as caught:
        (decode_server if server else decode_client)(data)
    return caught.value


# ---------------------------------------------------------------------------------------------
# Encoding
# ---------------------------------------------------------------------------------------------


def test_encode_writes_type_first_then_fields_in_declaration_order() -> None:
    frame = Hello(client="web/2", last_seq=3, epoch="ep", token="tok", protocol=1)
    assert encode(frame) == (
        '{"type":"hello","protocol":1,"token":"tok","epoch":"ep","last_seq":3,"client":"web/2"}'
    )


def test_to_dict_returns_plain_values() -> None:
    frame = Feedback(message_id="m", rating=Thumb.UP)
    assert to_dict(frame) == {"type": "feedback", "message_id": "m", "rating": "up"}
    assert type(to_dict(frame)["rating"]) is str
    assert type(to_dict(Confirm(token="t", decision=Decision.REJECT))["decision"]) is str


def test_to_dict_turns_tuples_and_value_classes_into_lists_and_dicts() -> None:
    ready = Ready(
        protocol=1,
        connection_id="c",
        user=UserInfo(id="u", tenant="t", roles=("a", "b")),
        epoch="e",
        last_seq=0,
        resumed=True,
        pending_confirmations=(),
        active_turns=(),
    )
    as_dict = to_dict(ready)
    assert as_dict["user"] == {"id": "u", "tenant": "t", "roles": ["a", "b"]}
    assert as_dict["pending_confirmations"] == []


def test_a_tool_line_reads_as_in_the_ready_snapshot() -> None:
    # The REST history carries a snapshot's tool lines: the same JSON, view and export included.
    fixture = orjson.loads((FIXTURES / "ready-tool-lines.json").read_bytes())
    ready = decode_server(orjson.dumps(fixture["frame"]))
    assert isinstance(ready, Ready)
    (answer,) = [message for message in ready.messages if message.tools]
    expected = next(
        message["tools"] for message in fixture["frame"]["messages"] if message.get("tools")
    )
    assert [tool_line_to_dict(line) for line in answer.tools or ()] == expected


def test_encode_accepts_any_mapping_for_free_form_objects() -> None:
    frame = ToolCall(
        conversation_id="c",
        turn_id="t",
        call_id="k",
        name="n",
        arguments=MappingProxyType({"a": [1, 2]}),
    )
    assert encode(frame).endswith('"arguments":{"a":[1,2]}}')


def test_a_required_null_json_value_is_written_as_null() -> None:
    frame = ActionExecuted(token="t", action="a", ok=True, result=None, audit_id="x")
    assert '"result":null' in encode(frame)


@pytest.mark.parametrize(
    "not_a_frame", [object(), {"type": "ping"}, UserInfo(id="u", tenant="t", roles=())]
)
def test_encoding_something_that_is_not_a_frame_is_a_type_error(not_a_frame: object) -> None:
    with pytest.raises(TypeError, match="not a frame"):
        encode(not_a_frame)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not a frame"):
        to_dict(not_a_frame)  # type: ignore[arg-type]


def test_frames_are_frozen_and_slotted() -> None:
    frame = Ping(t=1)
    with pytest.raises(AttributeError):
        frame.t = 2  # type: ignore[misc]
    assert not hasattr(frame, "__dict__")


# ---------------------------------------------------------------------------------------------
# Decoding: what is accepted
# ---------------------------------------------------------------------------------------------


def test_explicit_null_for_an_optional_field_counts_as_absent() -> None:
    frame = decode_client('{"type":"hello","protocol":1,"token":null,"last_seq":null}')
    assert frame == Hello(protocol=1)


def test_unknown_fields_are_ignored() -> None:
    frame = decode_client('{"type":"ping","t":5,"future_field":{"x":[1]}}')
    assert frame == Ping(t=5)


def test_integral_floats_count_as_integers_as_in_json_schema() -> None:
    frame = decode_client('{"type":"hello","protocol":1.0,"last_seq":42.0}')
    assert frame == Hello(protocol=1, last_seq=42)
    assert isinstance(frame, Hello)
    assert type(frame.last_seq) is int
    assert encode(frame) == '{"type":"hello","protocol":1,"last_seq":42}'


def test_numbers_keep_their_json_type() -> None:
    assert decode_client('{"type":"ping","t":5}') == Ping(t=5)
    assert type(decode_client('{"type":"ping","t":5}').t) is int  # type: ignore[union-attr]
    assert type(decode_client('{"type":"ping","t":5.0}').t) is float  # type: ignore[union-attr]


def test_ratings_accept_scores_and_thumbs() -> None:
    assert decode_client('{"type":"feedback","message_id":"m","rating":5}').rating == 5  # type: ignore[union-attr]
    thumb = decode_client('{"type":"feedback","message_id":"m","rating":"down"}')
    assert thumb.rating is Thumb.DOWN  # type: ignore[union-attr]


def test_enums_decode_to_members() -> None:
    frame = decode_server(
        '{"type":"message","conversation_id":"c","message_id":"m","client_msg_id":"k",'
        '"role":"assistant","text":"hi"}'
    )
    assert frame.role is Role.ASSISTANT  # type: ignore[union-attr]


def test_seq_is_accepted_anywhere_in_a_server_frame() -> None:
    first = decode_server('{"seq":9,"type":"typing","conversation_id":"c","active":true}')
    last = decode_server('{"type":"typing","conversation_id":"c","active":true,"seq":9}')
    assert first == last == Typing(conversation_id="c", active=True, seq=9)


def test_typing_is_the_same_class_in_both_directions() -> None:
    text = '{"type":"typing","conversation_id":"c","active":false}'
    assert decode_client(text) == decode_server(text)


def test_free_form_values_may_nest_up_to_the_limit() -> None:
    value = "[" * (MAX_VALUE_DEPTH - 1) + "]" * (MAX_VALUE_DEPTH - 1)
    text = '{"type":"user_message","client_msg_id":"c","text":"t","context":{"a":' + value + "}}"
    frame = decode_client(text)
    assert decode_client(encode(frame)) == frame


def test_bytes_of_every_buffer_kind_decode() -> None:
    raw = b'{"type":"ping","t":1}'
    for data in (raw, bytearray(raw), memoryview(raw)):
        assert decode_client(data) == Ping(t=1)  # type: ignore[arg-type]


def test_duplicate_keys_keep_the_last_value() -> None:
    assert decode_client('{"type":"ping","t":1,"t":2}') == Ping(t=2)


# ---------------------------------------------------------------------------------------------
# Decoding: what is refused, and how the error reads
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        '{"type":"ping","t":NaN}',
        '{"type":"ping","t":-Infinity}',
        '{"type":"ping","t":Infinity}',
        '{"type":"ping","t":nan}',
        '{"type":"ping","t":1e400}',
        '{"type":"ping"}\x00',
        "\ufeff" + '{"type":"ping"}',
        '{"type":"ping","t":1,}',
        "{'type':'ping'}",
        "[" * 5000 + "]" * 5000,
        '{"type":"user_message","client_msg_id":"c","text":"\\ud800"}',
    ],
)
def test_text_that_is_not_strict_json_is_invalid_json(text: str) -> None:
    error = decode_error(text)
    assert error.code == ErrorCode.INVALID_JSON
    assert error.field is None
    assert error.message.startswith("frame is not valid JSON: ")


@pytest.mark.parametrize(
    "data",
    [
        b'{"type":"user_message","client_msg_id":"c","text":"\xff"}',
        b'{"type":"user_message","client_msg_id":"c","text":"\xc0\xaf"}',
        b'{"type":"user_message","client_msg_id":"c","text":"\xed\xa0\x80"}',
        b'{"type":"ping","t":1\x80}',
        b"\xfe\xff\x00{",
    ],
)
def test_bytes_that_are_not_utf8_are_invalid_json(data: bytes) -> None:
    assert decode_error(data).code == ErrorCode.INVALID_JSON


def test_a_lone_surrogate_character_in_text_input_is_invalid_json() -> None:
    assert decode_error('{"type":"ping","x":"\ud800"}').code == ErrorCode.INVALID_JSON


@pytest.mark.parametrize("text", ["[]", "1", '"ping"', "null", "true", "1.5"])
def test_json_that_is_not_an_object_is_an_invalid_frame(text: str) -> None:
    error = decode_error(text, server=True)
    assert (error.code, error.field, error.message) == (
        ErrorCode.INVALID_FRAME,
        None,
        "frame must be a JSON object",
    )


def test_messages_name_the_offending_thing() -> None:
    assert decode_error('{"type":"foo"}').message == "unknown frame type 'foo'"
    assert decode_error('{"type":"user_message","client_msg_id":"c"}').message == (
        "missing field 'text'"
    )
    assert decode_error('{"type":"hello","protocol":1,"last_seq":-4}').message == (
        "field 'last_seq' must be a non-negative integer"
    )
    assert decode_error('{"type":[1]}').message == "field 'type' must be a string"
    assert decode_error("{}").message == "missing field 'type'"


def test_an_unknown_type_is_echoed_shortened() -> None:
    error = decode_error('{"type":"' + "x" * 10_000 + '"}')
    assert error.code == ErrorCode.UNKNOWN_TYPE
    assert error.message == "unknown frame type '" + "x" * 50 + "'"


def test_small_enums_list_their_values_and_large_ones_do_not() -> None:
    small = decode_error('{"type":"confirm","token":"t","decision":"yes"}')
    assert small.message == "field 'decision' must be one of 'approve', 'reject'"
    large = decode_error(
        '{"type":"error","code":"nope","message":"m","retryable":true}', server=True
    )
    assert large.message == "field 'code' must be a known value"
    # A value that is not even a string gets the same answer.
    number = decode_error('{"type":"confirm","token":"t","decision":1}')
    assert number.message == "field 'decision' must be one of 'approve', 'reject'"


@pytest.mark.parametrize(
    ("text", "field", "problem"),
    [
        ('{"type":"ping","t":true}', "t", "must be a number"),
        ('{"type":"ping","t":9007199254740992}', "t", "must be a number"),
        ('{"type":"ping","t":-9007199254740992}', "t", "must be a number"),
        (
            '{"type":"hello","protocol":1,"client":5}',
            "client",
            "must be a string of at most 200 characters",
        ),
        ('{"type":"hello","protocol":1,"token":5}', "token", "must be a string"),
        ('{"type":"typing","conversation_id":"c","active":1}', "active", "must be a boolean"),
        (
            '{"type":"feedback","message_id":"m","rating":0}',
            "rating",
            "must be an integer from 1 to 5, 'up' or 'down'",
        ),
        (
            '{"type":"feedback","message_id":"m","rating":2.5}',
            "rating",
            "must be an integer from 1 to 5, 'up' or 'down'",
        ),
        (
            '{"type":"feedback","message_id":"m","rating":null}',
            "rating",
            "must be an integer from 1 to 5, 'up' or 'down'",
        ),
        (
            '{"type":"user_message","client_msg_id":"c","text":"t","context":"x"}',
            "context",
            "must be an object",
        ),
    ],
)
def test_invalid_field_messages(text: str, field: str, problem: str) -> None:
    error = decode_error(text)
    assert (error.code, error.field, error.message) == (
        ErrorCode.INVALID_FIELD,
        field,
        f"field '{field}' {problem}",
    )


def test_nested_paths_name_list_items_and_object_fields() -> None:
    text = (
        '{"type":"ready","protocol":1,"connection_id":"c","user":{"id":"u","tenant":"t",'
        '"roles":["ok",""]},"epoch":"e","last_seq":0,"resumed":true,'
        '"pending_confirmations":[],"active_turns":[]}'
    )
    error = decode_error(text, server=True)
    assert error.field == "user.roles[1]"
    assert error.message == "field 'user.roles[1]' must be a string of 1 to 200 characters"


def test_nested_value_classes_must_be_objects() -> None:
    text = (
        '{"type":"response","conversation_id":"c","turn_id":"t","message_id":"m","text":"",'
        '"usage":[1]}'
    )
    assert decode_error(text, server=True).message == "field 'usage' must be an object"
    text = (
        '{"type":"ready","protocol":1,"connection_id":"c","user":{"id":"u","tenant":"t",'
        '"roles":[]},"epoch":"e","last_seq":0,"resumed":true,'
        '"pending_confirmations":[],"active_turns":{}}'
    )
    assert decode_error(text, server=True).message == "field 'active_turns' must be an array"


@pytest.mark.parametrize("depth", [MAX_VALUE_DEPTH + 1, 500, 1000])
def test_free_form_values_nested_too_deep_are_invalid_fields(depth: int) -> None:
    value = "[" * depth + "]" * depth
    client = decode_error(
        '{"type":"user_message","client_msg_id":"c","text":"t","context":{"a":' + value + "}}"
    )
    assert client.field == "context"
    assert client.message == f"field 'context' must not nest deeper than {MAX_VALUE_DEPTH} levels"
    server = decode_error(
        '{"type":"action_executed","token":"t","action":"a","ok":true,"audit_id":"x",'
        '"result":' + value + "}",
        server=True,
    )
    assert server.field == "result"


@pytest.mark.parametrize(
    "timestamp",
    [
        "2026-11-22T16:50:00",
        "2026-11-22T16:50:00+00:00",
        "2026-11-22 16:50:00Z",
        "2026-13-22T16:50:00Z",
        "2026-11-22T24:00:00Z",
        "2026-11-22T16:50:00.Z",
        "2026-11-22T16:50:00Z\n",
        "\uff12\uff10\uff12\uff16-11-22T16:50:00Z",
    ],
)
def test_timestamps_must_be_utc_iso_8601(timestamp: str) -> None:
    frame = {
        "type": "confirm_request",
        "conversation_id": "c",
        "turn_id": "t",
        "token": "k",
        "action": "a",
        "params": {},
        "summary": "s",
        "expires_at": timestamp,
    }
    error = decode_error(orjson.dumps(frame), server=True)
    assert error.field == "expires_at"


def test_error_frames_round_trip_their_code_enum() -> None:
    frame = Error(code=ErrorCode.TURN_IN_PROGRESS, message="busy", retryable=True, retry_after=0)
    assert decode_server(encode(frame)) == frame


def test_protocol_error_carries_its_fields() -> None:
    error = ProtocolError(ErrorCode.MISSING_FIELD, "missing field 'text'", "text")
    assert str(error) == "missing field 'text'"
    assert repr(error) == "ProtocolError('missing_field', \"missing field 'text'\", field='text')"
    assert ProtocolError(ErrorCode.INVALID_JSON, "bad").field is None


def test_user_message_text_may_be_empty_and_long() -> None:
    # Length limits are the server's configuration (message_too_long), not the codec's.
    for text in ("", "x" * 100_000):
        frame = UserMessage(client_msg_id="c", text=text)
        assert decode_client(encode(frame)) == frame
