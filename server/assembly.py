"""The one place that builds a worker: every part is made here and handed, by constructor,
exactly the parts it uses. Nothing is completed after construction and no part imports this
module, so the dependencies read top-down: socket → turns → stream/tools → storage → protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from dataclasses import dataclass
from pathlib import Path

import openai
from sqlalchemy.exc import SQLAlchemyError

from server.config import Settings
from server.knowledge.parts import knowledge_parts
from server.ops import metrics
from server.ops.background import BackgroundJobs
from server.ops.demo_knowledge import load_demo_knowledge
from server.ops.pages import ReadinessParts
from server.ops.shutdown import drain_worker
from server.profiles.config import load_profile_catalog
from server.rest.resources import RestResources
from server.rest.webhooks import EscalationWebhook
from server.security.auth import TokenVerifier
from server.security.limits import Limits
from server.socket.endpoint import SocketParts
from server.stream.hub import FrameHub
from server.stream.notices import Notices
from server.stream.snapshot import Snapshots
from server.tools.page_tools import PageToolRouter
from server.tools.registry import ToolRegistry
from server.tools.sources.manager import open_tool_sources
from server.turns.budgets import Budgets
from server.turns.engine import TurnEngine
from server.turns.handoff import Handoffs
from server.turns.history_cache import HistoryCache
from server.turns.llm import ModelClient
from server.turns.result_views import ResultViews
from server.turns.tool_runner import ToolRunner
from server.turns.turn_loop import TurnLoop
from storage.activity import ActivityStore
from storage.confirmations import ConfirmationStore
from storage.db import Database
from storage.escalations import EscalationStore
from storage.exports import ExportStore
from storage.feedback import FeedbackStore
from storage.frame_log import FrameLog
from storage.history import HistoryStore
from storage.leases import TurnLeases
from storage.memory_frame_log import AnyFrameLog, MemoryFrameLog
from storage.page_tools import PageToolRegistrations
from storage.redis_client import RedisClient, RedisMode, connect_redis
from storage.small_stores import ContextCache, ControlChannel, WindowCounter
from storage.transcripts import TranscriptStore
from storage.turn_queue import TurnQueue
from storage.usage import UsageStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Worker:
    """The assembled parts the app's routes and shutdown reach through ``app.state``."""

    worker_id: str
    socket: SocketParts
    rest: RestResources
    readiness: ReadinessParts
    engine: TurnEngine
    hub: FrameHub
    frame_log: AnyFrameLog


