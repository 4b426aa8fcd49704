"""Turn a tool function's signature into a pydantic arguments model and an OpenAI JSON Schema.

A tool is ``async def tool(ctx: ToolContext, a: int, b: Decimal | None = None) -> ...``. The
parameters after ``ctx`` become the fields of a pydantic model (so validation, coercion of
numbers and strings to `Decimal`, and nested pydantic models come for free), and the model's
JSON Schema, flattened to what function-calling endpoints accept, becomes ``parameters``.
"""

import inspect
import typing
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from pydantic.fields import FieldInfo

__all__ = [
    "arguments_model",
    "describe_validation_error",
    "parameters_schema",
    "parse_docstring",
]


def parse_docstring(func: Callable[..., Any]) -> tuple[str, dict[str, str]]:
    """Split a Google-style docstring into its first paragraph and its ``Args:`` entries.

    Returns:
        The first paragraph joined into one line (empty if there is no docstring) and a mapping
        of parameter name to its description.
    """
    doc = inspect.getdoc(func) or ""
    paragraphs = doc.split("\n\n")
    summary = " ".join(line.strip() for line in paragraphs[0].splitlines()).strip()
    return summary, _parse_args_section(doc)


def _parse_args_section(doc: str) -> dict[str, str]:
    described: dict[str, str] = {}
    lines = doc.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() in ("Args:", "Arguments:"))
    except StopIteration:
        return described
    section_indent: int | None = None
    current: str | None = None
    for line in lines[start + 1 :]:
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        if indent == 0:
            break  # The next section ("Returns:", "Raises:") starts at the left margin.
        if section_indent is None:
            section_indent = indent
        text = line.strip()
        if indent == section_indent and ":" in text:
            name, _, rest = text.partition(":")
            current = name.split("(")[0].strip()
            described[current] = rest.strip()
        elif current is not None:
            described[current] = f"{described[current]} {text}".strip()
    return described


def arguments_model(func: Callable[..., Any], tool_name: str) -> type[BaseModel]:
    """Build the pydantic model of a tool's arguments from the parameters after ``ctx``.

    Unknown arguments are refused (``extra="forbid"``) so a misspelt optional argument is reported
    instead of silently ignored.

    Raises:
        TypeError: the function has no ``ctx`` parameter, takes ``*args``/``**kwargs``, or a
            parameter lacks a type hint.
    """
    signature = inspect.signature(func)
    params = list(signature.parameters.values())
    if not params or params[0].kind not in (
        inspect.Parameter.POSITIONAL_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
    ):
        raise TypeError(f"tool {tool_name!r} must take the ToolContext as its first parameter")
    hints = typing.get_type_hints(func, include_extras=True)
    _, described = parse_docstring(func)
    fields: dict[str, Any] = {}
    for param in params[1:]:
        if param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            raise TypeError(f"tool {tool_name!r} cannot take *args or **kwargs")
        if param.kind is inspect.Parameter.POSITIONAL_ONLY:
            raise TypeError(f"tool {tool_name!r}: parameter {param.name!r} is positional-only")
        if param.name not in hints:
            raise TypeError(f"tool {tool_name!r}: parameter {param.name!r} has no type hint")
        default: Any = ... if param.default is inspect.Parameter.empty else param.default
        if isinstance(default, FieldInfo):
            fields[param.name] = (hints[param.name], default)
        else:
            fields[param.name] = (
                hints[param.name],
                Field(default, description=described.get(param.name)),
            )
    model_name = "".join(part.title() for part in tool_name.split("_")) + "Arguments"
    return create_model(model_name, __config__=ConfigDict(extra="forbid"), **fields)


def parameters_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The JSON Schema of an arguments model in the shape function-calling endpoints accept.

    Every ``$ref`` is inlined (some OpenAI-compatible servers do not resolve them), titles are
    dropped where they only repeat the names (one written with ``Field(title=...)`` stays),
    and an optional argument that defaults to None is
    described by its type alone: leaving it out is how the model says "none".

    Raises:
        RuntimeError: a model refers to itself; recursive parameters are not supported.
    """
    raw = model.model_json_schema()
    definitions: dict[str, Any] = raw.pop("$defs", {})
    schema: dict[str, Any] = _clean(raw, definitions, ())
    schema.setdefault("properties", {})
    schema.setdefault("required", [])
    return schema


def _clean(node: Any, definitions: dict[str, Any], resolving: tuple[str, ...]) -> Any:
    if isinstance(node, list):
        return [_clean(item, definitions, resolving) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str):
        name = ref.rsplit("/", 1)[-1]
        if name in resolving:
            raise RuntimeError(f"recursive tool parameter type {name!r} is not supported")
        target = _clean(definitions[name], definitions, (*resolving, name))
        siblings = {key: value for key, value in node.items() if key != "$ref"}
        return {**target, **_clean(siblings, definitions, resolving)}
    cleaned: dict[str, Any] = {}
    for key, value in node.items():
        if key == "title":
            continue
        if key == "properties" and isinstance(value, dict):
            # Keys here are argument names, not schema keywords: keep them, clean their schemas.
            cleaned[key] = {
                name: _with_own_title(name, prop, _clean(prop, definitions, resolving))
                for name, prop in value.items()
            }
        else:
            cleaned[key] = _clean(value, definitions, resolving)
    return _drop_null_default(cleaned)


def _with_own_title(name: str, raw: Any, cleaned: Any) -> Any:
    """Keep a title the tool's author wrote (``Field(title="Article")``): confirmation cards
    label the parameter with it. Pydantic's own titles only repeat the name and are dropped."""
    title = raw.get("title") if isinstance(raw, dict) else None
    if not isinstance(title, str) or title == name.title().replace("_", " "):
        return cleaned
    return {"title": title, **cleaned} if isinstance(cleaned, dict) else cleaned


def _drop_null_default(node: dict[str, Any]) -> dict[str, Any]:
    if "default" not in node or node["default"] is not None or "anyOf" not in node:
        return node
    branches = [branch for branch in node["anyOf"] if branch != {"type": "null"}]
    rest = {key: value for key, value in node.items() if key not in ("anyOf", "default")}
    if len(branches) == 1:
        return {**branches[0], **rest}
    return {"anyOf": branches, **rest}


def describe_validation_error(error: ValidationError) -> tuple[list[str], str | None]:
    """Plain-text problems naming each argument, and the path of the first one.

    ``{"loc": ("lines", 0, "quantity"), "msg": "Field required"}`` becomes
    ``"argument 'lines[0].quantity': field required"``.
    """
    problems: list[str] = []
    first_field: str | None = None
    for detail in error.errors(include_url=False):
        path = _path(detail["loc"])
        if not path:
            problems.append("arguments must be a JSON object")
            continue
        if first_field is None:
            first_field = path
        if detail["type"] == "extra_forbidden":
            reason = "unknown argument"
        else:
            message = str(detail["msg"])
            reason = message[:1].lower() + message[1:]
        problems.append(f"argument {path!r}: {reason}")
    return problems, first_field


def _path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path
