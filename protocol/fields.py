"""Field kinds: how one wire field is checked on decode, exported on encode and described in
the JSON Schema.

Frame classes annotate their fields with the aliases at the bottom of this module (``Id``,
``Count``, ``Timestamp``, ...). :mod:`protocol.layout` reads those annotations once at import
and turns every class into a table of ``(name, check, optional)`` rows, so the decoder runs
plain function calls per field and the schema is generated from the very same checks.

A check takes ``(value, parent, key)``: the parsed JSON value, the path of the object holding
it and its key there (a list index for list items). It returns the value to store in the frame
and raises :class:`~protocol.errors.ProtocolError` (``invalid_field``) otherwise. The path is
only spelled out when an error is raised, which keeps the happy path free of string building.
"""

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Final, TypeAlias

from protocol.codes import ErrorCode, Thumb
from protocol.errors import ProtocolError

MAX_ID_LENGTH: Final = 200
"""Ids, names and ``hello.client`` are at most this many characters."""

MAX_SAFE_INTEGER: Final = 2**53 - 1
"""Every number in a typed field lies within ±this, so a JavaScript client reads it exactly."""

MAX_VALUE_DEPTH: Final = 64
"""Free-form values (``context``, ``arguments``, ``params``, ``result``) nest at most this deep.

The JSON parser accepts 1024 levels but the encoder stops at 254, so without this bound a frame
could decode and then fail to encode again when it is mirrored to other tabs.
"""

TIMESTAMP_PATTERN: Final = (
    r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?Z$"
)
"""ISO 8601 in UTC with a ``Z`` suffix, e.g. ``2026-11-22T16:50:00Z`` (fraction optional)."""

Check: TypeAlias = Callable[[Any, str, str | int], object]
Export: TypeAlias = Callable[[Any], object]


# eq=False: kinds are compared and hashed by identity, which Annotated metadata must support.
@dataclass(frozen=True, slots=True, eq=False)
class Kind:
    """What a field may hold on the wire.

    Attributes:
        name: Short label (``"id"``, ``"count"``, ``"enum"``, ``"list"``, ...).
        check: Validates and converts a parsed JSON value; see the module docstring.
        schema: The JSON Schema fragment that accepts exactly what ``check`` accepts.
        export: Turns the stored Python value back into a JSON-ready one; None when the value
            already is one.
        of: For ``enum``, ``object`` and ``list`` kinds built by :mod:`protocol.layout`: the
            enum class, the value class, or the item :class:`Kind`.
    """

    name: str
    check: Check
    schema: Mapping[str, object]
    export: Export | None = None
    of: object = None


def field_path(parent: str, key: str | int) -> str:
    """Join a parent path and a key, e.g. ``user.roles`` or ``pending_confirmations[0]``."""
    if isinstance(key, int):
        return f"{parent}[{key}]"
    return f"{parent}.{key}" if parent else key


def invalid(parent: str, key: str | int, problem: str) -> ProtocolError:
    """Build the ``invalid_field`` error for the field at ``parent``/``key``."""
    path = field_path(parent, key)
    return ProtocolError(ErrorCode.INVALID_FIELD, f"field '{path}' {problem}", path)


def _as_int(value: object) -> int | None:
    """Return ``value`` as an int when it is a JSON integer, else None.

    JSON Schema counts ``5.0`` as an integer and a JavaScript client cannot tell it from ``5``,
    so an integral float is accepted too. ``bool`` is not an integer here.
    """
    if type(value) is int:
        return value
    if type(value) is float and value.is_integer():
        return int(value)
    return None


def _within_depth(value: object, levels: int) -> bool:
    """Tell whether ``value`` nests at most ``levels`` arrays/objects deep."""
    if type(value) is dict:
        children: Any = value.values()
    elif type(value) is list:
        children = value
    else:
        return True
    if levels == 0:
        return False
    return all(_within_depth(child, levels - 1) for child in children)


# ---------------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------------


def _check_text(value: object, parent: str, key: str | int) -> object:
    if type(value) is str:
        return value
    raise invalid(parent, key, "must be a string")


def _check_short_text(value: object, parent: str, key: str | int) -> object:
    if type(value) is str and len(value) <= MAX_ID_LENGTH:
        return value
    raise invalid(parent, key, f"must be a string of at most {MAX_ID_LENGTH} characters")


def _check_id(value: object, parent: str, key: str | int) -> object:
    if type(value) is str and 0 < len(value) <= MAX_ID_LENGTH:
        return value
    raise invalid(parent, key, f"must be a string of 1 to {MAX_ID_LENGTH} characters")


_TIMESTAMP: Final = re.compile(TIMESTAMP_PATTERN)


def _check_timestamp(value: object, parent: str, key: str | int) -> object:
    if type(value) is str and _TIMESTAMP.fullmatch(value) is not None:
        return value
    raise invalid(parent, key, "must be an ISO 8601 UTC timestamp like '2026-11-22T16:50:00Z'")


def _check_bool(value: object, parent: str, key: str | int) -> object:
    if type(value) is bool:
        return value
    raise invalid(parent, key, "must be a boolean")


