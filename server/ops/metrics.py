"""Prometheus metrics: every definition here, one-line calls at the places that count.

With several worker processes on one machine, ``PROMETHEUS_MULTIPROC_DIR`` names an empty
directory set before they start (``parley serve --workers N`` makes one): each process then
writes its values to files there and ``/metrics``, answered by any of them, adds up all of them
(prometheus-client's multiprocess mode). Without it, values live in this process's memory.

Labels take values from closed sets only (frame types, turn statuses, error codes, registered
tool names), so a client or the model can never create new time series.
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from protocol import ErrorCode, FrameType
from server.tools.errors import ToolError, ToolForbidden

if TYPE_CHECKING:
    from server.tools.registry import ToolRegistry

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

# -- definitions -------------------------------------------------------------------------------

CONNECTIONS_OPEN = Gauge(
    "parley_connections_open",
    "WebSocket connections open on this worker (summed over live workers)",
    multiprocess_mode="livesum",
)
FRAMES_RECEIVED = Counter(
    "parley_frames_received", "Frames received from clients, by type", ["type"]
)
FRAMES_SENT = Counter("parley_frames_sent", "Frames queued to clients' sockets, by type", ["type"])
TURNS = Counter("parley_turns", "Turns ended, by status", ["status"])
TURN_DURATION = Histogram(
    "parley_turn_duration_seconds",
    "Time from a turn's start to its end (tool waits and confirmations included)",
    buckets=(0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600),
)
TIME_TO_FIRST_TOKEN = Histogram(
    "parley_turn_first_token_seconds",
    "Time from a turn's start to the first streamed text of its answer",
    buckets=(0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30),
)
MODEL_TOKENS = Counter(
    "parley_model_tokens", "Tokens of model calls, by model and kind", ["model", "kind"]
)
MODEL_COST = Counter("parley_model_cost_usd", "Estimated cost of model calls in USD", ["model"])
# Profiles come from the operator's file, so the label has as many values as it has profiles.
PROFILE_TURNS = Counter(
    "parley_profile_turns",
    "Turns ended, by the conversation's profile and status",
    ["profile", "status"],
)
PROFILE_TOKENS = Counter(
    "parley_profile_model_tokens", "Tokens of model calls, by profile and kind", ["profile", "kind"]
)
PROFILE_COST = Counter(
    "parley_profile_model_cost_usd", "Estimated cost of model calls in USD, by profile", ["profile"]
)
PROFILE_HANDOFFS = Counter(
    "parley_profile_handoffs",
    "Conversations handed over, by profile and target",
    ["profile", "target"],
)
TOOL_CALLS = Counter("parley_tool_calls", "Tool calls by tool and outcome", ["tool", "outcome"])
TOOL_SOURCE_ATTEMPTS = Counter(
    "parley_tool_source_attempts",
    "Requests to host apps' tool sources, by source and result",
    ["source", "result"],
)
CONFIRMATIONS = Counter(
    "parley_confirmations", "Confirmations entering a status, by status", ["status"]
)
LIMIT_REFUSALS = Counter("parley_limit_refusals", "Requests refused by a limit, by code", ["code"])
REDIS_ERRORS = Counter(
    "parley_redis_errors", "Redis failures seen by the server, by where", ["where"]
)
DB_ERRORS = Counter("parley_db_errors", "Database errors, by exception class", ["error"])
HTTP_REQUESTS = Counter(
    "parley_http_requests", "REST API requests, by operation and status", ["operation", "status"]
)
WEBHOOK_DELIVERIES = Counter(
    "parley_webhook_deliveries", "Escalation webhook delivery attempts, by outcome", ["outcome"]
)

# Error codes that mean "a limit said no" (as opposed to a bad request or a failure).
LIMIT_CODES = frozenset(
    {
        ErrorCode.RATE_LIMITED,
        ErrorCode.TOO_MANY_CONNECTIONS,
        ErrorCode.FLOODING,
        ErrorCode.BUDGET_EXCEEDED,
        ErrorCode.MESSAGE_TOO_LONG,
        ErrorCode.FRAME_TOO_LARGE,
        ErrorCode.CONVERSATION_FULL,
        ErrorCode.TURN_IN_PROGRESS,
    }
)
_FRAME_TYPES = frozenset(kind.value for kind in FrameType)
_TYPE_KEY = '"type":"'
_TYPE_SEARCH_CHARS = 40  # '{"seq":' and a 16-digit seq fit well within this

# -- one-line helpers for the counting sites ------------------------------------------------


def frame_received(kind: str) -> None:
    """Count a frame from a client; anything that did not decode counts as ``invalid``."""
    FRAMES_RECEIVED.labels(kind if kind in _FRAME_TYPES else "invalid").inc()


def frames_sent(text: str, copies: int = 1) -> None:
    """Count an encoded frame queued to ``copies`` sockets."""
    if copies > 0:
        FRAMES_SENT.labels(frame_type(text)).inc(copies)


def frame_type(text: str) -> str:
    """The ``type`` of an encoded frame, read without parsing: ``encode`` writes it first, and
    the frame log only puts ``"seq"`` before it."""
    start = text.find(_TYPE_KEY, 0, _TYPE_SEARCH_CHARS)
    if start >= 0:
        start += len(_TYPE_KEY)
        kind = text[start : text.find('"', start)]
        if kind in _FRAME_TYPES:
            return kind
    return "other"


def refused(code: str) -> None:
    """Count a refusal if ``code`` is one of the limit codes (anything else is ignored)."""
    if code in LIMIT_CODES:
        LIMIT_REFUSALS.labels(str(code)).inc()


def redis_error(where: str) -> None:
    REDIS_ERRORS.labels(where).inc()


def sent(kind: str) -> None:
    """Count one unlogged frame (``ready``, ``error``, ``pong``) queued to one socket."""
    FRAMES_SENT.labels(kind).inc()


def tool_call(registry: ToolRegistry | None, tool: str, outcome: str) -> None:
    """Count a tool call; a name the registry does not know (the model made it up) is counted
    as ``unknown``."""
    known = registry is not None and registry.get(tool) is not None
    TOOL_CALLS.labels(tool if known else "unknown", outcome).inc()


def tool_refused(registry: ToolRegistry | None, tool: str, error: ToolError) -> None:
    """Count a call refused before it ran: ``forbidden`` by role, else ``invalid``."""
    tool_call(registry, tool, "forbidden" if isinstance(error, ToolForbidden) else "invalid")


def tool_source_attempt(source: str, result: str) -> None:
    """Count one request to a tool source: ``ok``, ``refused`` (4xx), ``server_error`` (5xx),
    ``timeout``, ``no_answer`` (the connection broke), ``unreachable`` or ``circuit_open``
    (neither was sent)."""
    TOOL_SOURCE_ATTEMPTS.labels(source, result).inc()


def confirmation(status: str) -> None:
    CONFIRMATIONS.labels(status).inc()


def model_usage(model: str, prompt_tokens: int, completion_tokens: int, cost_usd: float) -> None:
    MODEL_TOKENS.labels(model, "prompt").inc(prompt_tokens)
    MODEL_TOKENS.labels(model, "completion").inc(completion_tokens)
    MODEL_COST.labels(model).inc(max(cost_usd, 0.0))


def profile_turn(profile: str, status: str) -> None:
    PROFILE_TURNS.labels(profile, status).inc()


def profile_usage(
    profile: str, prompt_tokens: int, completion_tokens: int, cost_usd: float
) -> None:
    PROFILE_TOKENS.labels(profile, "prompt").inc(prompt_tokens)
    PROFILE_TOKENS.labels(profile, "completion").inc(completion_tokens)
    PROFILE_COST.labels(profile).inc(max(cost_usd, 0.0))


def profile_handoff(profile: str, target: str) -> None:
    PROFILE_HANDOFFS.labels(profile, target).inc()


class TurnClock:
    """Start times of this worker's running turns, for the latency histograms.

    Bounded: a turn whose end is never reported (it cannot happen short of a bug) is forgotten
    once ``limit`` newer turns started.
    """

    def __init__(self, limit: int = 10_000) -> None:
        self._limit = limit
        self._started: OrderedDict[str, tuple[float, bool]] = OrderedDict()

    def started(self, turn_id: str) -> None:
        self._started[turn_id] = (time.monotonic(), False)
        while len(self._started) > self._limit:
            self._started.popitem(last=False)

    def first_text(self, turn_id: str) -> None:
        """The turn streamed text; only the first call per turn is observed."""
        entry = self._started.get(turn_id)
        if entry is not None and not entry[1]:
            self._started[turn_id] = (entry[0], True)
            TIME_TO_FIRST_TOKEN.observe(time.monotonic() - entry[0])

    def ended(self, turn_id: str, status: str) -> None:
        TURNS.labels(status).inc()
        entry = self._started.pop(turn_id, None)
        if entry is not None:
            TURN_DURATION.observe(time.monotonic() - entry[0])


turns = TurnClock()


def instrument_database(engine: AsyncEngine) -> None:
    """Count every error the database driver raises, whoever ran the statement."""

    def on_error(context: Any) -> None:
        DB_ERRORS.labels(type(context.original_exception).__name__).inc()

    event.listen(engine.sync_engine, "handle_error", on_error)


# -- exposition --------------------------------------------------------------------------------


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROCESS_ENV) or None


def render() -> tuple[bytes, str]:
    """The exposition text of every metric and its content type (blocking: file reads in
    multi-process mode)."""
    if multiprocess_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def process_exiting() -> None:
    """Drop this process's live gauges from the shared files (multi-process mode only)."""
    if multiprocess_dir():
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
