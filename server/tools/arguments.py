"""How a tool's arguments are checked: a pydantic model (Python packs) or a JSON Schema (tools
described by a host over the network).

Both give the registry the same two steps: `check` turns the model's raw arguments into the
JSON-able dict that is stored with a confirmation and shown to the user, and `keywords` turns
such a stored dict into the keyword arguments of the tool's function, checking it again (a
confirmed action's arguments may no longer fit a tool that changed in between).

Remote tools are validated with ``jsonschema`` rather than a pydantic model built from their
schema: their parameters arrive as JSON Schema, and the reference validator checks every keyword
the host wrote (formats aside), where a translation to pydantic types would drop some.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Protocol

import jsonschema
from pydantic import BaseModel, ValidationError

from server.tools.errors import ToolArgumentsInvalid
from server.tools.schema import describe_validation_error

__all__ = ["ArgumentsValidator", "ModelArguments", "SchemaArguments"]

MAX_PROBLEMS = 5


class ArgumentsValidator(Protocol):
    """Checks one tool's arguments."""

    @property
    def names(self) -> frozenset[str]:
        """The arguments the tool takes (for summary templates)."""
        ...

    def check(self, tool: str, arguments: Any) -> dict[str, Any]:
        """The JSON-able arguments, arguments left out omitted.

        Raises:
            ToolArgumentsInvalid: the arguments do not fit; the message names each one.
        """
        ...

    def keywords(self, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """The keyword arguments of the tool's function for checked ``arguments``.

        Raises:
            ToolArgumentsInvalid: they no longer fit.
        """
        ...


class ModelArguments:
    """Arguments of a Python tool, described by the pydantic model of its signature."""

    def __init__(self, model: type[BaseModel]) -> None:
        self.model = model

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self.model.model_fields)

    def check(self, tool: str, arguments: Any) -> dict[str, Any]:
        return self._validate(tool, arguments).model_dump(mode="json", exclude_none=True)

    def keywords(self, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        model = self._validate(tool, arguments)
        return {name: getattr(model, name) for name in type(model).model_fields}

    def _validate(self, tool: str, arguments: Any) -> BaseModel:
        try:
            return self.model.model_validate(arguments)
        except ValidationError as exc:
            problems, field_path = describe_validation_error(exc)
            raise ToolArgumentsInvalid(tool, problems, field=field_path) from exc


class SchemaArguments:
    """Arguments described by a JSON Schema object (draft 2020-12, as in OpenAPI 3.1 and MCP)."""

    def __init__(self, schema: dict[str, Any]) -> None:
        jsonschema.Draft202012Validator.check_schema(schema)
        self.schema = schema
        self._validator = jsonschema.Draft202012Validator(schema)

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self.schema.get("properties", {}))

    def check(self, tool: str, arguments: Any) -> dict[str, Any]:
        plain = _plain(arguments)
        if not isinstance(plain, dict):
            raise ToolArgumentsInvalid(tool, ["arguments must be a JSON object"])
        errors = sorted(self._validator.iter_errors(plain), key=lambda error: list(error.path))
        if errors:
            problems = [_describe(error) for error in errors[:MAX_PROBLEMS]]
            first = _path(errors[0].absolute_path) or None
            raise ToolArgumentsInvalid(tool, problems, field=first)
        return plain

    def keywords(self, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        return self.check(tool, arguments)


def _plain(value: Any) -> Any:
    """JSON values as Python's json gives them, except that decimals stay exact as ints or
    floats only where they fit: the registry parses numbers as `Decimal`."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def _describe(error: jsonschema.ValidationError) -> str:
    path = _path(error.absolute_path)
    message = error.message
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [name for name in error.validator_value if name not in error.instance]
        if missing:
            inner = f"{path}.{missing[0]}" if path else str(missing[0])
            return f"argument {inner!r}: field required"
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(error.schema.get("properties", {}))
        extra = sorted(name for name in error.instance if name not in allowed)
        if extra:
            inner = f"{path}.{extra[0]}" if path else str(extra[0])
            return f"argument {inner!r}: unknown argument"
    if not path:
        return f"arguments: {message[:200]}"
    return f"argument {path!r}: {message[:200]}"


def _path(parts: Any) -> str:
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path