def _check_count(value: object, parent: str, key: str | int) -> object:
    number = _as_int(value)
    if number is not None and 0 <= number <= MAX_SAFE_INTEGER:
        return number
    raise invalid(parent, key, "must be a non-negative integer")


def _check_number(value: object, parent: str, key: str | int) -> object:
    # The parser never yields NaN or infinities; the range check would refuse them anyway.
    if (type(value) is int or type(value) is float) and (
        -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER
    ):
        return value
    raise invalid(parent, key, "must be a number")


def _check_amount(value: object, parent: str, key: str | int) -> object:
    if (type(value) is int or type(value) is float) and (0 <= value <= MAX_SAFE_INTEGER):
        return value
    raise invalid(parent, key, "must be a non-negative number")


_THUMBS: Final = {thumb.value: thumb for thumb in Thumb}


def _check_rating(value: object, parent: str, key: str | int) -> object:
    if type(value) is str:
        thumb = _THUMBS.get(value)
        if thumb is not None:
            return thumb
    else:
        score = _as_int(value)
        if score is not None and 1 <= score <= 5:
            return score
    raise invalid(parent, key, "must be an integer from 1 to 5, 'up' or 'down'")


def _check_object(value: object, parent: str, key: str | int) -> object:
    if type(value) is not dict:
        raise invalid(parent, key, "must be an object")
    if not _within_depth(value, MAX_VALUE_DEPTH):
        raise invalid(parent, key, f"must not nest deeper than {MAX_VALUE_DEPTH} levels")
    return value


def _check_json(value: object, parent: str, key: str | int) -> object:
    if _within_depth(value, MAX_VALUE_DEPTH):
        return value
    raise invalid(parent, key, f"must not nest deeper than {MAX_VALUE_DEPTH} levels")


def _export_mapping(value: Mapping[str, object]) -> object:
    # The encoder serialises dicts only; any other Mapping is copied once at the top level.
    return value if type(value) is dict else dict(value)


def _export_rating(value: int | Thumb) -> object:
    return value if type(value) is int else str(value)


# ---------------------------------------------------------------------------------------------
# Kinds and the annotation aliases frame classes use
# ---------------------------------------------------------------------------------------------

_INT_RANGE: Final = {"minimum": -MAX_SAFE_INTEGER, "maximum": MAX_SAFE_INTEGER}

TEXT: Final = Kind("text", _check_text, {"type": "string"})
SHORT_TEXT: Final = Kind(
    "short_text", _check_short_text, {"type": "string", "maxLength": MAX_ID_LENGTH}
)
ID: Final = Kind("id", _check_id, {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH})
TIMESTAMP: Final = Kind(
    "timestamp", _check_timestamp, {"type": "string", "pattern": TIMESTAMP_PATTERN}
)
BOOL: Final = Kind("bool", _check_bool, {"type": "boolean"})
COUNT: Final = Kind(
    "count", _check_count, {"type": "integer", "minimum": 0, "maximum": MAX_SAFE_INTEGER}
)
NUMBER: Final = Kind("number", _check_number, {"type": "number", **_INT_RANGE})
AMOUNT: Final = Kind(
    "amount", _check_amount, {"type": "number", "minimum": 0, "maximum": MAX_SAFE_INTEGER}
)
RATING: Final = Kind(
    "rating",
    _check_rating,
    {
        "anyOf": [
            {"type": "integer", "minimum": 1, "maximum": 5},
            {"enum": [thumb.value for thumb in Thumb]},
        ]
    },
    export=_export_rating,
)
JSON_OBJECT: Final = Kind("json_object", _check_object, {"type": "object"}, export=_export_mapping)
JSON_VALUE: Final = Kind("json_value", _check_json, {})

Id: TypeAlias = Annotated[str, ID]
"""An identifier: 1 to 200 characters."""
Name: TypeAlias = Annotated[str, ID]
"""A tool, action or role name: 1 to 200 characters."""
ShortText: TypeAlias = Annotated[str, SHORT_TEXT]
"""Free text of at most 200 characters."""
Timestamp: TypeAlias = Annotated[str, TIMESTAMP]
"""An ISO 8601 UTC timestamp string, e.g. ``2026-11-22T16:50:00Z``."""
Count: TypeAlias = Annotated[int, COUNT]
"""A non-negative integer up to 2**53 - 1."""
Number: TypeAlias = Annotated[float, NUMBER]
"""Any number within ±(2**53 - 1); ints stay ints."""
Amount: TypeAlias = Annotated[float, AMOUNT]
"""A non-negative number up to 2**53 - 1 (seconds, dollars)."""
Rating: TypeAlias = Annotated[int | Thumb, RATING]
"""A 1-5 score or a thumb."""
JsonObject: TypeAlias = Annotated[Mapping[str, object], JSON_OBJECT]
"""Any JSON object nested at most :data:`MAX_VALUE_DEPTH` levels."""
JsonValue: TypeAlias = Annotated[object, JSON_VALUE]
"""Any JSON value, null included, nested at most :data:`MAX_VALUE_DEPTH` levels."""
