"""MCP tool sources (``kind = "mcp"``): a host's MCP server, over streamable HTTP or stdio.

An `McpSource` keeps one `McpConnection` (mcp_connection.py) to its server and turns the
server's tools into `ToolSpec`s named ``<source>__<tool>`` (a dot in an MCP tool's name becomes
``-``, since function names may not have dots):

- ``readOnlyHint: true`` makes a query, which runs at once; anything else is an action, which
  runs only after the user approves it. The operator's per-tool ``kind`` wins over the hint.
- An action carries ``destructiveHint`` (MCP's default for an action: true) on its spec, and
  the confirmation card's line says when the host calls the action destructive.
- The input schema is the tool's parameters as written, checked with JSON Schema.
- A tool whose name no model accepts (``<source>__<tool>`` must fit OpenAI's function names) or
  whose input schema is not a JSON Schema object is skipped with a warning naming it: one bad
  tool of a server, perhaps a third party's, does not hide the others. An operator's summary
  template that does not fit its tool stops the worker at startup, like the rest of the file.

Each call is made as the user: the framework's `CallAuth` gives the headers (a per-call JWT,
the user's own token, or none, plus static headers), which go on that call's HTTP request. A
stdio server has no headers, so there the ``Authorization`` value travels in the request's
``params._meta["parley/authorization"]``. An approved action also carries its confirmation
token as ``params._meta["parley/idempotency_key"]`` and, over HTTP, as ``Idempotency-Key``.

What the model sees: ``{"text": ..., "structured_content": ...}`` with either left out when the
server sent none (and the text left out when it only repeats the structured content as JSON),
cut to ``PARLEY_TOOL_RESPONSE_MAX_BYTES`` with a note. A result with ``isError`` becomes a tool
error carrying the server's message, cut to ``PARLEY_TOOL_ERROR_MAX_CHARS``. An answer larger
than ``PARLEY_TOOL_DOCUMENT_MAX_BYTES`` cannot be parsed in part (it is one JSON-RPC message)
and becomes a tool error.

Retries follow an OpenAPI source's (http_calls.py). A query is tried again
(``PARLEY_TOOL_QUERY_ATTEMPTS``) when the server was not connected or the connection failed, not
when it was merely slow. An action is tried again (``PARLEY_TOOL_ACTION_ATTEMPTS``) only where no
answer came, always with the same key; when one of its attempts may have reached the server and
none was answered, the tool error says that the action may or may not have been carried out: it
is never sent under a new key. A protocol error (unknown tool, invalid arguments) is an answer,
and is not retried.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
from typing import Any

import jsonschema
import mcp_types as types
import orjson

from server.ops import metrics
from server.tools.arguments import SchemaArguments
from server.tools.context import ToolContext
from server.tools.errors import ToolError
from server.tools.registry import (
    Summarizer,
    ToolKind,
    ToolReturn,
    ToolSpec,
    template_summarizer,
)
from server.tools.sources.base import SourceLimits, SourceState, ToolSource
from server.tools.sources.config import SourceConfig
from server.tools.sources.errors import SourceLoadError
from server.tools.sources.mcp_connection import (
    CallFailed,
    McpConnection,
    McpLimits,
    McpUnavailable,
)
from server.tools.sources.user_token import CallAuth
from server.tools.views import take_view

__all__ = [
    "AUTHORIZATION_META_KEY",
    "IDEMPOTENCY_META_KEY",
    "McpSource",
    "bounded_result",
    "describe_block",
    "spec_fields",
]

IDEMPOTENCY_META_KEY = "parley/idempotency_key"
AUTHORIZATION_META_KEY = "parley/authorization"
# OpenAI's rule for function names; a source's tools are offered as "<source>__<tool>".
_FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_SUMMARY_MAX = 300

logger = logging.getLogger(__name__)


def tool_kind(tool: types.Tool, override: ToolKind | None) -> ToolKind:
    """Query when the operator says so or the server says ``readOnlyHint: true``; else action."""
    if override is not None:
        return override
    hints = tool.annotations
    return "query" if hints is not None and hints.read_only_hint is True else "action"


def is_destructive(tool: types.Tool, kind: ToolKind) -> bool | None:
    """For an action, ``destructiveHint`` with MCP's default (true); None for a query."""
    if kind == "query":
        return None
    hints = tool.annotations
    if hints is None or hints.destructive_hint is None:
        return True
    return hints.destructive_hint


