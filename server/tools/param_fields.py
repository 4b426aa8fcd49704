"""How a confirmation card shows an action's parameters, read from the action's JSON Schema.

Each top-level property becomes a :class:`protocol.ParamField`:

- ``label``: the property's ``title``, else its key made readable (``unit_price`` → "Unit
  price");
- ``type``: the extension ``x-parley-type`` when it names a value type (``money``,
  ``percent``, ``date``, ``number``, ``text``), else ``date`` for ``format: date`` or
  ``date-time``, ``number`` for numbers and integers (a Decimal's ``number | string`` too),
  ``list`` for an array of objects, ``text`` for anything else;
- ``currency``: for money, ``x-parley-currency``, else the tenant's currency;
- ``columns``: for a list, one column per property of the item schema, typed the same way.

The card shows a parameter the fields do not name as text, so an unusual schema degrades to
plain values, never to an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from protocol import Column, FieldType, ParamField, ValueType
from protocol.fields import MAX_ID_LENGTH
from server.tools.views import humanize

__all__ = ["CURRENCY_KEY", "TYPE_KEY", "param_fields"]

TYPE_KEY = "x-parley-type"
"""Schema extension naming how a parameter is shown: ``money``, ``percent``, ``date``, ..."""
CURRENCY_KEY = "x-parley-currency"
"""Schema extension naming a money parameter's ISO 4217 currency (else the tenant's)."""

_VALUE_TYPES = {member.value: member for member in ValueType}


def param_fields(schema: Mapping[str, Any], currency: str) -> tuple[ParamField, ...]:
    """The fields of every top-level parameter of ``schema``, in its order."""
    properties = schema.get("properties")
    if not isinstance(properties, Mapping):
        return ()
    fields = []
    for key, prop in properties.items():
        if not isinstance(key, str) or not 0 < len(key) <= MAX_ID_LENGTH:
            continue
        prop = prop if isinstance(prop, Mapping) else {}
        columns = _list_columns(prop, currency)
        if columns is not None:
            fields.append(
                ParamField(key=key, label=_label(key, prop), type=FieldType.LIST, columns=columns)
            )
            continue
        kind = _value_type(prop)
        fields.append(
            ParamField(
                key=key,
                label=_label(key, prop),
                type=FieldType(kind.value),
                currency=_currency(prop, currency) if kind is ValueType.MONEY else None,
            )
        )
    return tuple(fields)


def _list_columns(prop: Mapping[str, Any], currency: str) -> tuple[Column, ...] | None:
    schema = _without_null(prop)
    items = schema.get("items")
    if schema.get("type") != "array" or not isinstance(items, Mapping):
        return None
    item_properties = _without_null(items).get("properties")
    if not isinstance(item_properties, Mapping) or not item_properties:
        return None
    columns = []
    for key, item in item_properties.items():
        if not isinstance(key, str) or not 0 < len(key) <= MAX_ID_LENGTH:
            continue
        item = item if isinstance(item, Mapping) else {}
        kind = _value_type(item)
        columns.append(
            Column(
                key=key,
                label=_label(key, item),
                type=kind,
                currency=_currency(item, currency) if kind is ValueType.MONEY else None,
            )
        )
    return tuple(columns)


def _value_type(prop: Mapping[str, Any]) -> ValueType:
    named = prop.get(TYPE_KEY)
    if isinstance(named, str) and named in _VALUE_TYPES:
        return _VALUE_TYPES[named]
    schema = _without_null(prop)
    if schema.get("format") in ("date", "date-time"):
        return ValueType.DATE
    types = _types(schema)
    if types and types <= {"number", "integer", "string"} and types & {"number", "integer"}:
        return ValueType.NUMBER
    return ValueType.TEXT


def _types(schema: Mapping[str, Any]) -> set[str]:
    declared = schema.get("type")
    if isinstance(declared, str):
        return {declared} - {"null"}
    if isinstance(declared, list):
        return {kind for kind in declared if isinstance(kind, str)} - {"null"}
    found: set[str] = set()
    for option in schema.get("anyOf") or schema.get("oneOf") or []:
        if isinstance(option, Mapping):
            found |= _types(option)
    return found


def _without_null(prop: Mapping[str, Any]) -> Mapping[str, Any]:
    """``X | None`` written as ``anyOf: [X, {type: null}]`` read as X itself."""
    options = prop.get("anyOf")
    if isinstance(options, list):
        rest = [o for o in options if not (isinstance(o, Mapping) and o.get("type") == "null")]
        if len(rest) == 1 and isinstance(rest[0], Mapping):
            return {**{k: v for k, v in prop.items() if k != "anyOf"}, **rest[0]}
    return prop


def _label(key: str, prop: Mapping[str, Any]) -> str:
    title = prop.get("title")
    return title if isinstance(title, str) and title.strip() else humanize(key)


def _currency(prop: Mapping[str, Any], tenant_currency: str) -> str | None:
    named = prop.get(CURRENCY_KEY)
    chosen = named if isinstance(named, str) else tenant_currency
    valid = len(chosen) == 3 and chosen.isascii() and chosen.isalpha() and chosen.isupper()
    return chosen if valid else None
