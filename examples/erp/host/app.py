"""Assembling the host app: the one place that builds every part and hands each what it uses."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import date

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from examples.erp.companies import Today
from examples.erp.host import idempotency
from examples.erp.host.api import Api, json_response
from examples.erp.host.auth import TokenVerifier
from examples.erp.host.database import create_engine, prepare
from examples.erp.host.demo import DemoData
from examples.erp.host.openapi import build_document
from examples.erp.host.operations import OPERATIONS, check_operations
from examples.erp.host.settings import HostSettings
from examples.erp.pack import build_pack

__all__ = ["create_app"]

logger = logging.getLogger("examples.erp.host")

_PRUNE_INTERVAL_S = 3600.0


def create_app(settings: HostSettings, *, today: Today = date.today) -> Starlette:
    """The demo ERP host app.

    Raises:
        RuntimeError: the operations do not cover the pack's tools (a programming mistake).
    """
    pack = build_pack(today)
    check_operations(pack, OPERATIONS)
    engine = create_engine(settings.database_url)
    api = Api(
        pack=pack,
        operations=OPERATIONS,
        verifier=TokenVerifier(settings),
        engine=engine,
        settings=settings,
    )
    document = build_document(pack, OPERATIONS, max_list_items=settings.max_list_items)

    async def openapi(_request: Request) -> Response:
        return json_response(document)

    async def healthz(_request: Request) -> Response:
        return json_response({"status": "ok"})

    routes = [
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        *api.routes(),
    ]
    if settings.demo_data:
        routes += DemoData(engine, settings.demo_origins).routes()

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await prepare(engine, seed=settings.seed, today=today)
        pruner = asyncio.create_task(_prune_forever(engine, settings.idempotency_ttl_s))
        try:
            yield
        finally:
            pruner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pruner
            await engine.dispose()

    return Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error, Exception: _internal_error},
    )


async def _prune_forever(engine: AsyncEngine, ttl_s: float) -> None:
    # Keys are kept long enough for any retry Parley makes; after that they only take space.
    while True:
        try:
            async with engine.begin() as connection:
                removed = await idempotency.prune(connection, older_than_s=ttl_s)
            if removed:
                logger.info("forgot %d idempotency keys older than %g s", removed, ttl_s)
        except Exception:
            logger.exception("pruning idempotency keys failed; trying again later")
        await asyncio.sleep(_PRUNE_INTERVAL_S)


async def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    messages = {404: "no such operation", 405: "method not allowed on this path"}
    message = messages.get(exc.status_code, str(exc.detail).lower())
    return json_response({"error": message}, exc.status_code, dict(exc.headers or {}))


async def _internal_error(_request: Request, exc: Exception) -> Response:
    logger.error("request failed", exc_info=exc)
    return json_response({"error": "internal error"}, 500)