async def assemble(settings: Settings, stack: contextlib.AsyncExitStack) -> Worker:
    """Connect to the database, Redis and the model, build every part and start the
    background jobs; ``stack`` closes them all in reverse order."""
    # A wrong profiles file stops the worker before it connects to anything.
    profiles = load_profile_catalog(settings)
    db = Database(settings.database_url)
    stack.push_async_callback(db.close)
    metrics.instrument_database(db.engine)
    tools = ToolRegistry.from_import_paths(settings.tools) if settings.tools else ToolRegistry()
    if settings.tool_sources:
        await open_tool_sources(settings, tools, stack)
    # search_knowledge is registered everywhere and offered only where there is something to
    # search (server/knowledge/search_tool.py).
    clients = model_clients(settings)
    knowledge = knowledge_parts(settings, db, clients[0])
    tools.add_pack(knowledge.search.pack())
    await prepare_database(settings, db, tools)
    if settings.knowledge_embeddings:
        await knowledge.store.detect_vectors(allow_pgvector=settings.knowledge_pgvector)
    redis = await open_redis(settings)
    stack.push_async_callback(redis.aclose)
    prefix = settings.redis_prefix

    frame_log: AnyFrameLog
    if settings.embedded_state:
        # One worker, its state in this process: the log every streamed delta is written to
        # is kept in plain memory, not run through fakeredis' Lua emulation (see there).
        frame_log = MemoryFrameLog(
            prefix=prefix, max_len=settings.log_max_frames, max_age_s=settings.log_max_age_s
        )
    else:
        frame_log = FrameLog(
            redis, prefix=prefix, max_len=settings.log_max_frames, max_age_s=settings.log_max_age_s
        )
    hub = FrameHub(redis, frame_log)
    await hub.start()
    stack.push_async_callback(hub.stop)
    transcripts = TranscriptStore(db)
    if settings.embedded_state:
        await _interrupt_orphans(transcripts)
    leases = TurnLeases(redis, prefix=prefix)
    queue = TurnQueue(redis, prefix=prefix)
    control = ControlChannel(redis, prefix=prefix)
    confirmations = ConfirmationStore(db)
    feedback = FeedbackStore(db)
    notices = Notices(hub)
    model = ModelClient(settings, clients)
    limits = Limits(settings, redis, transcripts)
    snapshots = Snapshots(transcripts, confirmations, leases, frame_log, profiles, settings)
    verifier = TokenVerifier(settings)

    handoffs = Handoffs(profiles, transcripts, hub)
    exports = ExportStore(db, settings.export_max_per_user)
    page_tools = PageToolRouter(settings, PageToolRegistrations(redis, prefix=prefix), control)
    tool_runner = ToolRunner(
        settings,
        tools,
        hub,
        confirmations,
        db,
        ResultViews(settings, exports),
        handoffs,
        page_tools=page_tools,
    )
    history = HistoryCache(
        ContextCache(redis, prefix=prefix, max_bytes=settings.context_cache_max_bytes),
        transcripts,
        limit=settings.history_max_messages,
        ttl_s=settings.context_cache_ttl_s,
    )
    loop = TurnLoop(
        settings,
        model,
        history,
        transcripts,
        tools,
        tool_runner,
        Budgets(settings, model, transcripts),
        hub,
        leases,
        notices,
        profiles,
        handoffs,
        knowledge=knowledge.search,
        page_tools=page_tools,
    )
    worker_id = settings.worker_id or f"w_{secrets.token_hex(4)}"
    engine = TurnEngine(
        settings,
        worker_id,
        limits,
        transcripts,
        leases,
        queue,
        control,
        hub,
        notices,
        tool_runner,
        loop,
        profiles,
    )

    if settings.dev and settings.demo_knowledge:
        # In the background: the demo's documents are not worth a slower start.
        demo = asyncio.create_task(
            load_demo_knowledge(Path(settings.demo_knowledge), knowledge), name="demo-knowledge"
        )
        stack.push_async_callback(_cancelled, demo)
    webhook = EscalationWebhook(settings, EscalationStore(db))
    webhook.start()
    stack.push_async_callback(webhook.stop)
    jobs = BackgroundJobs(
        settings,
        engine,
        snapshots,
        transcripts,
        leases,
        queue,
        frame_log,
        redis,
        control,
        page_tools,
    )
    jobs.start()
    stack.push_async_callback(jobs.stop)
    logger.info(
        "worker %s ready: model=%s%s, state=%s, database=%s",
        worker_id,
        model.model,
        " (scripted dev model)" if settings.dev_model else "",
        "embedded" if settings.embedded_state else "redis",
        db.engine.url.render_as_string(hide_password=True),
    )
    return Worker(
        worker_id=worker_id,
        socket=SocketParts(
            settings=settings,
            verifier=verifier,
            limits=limits,
            hub=hub,
            snapshots=snapshots,
            engine=engine,
            feedback=feedback,
            page_tools=page_tools,
        ),
        rest=RestResources(
            settings=settings,
            verifier=verifier,
            hub=hub,
            tools=tools,
            profiles=profiles,
            model_name=model.model,
            feedback=feedback,
            exports=exports,
            history=HistoryStore(db),
            activity=ActivityStore(db),
            usage=UsageStore(db),
            escalations=webhook.store,
            webhook=webhook,
            rate=WindowCounter(redis, prefix=prefix),
            knowledge=knowledge.search,
            knowledge_store=knowledge.store,
            knowledge_ingest=knowledge.ingest,
        ),
        readiness=ReadinessParts(
            settings=settings, db=db, redis=redis, hub=hub, engine=engine, tools=tools
        ),
        engine=engine,
        hub=hub,
        frame_log=frame_log,
    )


async def drain(worker: Worker, settings: Settings) -> None:
    """Finish or stop the worker's turns and ask its tabs to reconnect elsewhere (SIGTERM)."""
    await drain_worker(worker.engine, worker.hub, settings.shutdown_drain_s)


async def prepare_database(settings: Settings, db: Database, tools: ToolRegistry | None) -> None:
    """Bring the schema up to date where workers do it themselves (dev mode, SQLite; elsewhere
    ``parley migrate`` does), and let the tool packs create their tables and demo data."""
    if settings.dev or db.is_sqlite:
        await db.migrate()
    if tools is not None:
        await tools.setup_packs(db.engine, settings.dev)


def model_clients(settings: Settings) -> list[openai.AsyncOpenAI]:
    """OpenAI clients for the configured endpoint (one per API key), or for the in-process
    scripted dev model."""
    if settings.dev_model:
        from server.devllm.app import create_devllm_app
        from server.devllm.transport import in_process_client

        app = create_devllm_app(token_rate=settings.dev_model_token_rate)
        return [in_process_client(app)]
    keys = settings.openai_api_keys or ("unused",)
    return [
        openai.AsyncOpenAI(base_url=settings.openai_base_url, api_key=key, max_retries=0)
        for key in keys
    ]


async def open_redis(settings: Settings) -> RedisClient:
    # A worker starts even while Redis is down: /readyz reports it, sockets are refused with
    # 1013 until it answers, and everything reconnects as after a later outage.
    return await connect_redis(
        settings.redis_url,
        mode=RedisMode(settings.redis_mode),
        max_connections=settings.redis_max_connections,
        require_reachable=False,
    )


async def _interrupt_orphans(transcripts: TranscriptStore) -> None:
    # One process owns every turn: replies left streaming belonged to a previous run.
    try:
        orphans = await transcripts.interrupt_orphans()
    except SQLAlchemyError as exc:  # an unmigrated database: /readyz says so
        logger.warning("could not close a previous run's replies: %s", type(exc).__name__)
        return
    if orphans:
        logger.warning("marked %d replies of a previous run as interrupted", orphans)


async def _cancelled(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
