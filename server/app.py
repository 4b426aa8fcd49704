"""The Starlette application and its lifespan, which builds a worker's services.

``create_app()`` is the factory uvicorn runs (``uvicorn --factory server.app:create_app``);
settings come from the environment unless given.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute

from server.config import Settings
from server.ops import metrics
from server.ops.background import BackgroundJobs
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
from server.rest.resources import RestResources
from server.rest.routes import api_mount
from server.rest.webhooks import EscalationWebhook
from server.security.auth import TokenVerifier
from server.security.origin import OriginGuard, OriginPolicy
from server.security.redaction import install_secret_scrubber
from server.services import Services, model_clients, new_worker_id, open_redis
from server.socket.endpoint import websocket_endpoint
from server.stream.hub import FrameHub
from server.stream.notices import Notices
from server.tools.registry import ToolRegistry
from server.tools.sources.manager import open_tool_sources
from server.tools.sources.user_token import jwks_endpoint
from server.turns.engine import TurnEngine
from server.turns.history_cache import HistoryCache
from server.turns.llm import ModelClient
from server.turns.tool_runner import ToolRunner
from storage.confirmations import ConfirmationStore
from storage.db import Database
from storage.escalations import EscalationStore
from storage.feedback import FeedbackStore
from storage.frame_log import FrameLog
from storage.leases import TurnLeases
from storage.small_stores import ContextCache, ControlChannel, Presence
from storage.transcripts import TranscriptStore
from storage.turn_queue import TurnQueue

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
        services = await _build_services(settings, stack)
        app.state.services = services
        app.state.verifier = TokenVerifier(settings)
        webhook = EscalationWebhook(settings, EscalationStore(services.db))
        webhook.start()
        stack.push_async_callback(webhook.stop)
        app.state.rest = RestResources.build(services, app.state.verifier, webhook)
        jobs = BackgroundJobs(services)
        jobs.start()
        stack.push_async_callback(jobs.stop)
        logger.info(
            "worker %s ready: model=%s%s, state=%s, database=%s",
            services.worker_id,
            services.model.model,
            " (scripted dev model)" if settings.dev_model else "",
            "embedded" if settings.embedded_state else "redis",
            services.db.engine.url.render_as_string(hide_password=True),
        )
        yield
        await services.engine.drain(settings.shutdown_drain_s)


async def prepare_database(settings: Settings, db: Database, tools: ToolRegistry | None) -> None:
    """Bring the schema up to date where workers do it themselves (dev mode, SQLite; elsewhere
    ``parley migrate`` does), and let the tool packs create their tables and demo data."""
    if settings.dev or db.is_sqlite:
        await db.migrate()
    if tools is not None:
        await tools.setup_packs(db.engine, settings.dev)


async def _build_services(settings: Settings, stack: contextlib.AsyncExitStack) -> Services:
    db = Database(settings.database_url)
    stack.push_async_callback(db.close)
    metrics.instrument_database(db.engine)
    tools = ToolRegistry.from_import_paths(settings.tools) if settings.tools else None
    if settings.tool_sources:
        tools = tools or ToolRegistry()
        await open_tool_sources(settings, tools, stack)
    await prepare_database(settings, db, tools)
    redis = await open_redis(settings)
    stack.push_async_callback(redis.aclose)
    prefix = settings.redis_prefix
    frame_log = FrameLog(
        redis, prefix=prefix, max_len=settings.log_max_frames, max_age_s=settings.log_max_age_s
    )
    clients, dev_app = model_clients(settings)
    hub = FrameHub(redis, frame_log)
    await hub.start()
    stack.push_async_callback(hub.stop)
    transcripts = TranscriptStore(db)
    if settings.embedded_state:
        # One process owns every turn: replies left streaming belonged to a previous run.
        try:
            orphans = await transcripts.interrupt_orphans()
        except SQLAlchemyError as exc:  # an unmigrated database: /readyz says so
            logger.warning("could not close a previous run's replies: %s", type(exc).__name__)
            orphans = 0
        if orphans:
            logger.warning("marked %d replies of a previous run as interrupted", orphans)
    services = Services(
        settings=settings,
        worker_id=new_worker_id(settings),
        db=db,
        redis=redis,
        frame_log=frame_log,
        leases=TurnLeases(redis, prefix=prefix),
        turn_queue=TurnQueue(redis, prefix=prefix),
        presence=Presence(redis, prefix=prefix),
        control=ControlChannel(redis, prefix=prefix),
        transcripts=transcripts,
        history=HistoryCache(
            ContextCache(redis, prefix=prefix, max_bytes=settings.context_cache_max_bytes),
            transcripts,
            limit=settings.history_max_messages,
            ttl_s=settings.context_cache_ttl_s,
        ),
        model=ModelClient(settings, clients),
        tools=tools,
        hub=hub,
        notices=Notices(hub),
        feedback=FeedbackStore(db),
        dev_model_app=dev_app,
    )
    services.tool_runner = ToolRunner(services, ConfirmationStore(db))
    services.engine = TurnEngine(services)
    return services
