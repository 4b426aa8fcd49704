"""Control messages between workers: their JSON form, and what happens to data that is none."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import fakeredis
import pytest

from storage.control_messages import (
    CancelTurn,
    ConfirmationDecided,
    ControlMessage,
    ControlOp,
    PageToolAnswered,
    RunPageTool,
    StartNext,
    decode,
    encode,
)
from storage.errors import CorruptState
from storage.keys import UserKey
from storage.small_stores import ControlChannel

if TYPE_CHECKING:
    from tests.storage.conftest import StateRedis

CHANNEL = "parley:control"

MESSAGES: list[ControlMessage] = [
    CancelTurn(turn_id="t_1"),
    ConfirmationDecided(token="tok-1"),
    StartNext(owner=UserKey(tenant="acme", user="alice"), conversation_id="c_1"),
    RunPageTool(connection_id="cn_1", call_id="pt_1", name="open_record", arguments="{}"),
    PageToolAnswered(call_id="pt_1", outcome='{"result":1}'),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda message: message.op.value)
def test_each_message_survives_the_round_trip(message: ControlMessage) -> None:
    assert decode(encode(message), channel=CHANNEL) == message
    assert decode(encode(message).decode(), channel=CHANNEL) == message


def test_the_wire_form_is_the_one_workers_already_speak() -> None:
    # Workers of two releases share the channel during a rolling deploy.
    assert [encode(message) for message in MESSAGES] == [
        b'{"op":"cancel","turn_id":"t_1"}',
        b'{"op":"confirmation","token":"tok-1"}',
        b'{"op":"start_next","tenant":"acme","user":"alice","conversation_id":"c_1"}',
        b'{"op":"page_tool_call","connection_id":"cn_1","call_id":"pt_1",'
        b'"name":"open_record","arguments":"{}"}',
        b'{"op":"page_tool_answer","call_id":"pt_1","outcome":"{\\"result\\":1}"}',
    ]
    assert {message.op for message in MESSAGES} == set(ControlOp)


def test_unknown_fields_are_ignored() -> None:
    data = b'{"op":"cancel","turn_id":"t_1","reason":"from a newer worker"}'
    assert decode(data, channel=CHANNEL) == CancelTurn(turn_id="t_1")


def test_messages_are_frozen_values() -> None:
    message = CancelTurn(turn_id="t_1")
    with pytest.raises(AttributeError):
        message.turn_id = "t_2"  # type: ignore[misc]
    assert not hasattr(message, "__dict__")  # slotted
    assert hash(message) == hash(CancelTurn(turn_id="t_1"))


def test_encoding_something_else_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="not a control message: dict"):
        encode({"op": "cancel", "turn_id": "t_1"})  # type: ignore[arg-type]


BAD = [
    pytest.param(b"{nope", "not JSON", id="not-json"),
    pytest.param(b"\xff\xfe", "not JSON", id="not-utf8"),
    pytest.param(b'["cancel", "t_1"]', "not a JSON object but an array", id="array"),
    pytest.param(b"null", "not a JSON object but null", id="null"),
    pytest.param(b'{"turn_id":"t_1"}', "missing field 'op'", id="no-op"),
    pytest.param(b'{"op":7,"turn_id":"t_1"}', "field 'op' is a number, not a string", id="op-int"),
    pytest.param(b'{"op":"reboot"}', "unknown op 'reboot'", id="unknown-op"),
    pytest.param(b'{"op":"Cancel","turn_id":"t_1"}', "unknown op 'Cancel'", id="op-case"),
    pytest.param(b'{"op":"cancel"}', "cancel: missing field 'turn_id'", id="cancel-no-turn"),
    pytest.param(
        b'{"op":"cancel","turn_id":null}', "cancel: missing field 'turn_id'", id="cancel-null"
    ),
    pytest.param(
        b'{"op":"cancel","turn_id":42}',
        "cancel: field 'turn_id' is a number, not a string",
        id="cancel-turn-int",
    ),
    pytest.param(
        b'{"op":"cancel","turn_id":""}', "cancel: field 'turn_id' is empty", id="cancel-empty"
    ),
    pytest.param(
        b'{"op":"confirmation","token":["tok"]}',
        "confirmation: field 'token' is an array, not a string",
        id="token-array",
    ),
    pytest.param(
        b'{"op":"confirmation"}', "confirmation: missing field 'token'", id="confirmation-no-token"
    ),
    pytest.param(
        b'{"op":"start_next","tenant":"acme","conversation_id":"c_1"}',
        "start_next: missing field 'user'",
        id="start-next-no-user",
    ),
    pytest.param(
        b'{"op":"start_next","tenant":true,"user":"alice","conversation_id":"c_1"}',
        "start_next: field 'tenant' is a boolean, not a string",
        id="start-next-tenant-bool",
    ),
    pytest.param(
        b'{"op":"start_next","tenant":"acme","user":"alice","conversation_id":{}}',
        "start_next: field 'conversation_id' is an object, not a string",
        id="start-next-conversation-object",
    ),
]


@pytest.mark.parametrize(("data", "reason"), BAD)
def test_data_that_is_no_message_raises_with_the_reason(data: bytes, reason: str) -> None:
    with pytest.raises(CorruptState) as caught:
        decode(data, channel=CHANNEL)
    assert caught.value.reason == reason
    assert caught.value.key == CHANNEL


def test_a_long_unknown_op_is_cut_short_in_the_reason() -> None:
    with pytest.raises(CorruptState) as caught:
        decode(b'{"op":"' + b"x" * 10_000 + b'"}', channel=CHANNEL)
    assert len(caught.value.reason) < 80


@pytest.fixture
def control() -> ControlChannel:
    return ControlChannel(fakeredis.FakeAsyncRedis(), prefix="parley-test:")


@pytest.mark.parametrize(("data", "reason"), BAD)
def test_the_channel_logs_and_drops_what_is_no_message(
    control: ControlChannel, caplog: pytest.LogCaptureFixture, data: bytes, reason: str
) -> None:
    with caplog.at_level(logging.WARNING, logger="storage.small_stores"):
        assert control.read(data) is None
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage() == f"dropped a control message on parley-test:control: {reason}"


@pytest.mark.parametrize("message", MESSAGES, ids=lambda message: message.op.value)
def test_the_channel_reads_good_messages_without_a_warning(
    control: ControlChannel, caplog: pytest.LogCaptureFixture, message: ControlMessage
) -> None:
    with caplog.at_level(logging.WARNING, logger="storage.small_stores"):
        assert control.read(encode(message)) == message
    assert caplog.records == []


async def test_published_messages_reach_another_worker_typed(state_redis: StateRedis) -> None:
    sender = ControlChannel(state_redis.redis, prefix=state_redis.prefix)
    receiver = ControlChannel(await state_redis.new_client(), prefix=state_redis.prefix)
    pubsub = await state_redis.subscribe(receiver.channel)

    for message in MESSAGES:
        assert await sender.publish(message) == 1
    received: list[ControlMessage | None] = []
    async with asyncio.timeout(10):
        while len(received) < len(MESSAGES):
            raw = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if raw is not None:
                received.append(receiver.read(raw["data"]))
    assert received == MESSAGES
