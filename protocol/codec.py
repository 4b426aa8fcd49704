"""Encode frames to JSON text and decode JSON text to frames.

Sans-I/O: text or bytes in, typed frames out, :class:`~protocol.errors.ProtocolError` raised.
The rules both directions follow:

- One JSON object per frame, ``type`` first, snake_case keys in the class's field order.
- Optional fields holding None are left out, never written as null; on decode an explicit null
  for an optional field counts as absent.
- Unknown keys are ignored; an unknown ``type`` is an error.
"""

from collections.abc import Mapping
from typing import Any, Final, cast

import orjson

from protocol.codes import ErrorCode
from protocol.errors import ProtocolError
from protocol.frames import (
    CLIENT_FRAMES,
    SERVER_FRAMES,
    ClientFrame,
    Frame,
    ServerFrame,
    ToolLine,
)
from protocol.layout import Layout, decode_fields, export_fields, layout_of

# Keyed by FrameType, whose members hash and compare like their string values, so the decoder
# looks the parsed ``type`` string up directly.
_CLIENT_LAYOUTS: Final[Mapping[str, Layout]] = {
    frame_type: layout_of(cls) for frame_type, cls in CLIENT_FRAMES.items()
}
_SERVER_LAYOUTS: Final[Mapping[str, Layout]] = {
    frame_type: layout_of(cls) for frame_type, cls in SERVER_FRAMES.items()
}
_FRAME_LAYOUTS: Final[Mapping[type, Layout]] = {
    layout.cls: layout for layout in (*_CLIENT_LAYOUTS.values(), *_SERVER_LAYOUTS.values())
}

_TOOL_LINE_LAYOUT: Final[Layout] = layout_of(ToolLine)

# Unknown type names are echoed in the error message; a hostile client should not be able to
# make that message arbitrarily long.
_MAX_ECHOED_TYPE = 50


def to_dict(frame: Frame) -> dict[str, object]:
    """Return the frame as the JSON-ready dict :func:`encode` serialises.

    Enums become their values, tuples lists and nested value classes dicts; optional fields
    holding None are left out.

    Raises:
        TypeError: ``frame`` is not a frame instance.
    """
    layout = _FRAME_LAYOUTS.get(type(frame))
    if layout is None:
        raise TypeError(f"not a frame: {type(frame).__name__}")
    return export_fields(layout, frame)


def tool_line_to_dict(line: ToolLine) -> dict[str, object]:
    """A snapshot's tool line as the JSON-ready dict it is in ``ready``, for the REST history."""
    return export_fields(_TOOL_LINE_LAYOUT, line)


def encode(frame: Frame) -> str:
    """Encode a frame as compact JSON text, ``type`` first.

    Raises:
        TypeError: ``frame`` is not a frame instance, or a free-form value in it (``context``,
            ``arguments``, ``params``, ``result``) is not JSON-serialisable.
    """
    return orjson.dumps(to_dict(frame)).decode()


def decode_client(data: str | bytes) -> ClientFrame:
    """Decode a frame a client sent.

    Raises:
        ProtocolError: ``invalid_json`` (not JSON or not UTF-8), ``invalid_frame`` (not an
            object), ``missing_field``/``invalid_field`` (field ``type`` absent or not a
            string, or any other field absent or wrong), ``unknown_type`` (a type clients do
            not send).
    """
    return cast(ClientFrame, _decode(data, _CLIENT_LAYOUTS))


def decode_server(data: str | bytes) -> ServerFrame:
    """Decode a frame the server sent; logged frames may carry ``seq`` anywhere in the object.

    Raises:
        ProtocolError: as :func:`decode_client`, with ``unknown_type`` for types the server
            does not send.
    """
    return cast(ServerFrame, _decode(data, _SERVER_LAYOUTS))


def _decode(data: str | bytes, layouts: Mapping[str, Layout]) -> Any:
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(
            ErrorCode.INVALID_JSON, f"frame is not valid JSON: {exc.msg} at char {exc.pos}"
        ) from None
    if type(obj) is not dict:
        raise ProtocolError(ErrorCode.INVALID_FRAME, "frame must be a JSON object")
    frame_type = obj.get("type")
    if type(frame_type) is not str:
        if "type" not in obj:
            raise ProtocolError(ErrorCode.MISSING_FIELD, "missing field 'type'", "type")
        raise ProtocolError(ErrorCode.INVALID_FIELD, "field 'type' must be a string", "type")
    layout = layouts.get(frame_type)
    if layout is None:
        shown = frame_type[:_MAX_ECHOED_TYPE]
        raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"unknown frame type '{shown}'", "type")
    return decode_fields(layout, obj, "")
