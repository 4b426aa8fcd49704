"""Messages workers send each other over the control channel, and their JSON form.

Each message is a frozen value class; ``encode`` turns one into the bytes published on the
channel and ``decode`` turns received bytes back into one, the way ``protocol`` does for
frames. The JSON form is one object with ``op`` naming the message and its fields beside it::

    {"op": "cancel", "turn_id": "t_..."}
    {"op": "confirmation", "token": "..."}
    {"op": "start_next", "tenant": "...", "user": "...", "conversation_id": "c_..."}
    {"op": "page_tool_call", "connection_id": "...", "call_id": "...", "name": "...",
     "arguments": "{...}"}
    {"op": "page_tool_answer", "call_id": "...", "outcome": "{...}"}

Unknown keys are ignored, so a newer worker may add a field that an older one (during a
rolling deploy) does not know. Anything else that does not fit (not JSON, not an object, an
unknown ``op``, a missing or mistyped field) raises ``CorruptState``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar, Final

import orjson

from storage.errors import CorruptState
from storage.keys import UserKey


class ControlOp(StrEnum):
    """What a control message asks of the worker that receives it (its ``op``)."""

    CANCEL = "cancel"
    CONFIRMATION = "confirmation"
    START_NEXT = "start_next"
    PAGE_TOOL_CALL = "page_tool_call"
    PAGE_TOOL_ANSWER = "page_tool_answer"


@dataclass(frozen=True, slots=True)
class CancelTurn:
    """Stop the turn ``turn_id``: the worker running it cancels it, the others ignore this."""

    op: ClassVar[ControlOp] = ControlOp.CANCEL

    turn_id: str


@dataclass(frozen=True, slots=True)
class ConfirmationDecided:
    """The confirmation ``token`` was decided: the worker whose turn waits on it wakes it."""

    op: ClassVar[ControlOp] = ControlOp.CONFIRMATION

    token: str


@dataclass(frozen=True, slots=True)
class StartNext:
    """Run the next message waiting in ``owner``'s conversation; a worker that is shutting down
    sends this, every worker tries, and the conversation's turn slot lets exactly one run it."""

    op: ClassVar[ControlOp] = ControlOp.START_NEXT

    owner: UserKey
    conversation_id: str


@dataclass(frozen=True, slots=True)
class RunPageTool:
    """Run a page tool in the tab ``connection_id``: the worker holding that connection sends
    it the call, the others ignore this. ``arguments`` is the arguments' JSON text."""

    op: ClassVar[ControlOp] = ControlOp.PAGE_TOOL_CALL

    connection_id: str
    call_id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class PageToolAnswered:
    """The page tool call ``call_id`` ended: the worker whose turn waits on it takes
    ``outcome``, the JSON text of ``{"result": ...}`` or ``{"error": "..."}``."""

    op: ClassVar[ControlOp] = ControlOp.PAGE_TOOL_ANSWER

    call_id: str
    outcome: str


ControlMessage = CancelTurn | ConfirmationDecided | StartNext | RunPageTool | PageToolAnswered

# Unknown ops and wrong values are echoed in the reason; a hostile publisher should not be
# able to make a log line arbitrarily long.
_MAX_ECHOED = 50


def encode(message: ControlMessage) -> bytes:
    """The JSON bytes to publish for ``message``, ``op`` first.

    Raises:
        TypeError: ``message`` is not a control message.
    """
    fields: dict[str, str]
    match message:
        case CancelTurn(turn_id=turn_id):
            fields = {"turn_id": turn_id}
        case ConfirmationDecided(token=token):
            fields = {"token": token}
        case StartNext(owner=owner, conversation_id=conversation_id):
            fields = {
                "tenant": owner.tenant,
                "user": owner.user,
                "conversation_id": conversation_id,
            }
        case RunPageTool(
            connection_id=connection_id, call_id=call_id, name=name, arguments=arguments
        ):
            fields = {
                "connection_id": connection_id,
                "call_id": call_id,
                "name": name,
                "arguments": arguments,
            }
        case PageToolAnswered(call_id=call_id, outcome=outcome):
            fields = {"call_id": call_id, "outcome": outcome}
        case _:
            raise TypeError(f"not a control message: {type(message).__name__}")
    return orjson.dumps({"op": message.op.value, **fields})


def decode(data: bytes | str, *, channel: str) -> ControlMessage:
    """The message ``data`` holds, as received on ``channel``.

    Raises:
        CorruptState: ``data`` is not a JSON object, names no known ``op``, or lacks a field
            (or has one that is not a non-empty string); ``reason`` says which.
    """
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise CorruptState(channel, "not JSON") from exc
    if not isinstance(parsed, dict):
        raise CorruptState(channel, f"not a JSON object but {_json_kind(parsed)}")
    op = parsed.get("op")
    if op is None:
        raise CorruptState(channel, "missing field 'op'")
    if not isinstance(op, str):
        raise CorruptState(channel, f"field 'op' is {_json_kind(op)}, not a string")
    if op not in _DECODERS:
        raise CorruptState(channel, f"unknown op {_echo(op)}")
    return _DECODERS[op](parsed, channel)


def _decode_cancel(fields: Mapping[str, object], channel: str) -> CancelTurn:
    return CancelTurn(turn_id=_text(fields, "turn_id", channel))


def _decode_confirmation(fields: Mapping[str, object], channel: str) -> ConfirmationDecided:
    return ConfirmationDecided(token=_text(fields, "token", channel))


def _decode_start_next(fields: Mapping[str, object], channel: str) -> StartNext:
    return StartNext(
        owner=UserKey(tenant=_text(fields, "tenant", channel), user=_text(fields, "user", channel)),
        conversation_id=_text(fields, "conversation_id", channel),
    )


def _decode_run_page_tool(fields: Mapping[str, object], channel: str) -> RunPageTool:
    return RunPageTool(
        connection_id=_text(fields, "connection_id", channel),
        call_id=_text(fields, "call_id", channel),
        name=_text(fields, "name", channel),
        arguments=_text(fields, "arguments", channel),
    )


def _decode_page_tool_answer(fields: Mapping[str, object], channel: str) -> PageToolAnswered:
    return PageToolAnswered(
        call_id=_text(fields, "call_id", channel), outcome=_text(fields, "outcome", channel)
    )


# Keyed by ControlOp, whose members hash and compare like their string values, so the decoder
# looks the parsed ``op`` string up directly.
_DECODERS: Final[Mapping[str, Callable[[Mapping[str, object], str], ControlMessage]]] = {
    ControlOp.CANCEL: _decode_cancel,
    ControlOp.CONFIRMATION: _decode_confirmation,
    ControlOp.START_NEXT: _decode_start_next,
    ControlOp.PAGE_TOOL_CALL: _decode_run_page_tool,
    ControlOp.PAGE_TOOL_ANSWER: _decode_page_tool_answer,
}


def _text(fields: Mapping[str, object], name: str, channel: str) -> str:
    value = fields.get(name)
    if value is None:
        raise CorruptState(channel, f"{fields['op']}: missing field {name!r}")
    if not isinstance(value, str):
        raise CorruptState(
            channel, f"{fields['op']}: field {name!r} is {_json_kind(value)}, not a string"
        )
    if not value:
        raise CorruptState(channel, f"{fields['op']}: field {name!r} is empty")
    return value


def _json_kind(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "null"


def _echo(text: str) -> str:
    if len(text) > _MAX_ECHOED:
        return repr(text[:_MAX_ECHOED] + "…")
    return repr(text)
