"""What every tool source is: a host app whose tools Parley loads, offers and calls.

A `ToolSource` owns one ``[[source]]`` of the sources file. Its kind (OpenAPI, MCP) implements
two things: `load`, which reads the host's tool list and turns it into `ToolSpec`s, and
`close_transport`. Everything else is shared here:

- the lifecycle: `start` loads once; a host that does not answer leaves the source DOWN (its
  tools are hidden and `/readyz` reports it as degraded) and a background task tries again
  every ``PARLEY_TOOL_SOURCE_RETRY_S``; a host that answers with something unusable fails the
  start, since that is a mistake to fix, not an outage to wait out;
- `refresh`, for a kind that learns its list changed (MCP ``tools/list_changed``);
- the fault fence of every call, `call_slot`: the circuit breaker, then the per-source
  concurrency bound;
- the per-call identity headers (`CallAuth`).

The registry sees a source as a `ToolProvider`: `name`, `available` and `tools`.

States (`SourceState`) and their transitions::

    STARTING --loaded-->            UP
    STARTING --no answer-->         DOWN      (retried in the background)
    DOWN     --loaded-->            UP
    UP       --reload: no answer--> UP        (the last good list stays; the breaker decides)
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from enum import StrEnum

from server.config import Settings
from server.tools.errors import ToolError
from server.tools.registry import ToolSpec
from server.tools.sources.breaker import BreakerState, CircuitBreaker
from server.tools.sources.config import SourceConfig
from server.tools.sources.errors import SourceLoadError
from server.tools.sources.user_token import CallAuth

__all__ = ["SourceHealth", "SourceLimits", "SourceState", "ToolSource"]

logger = logging.getLogger(__name__)


class SourceState(StrEnum):
    """Whether a source's tool list is known."""

    STARTING = "starting"
    UP = "up"
    DOWN = "down"


@dataclass(frozen=True, slots=True)
class SourceLimits:
    """The limits every call to a source keeps, from `Settings` and the source's own table."""

    timeout_s: float
    response_max_bytes: int
    document_max_bytes: int
    error_max_chars: int
    concurrency: int
    query_attempts: int
    action_attempts: int
    retry_base_s: float
    breaker_failures: int
    breaker_reset_s: float
    retry_load_s: float

    @classmethod
    def of(cls, settings: Settings, source: SourceConfig) -> SourceLimits:
        return cls(
            timeout_s=source.timeout_s or settings.tool_timeout_s,
            response_max_bytes=settings.tool_response_max_bytes,
            document_max_bytes=settings.tool_document_max_bytes,
            error_max_chars=settings.tool_error_max_chars,
            concurrency=settings.tool_source_concurrency,
            query_attempts=max(1, settings.tool_query_attempts),
            action_attempts=max(1, settings.tool_action_attempts),
            retry_base_s=settings.tool_retry_base_s,
            breaker_failures=settings.tool_breaker_failures,
            breaker_reset_s=settings.tool_breaker_reset_s,
            retry_load_s=settings.tool_source_retry_s,
        )


@dataclass(frozen=True, slots=True)
class SourceHealth:
    """How a source is doing, for ``/readyz`` and logs.

    Attributes:
        state: whether its tool list is known.
        breaker: whether calls may go to it.
        tools: how many tools it offers.
        problem: why it is not fully usable, or None when it is.
    """

    state: SourceState
    breaker: BreakerState
    tools: int
    problem: str | None

    @property
    def ok(self) -> bool:
        return self.problem is None


