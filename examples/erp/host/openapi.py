"""The OpenAPI 3.1 document of the ERP's API, built from the pack's tools and `OPERATIONS`.

Parley (or any other client) reads it to learn the tools: ``operationId`` is the tool name,
``summary``/``description`` come from the tool's docstring, the parameter and body schemas from
its signature, and the ``x-parley`` extension says whether the operation is a query or an
action, which roles may use it, and, for an action, the confirmation card's template.
"""

from __future__ import annotations

import copy
import inspect
from typing import Any

from examples.erp.host.operations import Operation
from server.tools.registry import ToolPack, ToolSpec

__all__ = ["API_ROOT", "build_document"]

API_ROOT = "/api"
_ERROR = {"$ref": "#/components/schemas/Error"}
_IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": True,
    "description": (
        "makes the action run at most once: a repeat with the same key gets the first answer "
        "again (Parley sends the confirmation token)"
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": 200},
}


def build_document(
    pack: ToolPack, operations: tuple[Operation, ...], *, max_list_items: int
) -> dict[str, Any]:
    """The whole document; `max_list_items` is the bound the app puts on list arguments."""
    paths: dict[str, dict[str, Any]] = {}
    for operation in operations:
        spec = pack.tools[operation.tool]
        entry = _operation(spec, operation, max_list_items)
        paths.setdefault(operation.path, {})[operation.method.lower()] = entry
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Demo ERP",
            "version": "1.0.0",
            "description": (
                "The books of the demo companies acme (USD) and globex (EUR). Every call is "
                "made as a user: a short-lived JWT signed by Parley names the user, the tenant "
                "and the roles. Actions need an Idempotency-Key."
            ),
        },
        "servers": [{"url": API_ROOT}],
        "security": [{"parleyJwt": []}],
        "tags": [
            {"name": "finance", "description": "cash, receivables, payables, settlements"},
            {"name": "purchasing", "description": "purchase orders, approvals and stock"},
            {"name": "sales", "description": "customers, sales orders and invoices"},
        ],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "parleyJwt": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "a token Parley signs for each call, valid for at most 60 s",
                }
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "properties": {
                        "error": {"type": "string", "description": "what went wrong"},
                        "code": {"type": "string", "description": "a stable reason, if any"},
                    },
                    "required": ["error"],
                }
            },
        },
    }


def _operation(spec: ToolSpec, operation: Operation, max_list_items: int) -> dict[str, Any]:
    schema = _bounded(copy.deepcopy(spec.parameters), max_list_items)
    properties: dict[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", ()))
    parameters: list[dict[str, Any]] = [
        _parameter(name, "path", properties[name], required=True)
        for name in operation.path_parameters
    ]
    in_path = set(operation.path_parameters)
    rest = {name: prop for name, prop in properties.items() if name not in in_path}
    entry: dict[str, Any] = {
        "operationId": spec.name,
        "summary": spec.description,
        "tags": [operation.tag],
    }
    details = _details(spec)
    if details:
        entry["description"] = details
    if operation.method == "GET":
        parameters += [
            _parameter(name, "query", prop, required=name in required)
            for name, prop in rest.items()
        ]
    else:
        parameters.append(dict(_IDEMPOTENCY_KEY))
        body_required = [name for name in rest if name in required]
        body: dict[str, Any] = {
            "type": "object",
            "properties": rest,
            "additionalProperties": False,
        }
        if body_required:
            body["required"] = body_required
        entry["requestBody"] = {
            "required": bool(body_required),
            "content": {"application/json": {"schema": body}},
        }
    if parameters:
        entry["parameters"] = parameters
    entry["responses"] = _responses(operation)
    hints: dict[str, Any] = {"kind": spec.kind, "roles": sorted(spec.roles)}
    if operation.summary is not None:
        hints["summary"] = operation.summary
    if operation.preview_path is not None:
        hints["preview"] = operation.preview_path
    entry["x-parley"] = hints
    return entry


def _parameter(name: str, where: str, prop: dict[str, Any], *, required: bool) -> dict[str, Any]:
    schema = {key: value for key, value in prop.items() if key != "description"}
    parameter: dict[str, Any] = {"name": name, "in": where, "required": required}
    if "description" in prop:
        parameter["description"] = prop["description"]
    parameter["schema"] = schema
    return parameter


def _responses(operation: Operation) -> dict[str, Any]:
    def error(description: str) -> dict[str, Any]:
        return {"description": description, "content": {"application/json": {"schema": _ERROR}}}

    responses: dict[str, Any] = {
        str(operation.status): {
            "description": "the result",
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
        "400": error("malformed arguments (or, for an action, no Idempotency-Key)"),
        "401": error("no token, or one this app does not accept"),
        "403": error("the user's roles do not allow this call"),
        "404": error("no such document"),
        "409": error("the books changed meanwhile, or the document is in another state"),
        "422": error("a business rule refused the call"),
    }
    if operation.method != "GET":
        responses["413"] = error("the body is too large")
    return responses


def _details(spec: ToolSpec) -> str:
    # The docstring after its first paragraph, without the Args section (the parameters
    # carry their own descriptions).
    paragraphs = (inspect.getdoc(spec.func) or "").split("\n\n")[1:]
    kept = [p for p in paragraphs if not p.lstrip().startswith(("Args:", "Arguments:"))]
    return "\n\n".join(" ".join(line.strip() for line in p.splitlines()) for p in kept).strip()


def _bounded(node: Any, max_items: int) -> Any:
    """`node` with every array schema limited to `max_items` items, as the app enforces."""
    if isinstance(node, list):
        return [_bounded(item, max_items) for item in node]
    if not isinstance(node, dict):
        return node
    bounded = {key: _bounded(value, max_items) for key, value in node.items()}
    if bounded.get("type") == "array":
        bounded["maxItems"] = min(int(bounded.get("maxItems", max_items)), max_items)
    return bounded