def spec_fields(tool: types.Tool, source: SourceConfig) -> dict[str, Any]:
    """The pure part of a tool's spec: name, description, kind, roles, hints and parameters.

    Raises:
        SourceLoadError: the tool's name cannot be offered to a model, or its input schema is
            not a JSON Schema object.
    """
    # MCP allows dots in tool names ("files.read"), OpenAI's function names do not.
    name = source.tool_name(tool.name.replace(".", "-"))
    where = f"tool {tool.name!r}"
    if not _FUNCTION_NAME.match(name):
        raise SourceLoadError(
            source.name,
            where,
            f"{name!r} is not a usable function name (letters, digits, '_' and '-', at most 64); "
            "leave it out with `exclude`",
        )
    schema = dict(tool.input_schema)
    if schema.get("type") != "object":
        raise SourceLoadError(source.name, where, "the input schema is not of type object")
    override = source.override(tool.name)
    kind = tool_kind(tool, override.kind)
    title = tool.title or (tool.annotations.title if tool.annotations else None)
    description = tool.description or title or f"{tool.name} (the server gives no description)"
    return {
        "name": name,
        "description": description,
        "kind": kind,
        "roles": override.roles if override.roles is not None else frozenset(),
        "parameters": schema,
        "source": source.name,
        "source_roles": source.roles,
        "destructive": is_destructive(tool, kind),
    }


