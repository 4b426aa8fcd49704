"""The REST API's mount point: every resource's operations and the OpenAPI document."""

from __future__ import annotations

from functools import cache
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from server.rest import (
    audit,
    confirmations,
    conversations,
    escalations,
    exports,
    feedback,
    knowledge,
    status,
    usage,
)
from server.rest.api import ApiApp, ApiRouter
from server.rest.openapi import DOCUMENT_OPERATION, build_document

PREFIX = "/api/v1"
DOCUMENT_PATH = "/openapi.json"

ROUTERS: tuple[ApiRouter, ...] = (
    conversations.router,
    feedback.router,
    escalations.router,
    confirmations.router,
    audit.router,
    usage.router,
    exports.router,
    knowledge.router,
    status.router,
)


def api_mount() -> Mount:
    """``/api/v1`` with every operation and ``/api/v1/openapi.json``."""
    operations = [op for router in ROUTERS for op in router.operations]
    document = Route(DOCUMENT_PATH, openapi_document, methods=["GET"], name=DOCUMENT_OPERATION)
    return Mount(PREFIX, app=ApiApp(operations, [document]))


@cache
def openapi() -> dict[str, Any]:
    """The OpenAPI document of this API (built once per process)."""
    return build_document(
        ROUTERS, prefix=PREFIX, version=status.server_version(), document_path=DOCUMENT_PATH
    )


@cache
def _document_bytes() -> bytes:
    return orjson.dumps(openapi())


async def openapi_document(_request: Request) -> Response:
    """The OpenAPI 3.1 document of the REST API (no token needed)."""
    return Response(_document_bytes(), media_type="application/json")
