"""Shared helpers for the protocol tests: golden fixtures, the JSON Schema validators and
hypothesis strategies that build any frame from the same field tables the codec uses."""

import json
import os
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from protocol import (
    CLIENT_FRAMES,
    MAX_SAFE_INTEGER,
    SERVER_FRAMES,
    ClientFrame,
    ServerFrame,
    Thumb,
    decode_client,
    decode_server,
    json_schema,
)
from protocol.fields import TIMESTAMP_PATTERN, Kind
from protocol.layout import layout_of
from protocol.views import CURRENCY_PATTERN

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "frames"
SCHEMA_FILE = REPO / "docs" / "protocol.schema.json"

DECODERS: dict[str, Callable[[str | bytes], ClientFrame | ServerFrame]] = {
    "client": decode_client,
    "server": decode_server,
}
FRAME_CLASSES: dict[str, tuple[type, ...]] = {
    "client": tuple(CLIENT_FRAMES.values()),
    "server": tuple(SERVER_FRAMES.values()),
}


# ---------------------------------------------------------------------------------------------
# Golden fixtures
# ---------------------------------------------------------------------------------------------


def load_fixtures(folder: Path) -> list[dict[str, Any]]:
    """Every ``*.json`` fixture in ``folder``, sorted by file name."""
    return [json.loads(path.read_text("utf-8")) for path in sorted(folder.glob("*.json"))]


VALID_FIXTURES = load_fixtures(FIXTURES)
INVALID_FIXTURES = load_fixtures(FIXTURES / "invalid")


# ---------------------------------------------------------------------------------------------
# JSON Schema
# ---------------------------------------------------------------------------------------------


@cache
def schema_validator(direction: str) -> jsonschema.Draft202012Validator:
    """A validator for one direction's frames (``ClientFrame`` or ``ServerFrame``)."""
    schema = json_schema()
    name = {"client": "ClientFrame", "server": "ServerFrame"}[direction]
    schema["oneOf"] = [{"$ref": f"#/$defs/{name}"}]
    return jsonschema.Draft202012Validator(schema)


# ---------------------------------------------------------------------------------------------
# Hypothesis strategies
# ---------------------------------------------------------------------------------------------

# Frames are built from many fields, so generation is slower than hypothesis expects; the
# example count stays moderate because the machine running the suite is shared, and the fast
# tier (scripts/test --fast) asks for fewer still through PARLEY_HYPOTHESIS_EXAMPLES.
property_settings = settings(
    max_examples=int(os.environ.get("PARLEY_HYPOTHESIS_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
json_objects = st.dictionaries(st.text(max_size=8), json_values, max_size=4)
view_scalars = (
    st.text(max_size=20)
    | st.booleans()
    | st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER)
    | st.floats(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER)
)

_SIMPLE_KINDS: dict[str, st.SearchStrategy[Any]] = {
    "text": st.text(max_size=40),
    "short_text": st.text(max_size=200),
    "id": st.text(min_size=1, max_size=200),
    "timestamp": st.from_regex(TIMESTAMP_PATTERN, fullmatch=True),
    "bool": st.booleans(),
    "count": st.integers(min_value=0, max_value=MAX_SAFE_INTEGER),
    "number": st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER)
    | st.floats(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER),
    "amount": st.integers(min_value=0, max_value=MAX_SAFE_INTEGER)
    | st.floats(min_value=0, max_value=MAX_SAFE_INTEGER),
    "rating": st.integers(min_value=1, max_value=5) | st.sampled_from(Thumb),
    "json_object": json_objects,
    "json_value": json_values,
    "currency": st.from_regex(CURRENCY_PATTERN, fullmatch=True),
    "scalar": view_scalars,
    "row": st.dictionaries(st.text(max_size=8), st.none() | view_scalars, max_size=4),
}


def kind_strategy(kind: Kind) -> st.SearchStrategy[Any]:
    """Valid Python values for a field of ``kind``."""
    of: Any = kind.of
    if kind.name == "enum":
        return st.sampled_from(list(of))
    if kind.name == "object":
        return instances(of)
    if kind.name == "list":
        return st.lists(kind_strategy(of), max_size=3).map(tuple)
    if kind.name == "union":
        return st.one_of([instances(member) for member in of])
    return _SIMPLE_KINDS[kind.name]


@cache
def instances(cls: type) -> st.SearchStrategy[Any]:
    """Valid instances of a frame or value class, optional fields sometimes left out."""
    fields = {}
    for spec in layout_of(cls).fields:
        value = kind_strategy(spec.kind)
        fields[spec.name] = st.none() | value if spec.optional else value
    return st.fixed_dictionaries(fields).map(lambda kwargs: cls(**kwargs))


def frames(direction: str) -> st.SearchStrategy[Any]:
    """Valid frames of one direction."""
    return st.one_of([instances(cls) for cls in FRAME_CLASSES[direction]])