class McpSource(ToolSource):
    """A host's MCP server as a tool source."""

    def __init__(self, config: SourceConfig, limits: SourceLimits, auth: CallAuth) -> None:
        super().__init__(config, limits, auth)
        self._connection = McpConnection(
            config.name,
            url=config.url,
            command=config.command,
            headers=config.headers,
            limits=McpLimits(
                list_timeout_s=limits.timeout_s,
                max_response_bytes=limits.document_max_bytes,
                max_list_bytes=limits.document_max_bytes,
                retry_min_s=min(1.0, limits.retry_load_s),
                retry_max_s=limits.retry_load_s,
            ),
            on_tools=self._tools_changed,
        )
        self._started = False
        self._reloads: set[asyncio.Task[None]] = set()
        self._skipped: set[str] = set()  # warnings already logged, not repeated on each reload

    # -- loading -------------------------------------------------------------------------------

    async def load(self) -> dict[str, ToolSpec]:
        if not self._started:
            self._started = True
            await self._connection.start(wait_s=self.limits.timeout_s + 5.0)
        tools = self._connection.tools
        if tools is None:
            where = self.config.url or " ".join(self.config.command)
            reason = self._connection.error or "not connected"
            raise SourceLoadError(self.name, where, reason, reachable=False)
        specs: dict[str, ToolSpec] = {}
        for tool in tools:
            if not self.config.offers(tool.name):
                continue
            spec = self._spec(tool)
            if spec is None:
                continue
            if spec.name in specs:
                # "a.b" and "a-b" are both offered as "a-b": the first one listed keeps it.
                self._skip(SourceLoadError(self.name, f"tool {tool.name!r}", "its name clashes"))
                continue
            specs[spec.name] = spec
        return specs

    def _tools_changed(self, tools: tuple[types.Tool, ...]) -> None:
        # Called by the connection after every listing, from its own task: reload through the
        # framework, which keeps the last good list if this one is unusable. The first listing
        # is read by `load` itself, while the source is starting.
        if self.state is SourceState.STARTING:
            return
        # The server answered tools/list (after a reconnect, say): an answer, as a call's would
        # be, so a circuit opened while it was away closes now, not after its reset time.
        self.breaker.succeeded()
        task = asyncio.create_task(self._reload_tools(), name=f"mcp reload {self.name}")
        self._reloads.add(task)
        task.add_done_callback(self._reloads.discard)

    async def _reload_tools(self) -> None:
        try:
            await self.refresh()
        except SourceLoadError as exc:
            logger.warning("%s; keeping the last good tool list", exc)

    async def close_transport(self) -> None:
        for task in list(self._reloads):
            task.cancel()
        await self._connection.close()

    def _spec(self, tool: types.Tool) -> ToolSpec | None:
        """The tool's spec, or None for a tool the server describes unusably (skipped with a
        warning: one bad tool of a server, perhaps a third party's, should not hide the rest).

        Raises:
            SourceLoadError: the operator's summary template for the tool does not fit it.
        """
        try:
            fields = spec_fields(tool, self.config)
            try:
                arguments = SchemaArguments(fields["parameters"])
            except jsonschema.SchemaError as exc:
                reason = f"the input schema is invalid ({exc.message[:200]})"
                raise SourceLoadError(self.name, f"tool {tool.name!r}", reason) from exc
        except SourceLoadError as exc:
            self._skip(exc)
            return None
        kind: ToolKind = fields["kind"]
        override = self.config.override(tool.name)
        summarize = None
        if kind == "action":
            if override.summary is not None:
                try:
                    summarize = template_summarizer(
                        fields["name"], override.summary, arguments.names
                    )
                except ValueError as exc:
                    raise SourceLoadError(self.name, f"tool {tool.name!r}", str(exc)) from exc
            else:
                summarize = self._default_summary(tool, fields["destructive"])

        async def run(ctx: ToolContext, **call_arguments: Any) -> Any:
            return await self._call(tool.name, kind, ctx, call_arguments)

        return ToolSpec(
            func=run,
            summarize=summarize,
            arguments=arguments,
            timeout_s=self._overall_timeout(kind),
            **fields,
        )

    def _skip(self, problem: SourceLoadError) -> None:
        if len(self._skipped) < 1000 and str(problem) not in self._skipped:
            self._skipped.add(str(problem))
            logger.warning("%s; the tool is not offered", problem)

    def _default_summary(self, tool: types.Tool, destructive: bool | None) -> Summarizer:
        label = tool.title or tool.name

        async def summarize(ctx: ToolContext, params: dict[str, Any]) -> str:
            shown = ", ".join(f"{key}={_short(value)}" for key, value in params.items())
            line = f"{label} on {self.name}" + (f" ({shown})" if shown else "")
            if len(line) > _SUMMARY_MAX:
                line = line[: _SUMMARY_MAX - 1] + "…"
            if destructive:
                line += " — the host marks this action destructive: it may delete or overwrite data"
            return line

        return summarize

    def _overall_timeout(self, kind: ToolKind) -> float:
        # The registry's deadline spans every attempt; each attempt keeps its own timeout, so
        # an action's unknown outcome is reported by this module, never cut short by the
        # registry.
        attempts = self.limits.action_attempts if kind == "action" else self.limits.query_attempts
        pauses = sum(self.limits.retry_base_s * 2.0**n for n in range(attempts - 1))
        return attempts * self.limits.timeout_s + pauses + 5.0

    # -- calling -------------------------------------------------------------------------------

    async def _call(
        self, tool: str, kind: ToolKind, ctx: ToolContext, arguments: dict[str, Any]
    ) -> Any:
        action = kind == "action"
        key = ctx.confirmation if action else None
        if action and not key:
            # Invariant 11: an action reaches a host only under its confirmation's key.
            raise ToolError(f"action {tool!r} runs only after the user approves it")
        limits = self.limits
        attempts = limits.action_attempts if action else limits.query_attempts
        may_have_run = False
        problem = "no attempt was made"
        for attempt in range(attempts):
            if attempt:
                pause = limits.retry_base_s * 2 ** (attempt - 1)
                await asyncio.sleep(random.uniform(pause / 2, pause))
            try:
                async with self.call_slot(self.config.tool_name(tool)) as breaker:
                    # A fresh token per attempt (its own jti and lifetime); the key stays.
                    headers, meta = self._identity(ctx, action, key)
                    try:
                        result = await self._connection.call(
                            tool, arguments, timeout_s=limits.timeout_s, headers=headers, meta=meta
                        )
                    except McpUnavailable as exc:
                        breaker.failed()
                        metrics.tool_source_attempt(self.name, "unreachable")
                        problem = f"not connected: {exc.reason}"
                        continue
                    except CallFailed as exc:
                        metrics.tool_source_attempt(self.name, _attempt_result(exc))
                        if exc.delivered is True:
                            # The server answered with a protocol error (unknown tool, bad
                            # arguments, an answer too large): nothing to retry.
                            breaker.succeeded()
                            raise ToolError(
                                f"{self.name!r} refused {tool!r}: {self._bounded(exc.reason)}",
                                code="host_refused",
                            ) from exc
                        breaker.failed()
                        problem = exc.reason
                        if exc.delivered is None:
                            may_have_run = True
                        if exc.timed_out and not action:
                            break  # a slow host is not asked again for a query
                        continue
                    breaker.succeeded()
                    metrics.tool_source_attempt(self.name, "refused" if result.is_error else "ok")
            except ToolError as exc:
                if exc.code == "source_unavailable":
                    metrics.tool_source_attempt(self.name, "circuit_open")
                if not (action and may_have_run):
                    raise
                break  # the circuit opened between attempts: the earlier ones may have run
            try:
                return self._result(tool, result)
            except ToolError as exc:
                if action and may_have_run:
                    # A server that keeps no record of keys may refuse the retry of an action
                    # that its first, unanswered attempt already carried out.
                    raise ToolError(
                        f"{exc.message}. An earlier attempt got no answer and may have carried "
                        "the action out: check in the application before trying again.",
                        code="outcome_unknown",
                    ) from exc
                raise
        raise self._gave_up(tool, action, problem, may_have_run)

    def _gave_up(self, tool: str, action: bool, problem: str, may_have_run: bool) -> ToolError:
        # The same words and codes as an OpenAPI source's (http_calls.py).
        if action and may_have_run:
            return ToolError(
                f"{self.name!r} did not confirm {tool!r} ({problem}). The action may or may "
                "not have been carried out: check in the application before trying again.",
                code="outcome_unknown",
            )
        if action:
            return ToolError(
                f"{self.name!r} could not be reached ({problem}); {tool!r} was not carried out",
                code="source_unreachable",
            )
        return ToolError(
            f"{self.name!r} could not answer {tool!r} ({problem})", code="source_failed"
        )

    def _identity(
        self, ctx: ToolContext, action: bool, key: str | None
    ) -> tuple[dict[str, str], dict[str, Any]]:
        headers = self.auth.headers(ctx, action=action)
        meta: dict[str, Any] = {}
        if key is not None:
            headers["Idempotency-Key"] = key
            meta[IDEMPOTENCY_META_KEY] = key
        if not self._connection.over_http and "Authorization" in headers:
            meta[AUTHORIZATION_META_KEY] = headers["Authorization"]
        return headers, meta

    def _result(self, tool: str, result: types.CallToolResult) -> Any:
        text = "\n\n".join(describe_block(block) for block in result.content)
        if result.is_error:
            message = text.strip() or f"{tool!r} failed on the host without a message"
            raise ToolError(self._bounded(message), code="host_refused")
        return viewed_result(text, result.structured_content, self.limits.response_max_bytes)

    def _bounded(self, message: str) -> str:
        limit = self.limits.error_max_chars
        message = " ".join(message.split())
        return message if len(message) <= limit else message[: limit - 1] + "…"


