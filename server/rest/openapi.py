"""The OpenAPI 3.1 document of the REST API, made from the operations' declarations.

Schemas come from the pydantic models the handlers validate and return with, parameters from
the paths and query models, the error responses from what the machinery in ``server.rest.api``
can answer; nothing is written by hand, so the document describes exactly what is served.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from server.rest.api import ApiRouter, Operation
from server.rest.errors import ErrorBody

OPENAPI_VERSION = "3.1.0"
SCHEMA_REF = "#/components/schemas/{model}"
DOCUMENT_OPERATION = "openapi_document"
# A path parameter's Starlette converter (``{document_id:path}``) is not part of its name.
_CONVERTER = re.compile(r"\{(\w+):\w+\}")

# Error responses, named once in components.responses and referenced by status.
_ERRORS: dict[int, tuple[str, str]] = {
    400: ("BadRequest", "the body is not a JSON object"),
    401: ("Unauthorized", "no bearer token, or one that is invalid or expired"),
    403: ("Forbidden", "the caller lacks the role this route needs"),
    404: ("NotFound", "no such resource for this caller (whether it exists for others or not)"),
    409: ("Conflict", "the resource is not in a state that allows this"),
    413: ("PayloadTooLarge", "the body is too large"),
    422: ("UnprocessableEntity", "a field or parameter does not fit; `error.field` names it"),
    429: ("TooManyRequests", "too many requests; wait `Retry-After` seconds"),
    503: ("ServiceUnavailable", "a backing store is unavailable; retry shortly"),
}


def build_document(
    routers: Iterable[ApiRouter], *, prefix: str, version: str, document_path: str
) -> dict[str, Any]:
    """The whole document for the operations of ``routers``, served under ``prefix``."""
    routers = list(routers)
    operations = [op for router in routers for op in router.operations]
    refs, components = _schemas(operations)
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        path = _CONVERTER.sub(r"{\1}", prefix + op.path)
        paths.setdefault(path, {})[op.method.lower()] = _operation(op, refs, components)
    paths[prefix + document_path] = {"get": _document_operation()}
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Parley REST API",
            "version": version,
            "description": (
                "History, feedback, escalation, confirmations, audit, usage, CSV exports and "
                "knowledge collections of a Parley server. Authenticate with the same JWT the "
                "WebSocket uses, as `Authorization: Bearer <token>`. Lists are newest first and "
                "paged with an opaque `next_cursor`. Every error is "
                '`{"error": {"code", "message"}}`.'
            ),
        },
        "tags": [{"name": router.tag, "description": router.description} for router in routers],
        "paths": paths,
        "components": {
            "schemas": components,
            "responses": _error_responses(),
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
        "security": [{"bearerAuth": []}],
    }


def _schemas(
    operations: list[Operation],
) -> tuple[dict[tuple[Any, str], str], dict[str, Any]]:
    wanted: list[tuple[type[BaseModel], JsonSchemaMode]] = [(ErrorBody, "serialization")]
    for op in operations:
        if op.response is not None:
            wanted.append((op.response, "serialization"))
        if op.body is not None:
            wanted.append((op.body, "validation"))
        if op.query is not None:
            wanted.append((op.query, "validation"))
    unique = list(dict.fromkeys(wanted))
    keys, definitions = models_json_schema(unique, ref_template=SCHEMA_REF)
    refs: dict[tuple[Any, str], str] = {
        (model, mode): str(schema["$ref"]) for (model, mode), schema in keys.items()
    }
    return refs, dict(definitions.get("$defs", {}))


def _operation(
    op: Operation, refs: dict[tuple[Any, str], str], components: dict[str, Any]
) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in op.path_params
    ]
    if op.query is not None:
        parameters += _query_parameters(components[_name(refs[(op.query, "validation")])])
    document: dict[str, Any] = {
        "operationId": op.name,
        "summary": op.summary,
        "tags": [op.tag],
    }
    if op.description:
        document["description"] = op.description
    if parameters:
        document["parameters"] = parameters
    if op.body is not None:
        document["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": refs[(op.body, "validation")]}}},
        }
    success: dict[str, Any] = {"description": HTTPStatus(op.status).phrase}
    if op.response is not None:
        schema = {"$ref": refs[(op.response, "serialization")]}
        success["content"] = {"application/json": {"schema": schema}}
    elif op.media_type is not None:
        success["content"] = {op.media_type: {"schema": dict(op.media_schema or {})}}
    responses: dict[str, Any] = {str(int(op.status)): success}
    for status in sorted(_error_statuses(op)):
        responses[str(status)] = {"$ref": f"#/components/responses/{_ERRORS[status][0]}"}
    document["responses"] = responses
    return document


def _error_statuses(op: Operation) -> set[int]:
    statuses = {401, 429, 503, *op.errors}
    if op.body is not None:
        statuses |= {400, 413, 422}
    if op.query is not None:
        statuses.add(422)
    if op.path_params:
        statuses.add(404)
    if op.admin:
        statuses.add(403)
    return statuses


def _query_parameters(schema: dict[str, Any]) -> list[dict[str, Any]]:
    required = set(schema.get("required", []))
    parameters = []
    for name, prop in schema.get("properties", {}).items():
        prop = dict(prop)
        description = prop.pop("description", None)
        prop.pop("title", None)
        parameter: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": prop,
        }
        if description:
            parameter["description"] = description
        parameters.append(parameter)
    return parameters


def _document_operation() -> dict[str, Any]:
    return {
        "operationId": DOCUMENT_OPERATION,
        "summary": "This document",
        "tags": ["status"],
        "security": [],
        "responses": {
            "200": {
                "description": "the OpenAPI document",
                "content": {"application/json": {"schema": {"type": "object"}}},
            }
        },
    }


def _error_responses() -> dict[str, Any]:
    schema = {"$ref": SCHEMA_REF.format(model=ErrorBody.__name__)}
    responses: dict[str, Any] = {}
    for status, (name, description) in _ERRORS.items():
        response: dict[str, Any] = {
            "description": description,
            "content": {"application/json": {"schema": schema}},
        }
        if status == 429:
            response["headers"] = {
                "Retry-After": {
                    "description": "seconds to wait before trying again",
                    "schema": {"type": "integer"},
                }
            }
        responses[name] = response
    return responses


def _name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]