class ToolSource(abc.ABC):
    """One host app's tools; a `ToolProvider` for the registry."""

    def __init__(self, config: SourceConfig, limits: SourceLimits, auth: CallAuth) -> None:
        self.config = config
        self.limits = limits
        self.auth = auth
        self.breaker = CircuitBreaker(limits.breaker_failures, limits.breaker_reset_s)
        self.state = SourceState.STARTING
        self._tools: dict[str, ToolSpec] = {}
        self._problem: str | None = None
        self._slots = asyncio.Semaphore(limits.concurrency)
        self._retry_task: asyncio.Task[None] | None = None
        self._load_lock = asyncio.Lock()

    # -- what a kind implements ------------------------------------------------------------

    @abc.abstractmethod
    async def load(self) -> dict[str, ToolSpec]:
        """Read the host's tool list: specs by full name (``<source>__<tool>``), already
        filtered by ``include``/``exclude`` and with the operator's overrides applied.

        Raises:
            SourceLoadError: ``reachable=False`` when the host did not answer; otherwise the
                description is unusable and the message names where and why.
        """

    async def close_transport(self) -> None:
        """Release connections and processes (an HTTP client, an MCP session)."""
        return None

    # -- the provider's face -----------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def tools(self) -> Mapping[str, ToolSpec]:
        return self._tools

    @property
    def available(self) -> bool:
        """Offer its tools: the list is known and the circuit is not open."""
        return self.state is SourceState.UP and self.breaker.state is not BreakerState.OPEN

    @property
    def problem(self) -> str | None:
        return self.health().problem

    def health(self) -> SourceHealth:
        """The state, the breaker and why the source is degraded, if it is."""
        breaker = self.breaker.state
        problem = self._problem if self.state is not SourceState.UP else None
        if problem is None and self.state is SourceState.STARTING:
            problem = "loading its tools"
        if problem is None and breaker is BreakerState.OPEN:
            problem = f"not answering ({self.breaker.failures} failed calls in a row)"
        return SourceHealth(self.state, breaker, len(self._tools), problem)

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the tool list once; if the host does not answer, keep trying in the background.

        Raises:
            SourceLoadError: the host answered with an unusable description.
        """
        try:
            await self.refresh()
        except SourceLoadError as exc:
            if exc.reachable:
                raise
            logger.warning("%s; its tools are not offered until it answers", exc)
            self._retry_task = asyncio.create_task(
                self._retry_until_loaded(), name=f"tool-source-{self.name}"
            )

    async def refresh(self) -> None:
        """Load the tool list now, replacing the one in use when it succeeds.

        Raises:
            SourceLoadError: as `load`; a source that was up keeps its last good list.
        """
        async with self._load_lock:
            try:
                tools = await self.load()
            except SourceLoadError as exc:
                if self.state is not SourceState.UP:
                    self.state = SourceState.DOWN
                    self._problem = exc.reason
                raise
            self._tools = tools
            self.state = SourceState.UP
            self._problem = None
            logger.info("tool source %r offers %d tools", self.name, len(tools))

    async def close(self) -> None:
        """Stop the background retries and release the transport."""
        if self._retry_task is not None:
            self._retry_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retry_task
        await self.close_transport()

    async def _retry_until_loaded(self) -> None:
        while self.state is not SourceState.UP:
            await asyncio.sleep(self.limits.retry_load_s)
            try:
                await self.refresh()
            except SourceLoadError as exc:
                # A document that turns up broken is logged, not fatal: the worker is serving.
                logger.warning("%s; trying again in %gs", exc, self.limits.retry_load_s)

    # -- the fence around each call ----------------------------------------------------------

    @contextlib.asynccontextmanager
    async def call_slot(self, tool: str) -> AsyncIterator[CircuitBreaker]:
        """Hold one of the source's concurrent-call slots, if its circuit lets the call go.

        The caller reports the outcome on the yielded breaker (`succeeded` for any answer
        that is not a server error, `failed` for no answer or a 5xx); leaving without a
        report (cancellation) frees a half-open trial for the next call.

        Raises:
            ToolError: the circuit is open; nothing was sent.
        """
        async with self._slots:
            if not self.breaker.allow():
                raise ToolError(
                    f"tool source {self.name!r} is not answering at the moment; {tool!r} was "
                    "not called",
                    code="source_unavailable",
                )
            try:
                yield self.breaker
            finally:
                self.breaker.released()