def _attempt_result(failure: CallFailed) -> str:
    """The attempt's result for ``parley_tool_source_attempts_total``."""
    if failure.delivered is True:
        return "refused"
    if failure.timed_out:
        return "timeout"
    return "no_answer" if failure.delivered is None else "unreachable"


def viewed_result(text: str, structured: Any, max_bytes: int) -> dict[str, Any] | ToolReturn:
    """What the model sees of a result (see `bounded_result`), and the view the structured
    content carries under ``parley_view`` / ``parley_export``, which the model never reads."""
    carried = take_view(structured)
    if carried.rest is structured:
        return bounded_result(text, structured, max_bytes)
    if _repeats(text, structured):
        text = ""  # the text was the JSON of the structured content, view and all
    return ToolReturn(
        bounded_result(text, carried.rest, max_bytes),
        carried.summary,
        view=carried.view,
        export=carried.export,
    )


def bounded_result(text: str, structured: Any, max_bytes: int) -> dict[str, Any]:
    """What the model sees of a result, at most about `max_bytes` of JSON.

    The text is left out when it only repeats the structured content (servers made with the
    SDKs send both for clients of either kind). When the whole is too large, the structured
    content becomes JSON text and both are cut, with a note saying so.
    """
    payload: dict[str, Any] = {}
    if structured is not None:
        payload["structured_content"] = structured
    if text and not _repeats(text, structured):
        payload["text"] = text
    size = len(orjson.dumps(payload))
    if size <= max_bytes:
        return payload
    parts = []
    if structured is not None:
        parts.append(orjson.dumps(structured).decode())
    if "text" in payload:
        parts.append(text)
    whole = "\n\n".join(parts).encode()
    budget = max(0, max_bytes - 200)
    while True:
        kept = whole[:budget].decode(errors="ignore")
        cut = {
            "text": kept,
            "truncated": f"the answer was {size} bytes; only the first {len(kept)} characters "
            "are shown",
        }
        # JSON escaping can make the cut text longer than its bytes: shrink until it fits.
        excess = len(orjson.dumps(cut)) - max_bytes
        if excess <= 0 or budget == 0:
            return cut
        budget = max(0, budget - excess)


def _repeats(text: str, structured: Any) -> bool:
    """Whether the text only says what the structured content says: its JSON, or (as SDKs
    do for a tool returning a plain value) the value wrapped as ``{"result": value}``."""
    if structured is None:
        return False
    wrapped = (
        structured.get("result") if isinstance(structured, dict) and len(structured) == 1 else None
    )
    if text == wrapped:
        return True
    try:
        parsed = json.loads(text)
    except ValueError:
        return False
    return bool(parsed == structured or (wrapped is not None and parsed == wrapped))


def describe_block(block: Any) -> str:
    """A content block as text: text as is, anything else described briefly."""
    if isinstance(block, types.TextContent):
        return block.text
    if isinstance(block, types.ImageContent | types.AudioContent):
        return f"[{block.type} {block.mime_type} not shown]"
    if isinstance(block, types.ResourceLink):
        return f"[resource {block.name}: {block.uri}]"
    if isinstance(block, types.EmbeddedResource):
        resource = block.resource
        if isinstance(resource, types.TextResourceContents):
            return resource.text
        return f"[resource {resource.uri} ({resource.mime_type or 'binary'}) not shown]"
    return f"[{getattr(block, 'type', 'content')} not shown]"


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return text if len(text) <= 60 else text[:59] + "…"
