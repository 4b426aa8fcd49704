"""The long-lived parts of a worker, built once by the app's lifespan and shared by handlers."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import openai
from redis.asyncio import Redis

from server.config import Settings
from server.turns.history_cache import HistoryCache
from server.turns.llm import ModelClient
from storage.db import Database
from storage.frame_log import FrameLog
from storage.leases import TurnLeases
from storage.redis_client import connect_redis
from storage.small_stores import ControlChannel, Presence
from storage.transcripts import TranscriptStore
from storage.turn_queue import TurnQueue

if TYPE_CHECKING:
    from server.stream.hub import FrameHub
    from server.stream.notices import Notices
    from server.tools.registry import ToolRegistry
    from server.turns.engine import TurnEngine
    from server.turns.tool_runner import ToolRunner
    from storage.feedback import FeedbackStore

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class Services:
    """Everything a handler or a turn needs, in one place."""

    settings: Settings
    worker_id: str
    db: Database
    redis: Redis
    frame_log: FrameLog
    leases: TurnLeases
    turn_queue: TurnQueue
    presence: Presence
    control: ControlChannel
    transcripts: TranscriptStore
    history: HistoryCache
    model: ModelClient
    tools: ToolRegistry | None
    hub: FrameHub
    notices: Notices
    feedback: FeedbackStore
    # Set right after construction: these two need the finished Services themselves.
    engine: TurnEngine = None  # type: ignore[assignment]
    tool_runner: ToolRunner = None  # type: ignore[assignment]
    dev_model_app: Any = None  # the in-process scripted model, when it is the one in use


def model_clients(settings: Settings) -> tuple[list[openai.AsyncOpenAI], Any]:
    """OpenAI clients for the configured endpoint, or for the in-process dev model."""
    if settings.dev_model:
        from server.devllm.app import create_devllm_app
        from server.devllm.transport import in_process_client

        app = create_devllm_app(token_rate=settings.dev_model_token_rate)
        return [in_process_client(app)], app
    keys = settings.openai_api_keys or ("unused",)
    clients = [
        openai.AsyncOpenAI(base_url=settings.openai_base_url, api_key=key, max_retries=0)
        for key in keys
    ]
    return clients, None


async def open_redis(settings: Settings) -> Redis:
    # A worker starts even while Redis is down: /readyz reports it, sockets are refused with
    # 1013 until it answers, and everything reconnects as after a later outage.
    return await connect_redis(
        settings.redis_url,
        max_connections=settings.redis_max_connections,
        require_reachable=False,
    )


def new_worker_id(settings: Settings) -> str:
    return settings.worker_id or f"w_{secrets.token_hex(4)}"
