"""The Starlette application: its routes, and a lifespan that assembles the worker.

``create_app()`` is the factory uvicorn runs (``uvicorn --factory server.app:create_app``);
settings come from the environment unless given. ``server/assembly.py`` builds the parts.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute

from server.assembly import assemble, drain
from server.config import Settings
from server.ops import metrics
from server.ops.logs import configure_logging
from server.ops.pages import (
    CLIENT_DIR,
    ClientFiles,
    dev_token,
    healthz,
    index_page,
    metrics_page,
    readyz,
)
from server.rest.routes import api_mount
from server.security.origin import OriginGuard, OriginPolicy
from server.security.redaction import install_secret_scrubber
from server.socket.endpoint import websocket_endpoint
from server.tools.sources.user_token import jwks_endpoint

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> Starlette:
    """A Parley app; its lifespan connects to the database, Redis and the model."""
    settings = settings or Settings.from_env()
    configure_logging(settings)
    install_secret_scrubber(settings)
    # The Origin check runs before routing: a refused handshake never reaches the endpoint.
    origin_guard = Middleware(OriginGuard, policy=OriginPolicy.from_settings(settings))
    app = Starlette(routes=_routes(settings), middleware=[origin_guard], lifespan=_lifespan)
    app.state.settings = settings
    return app


def _routes(settings: Settings) -> list[BaseRoute]:
    routes: list[BaseRoute] = [
        WebSocketRoute("/ws", websocket_endpoint),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/.well-known/jwks.json", jwks_endpoint),
        api_mount(),
    ]
    if settings.metrics_enabled:
        routes.append(Route("/metrics", metrics_page))
    if CLIENT_DIR.is_dir():
        # Host apps load /client/widget.js in every mode; the demo ERP page (at / and under
        # /client/demo/) is dev mode's alone: a production server answers / with a 404.
        if settings.dev:
            routes.append(Route("/", index_page))
        client = ClientFiles(CLIENT_DIR, with_demo=settings.dev)
        routes.append(Mount("/client", client, name="client"))
    if settings.dev:
        routes.append(Route("/dev/token", dev_token))
    return routes


@contextlib.asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    async with contextlib.AsyncExitStack() as stack:
        stack.callback(metrics.process_exiting)
        worker = await assemble(settings, stack)
        app.state.socket = worker.socket
        app.state.rest = worker.rest
        app.state.readiness = worker.readiness
        app.state.drain = functools.partial(drain, worker, settings)
        yield
        await worker.engine.drain(settings.shutdown_drain_s)
