"""One call to a host over HTTP: retries that never run an action twice, bounded answers, and the
host's refusals turned into tool errors the model can explain.

Retries:

- A query is sent again after a connection error or a 5xx answer, up to
  ``PARLEY_TOOL_QUERY_ATTEMPTS``. A query that timed out is not: the host is slow, and asking
  again only adds load.
- An action carries ``Idempotency-Key: <confirmation token>`` on every attempt. It is sent again
  only where no answer came (a connection error, a timeout) or the answer was a 5xx, up to
  ``PARLEY_TOOL_ACTION_ATTEMPTS``, always with the same key, so a host that honours the key runs
  it once. When no attempt got a usable answer and one of them may have reached the host, the
  outcome is unknown: the call fails with a message saying that the action may have run, and it
  is never retried under a new key.

Answers:

- 2xx: the JSON (or text) body, read up to ``PARLEY_TOOL_RESPONSE_MAX_BYTES``; a longer answer
  is cut there and marked ``truncated`` with a note for the model.
- 401/403: "not allowed", with the host's message: the host decides what the user may do.
- other 4xx, 5xx: a tool error with the status and the host's message, bounded to
  ``PARLEY_TOOL_ERROR_MAX_CHARS``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from server.ops import metrics
from server.tools.context import ToolContext
from server.tools.errors import ToolError

if TYPE_CHECKING:
    from server.tools.sources.base import ToolSource

__all__ = ["HttpRequest", "call_host", "host_message", "read_capped"]

logger = logging.getLogger(__name__)

ERROR_BODY_MAX_BYTES = 16 * 1024
# Exceptions raised before a request could have reached the host: safe to send again.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """A request to a host, before the identity headers are added."""

    tool: str
    method: str
    url: str
    query: dict[str, Any]
    body: dict[str, Any] | None
    action: bool


async def read_capped(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """The body of a streamed response, at most ``limit`` bytes; and whether it was longer."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        room = limit - size
        if len(chunk) > room:
            chunks.append(chunk[:room])
            return b"".join(chunks), True
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks), False


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    content_type: str
    body: bytes
    truncated: bool


async def call_host(
    source: ToolSource, client: httpx.AsyncClient, request: HttpRequest, ctx: ToolContext
) -> Any:
    """Send ``request`` as the user of ``ctx`` and return the host's answer for the model.

    Raises:
        ToolError: the host refused or failed, could not be reached, or (for an action) did not
            answer, so the action may have run; the message says which.
    """
    if request.action and not ctx.confirmation:
        # Invariant 11: an action reaches a host only under its confirmation's key.
        raise ToolError(f"action {request.tool!r} runs only after the user approves it")
    limits = source.limits
    attempts = limits.action_attempts if request.action else limits.query_attempts
    may_have_run = False
    problem = "no attempt was made"
    for attempt in range(attempts):
        if attempt:
            pause = limits.retry_base_s * 2 ** (attempt - 1)
            await asyncio.sleep(random.uniform(pause / 2, pause))
        try:
            async with source.call_slot(request.tool) as breaker:
                headers = source.auth.headers(ctx, action=request.action)
                headers["Accept"] = "application/json"
                if request.action:
                    headers["Idempotency-Key"] = str(ctx.confirmation)
                try:
                    answer = await _send(client, request, headers, limits.response_max_bytes)
                except httpx.HTTPError as exc:
                    breaker.failed()
                    metrics.tool_source_attempt(source.name, _transport_result(exc))
                    problem = _transport_problem(exc, limits.timeout_s)
                    if not isinstance(exc, _NOT_SENT):
                        may_have_run = True
                    if (
                        not request.action
                        and not isinstance(exc, _NOT_SENT)
                        and isinstance(exc, httpx.TimeoutException)
                    ):
                        break  # a slow host is not asked the same again
                    continue
                metrics.tool_source_attempt(source.name, _answer_result(answer.status))
                if answer.status >= 500:
                    breaker.failed()
                    may_have_run = True
                    problem = (
                        f"answered {answer.status}: {_message(answer, limits.error_max_chars)}"
                    )
                    continue
                breaker.succeeded()
        except ToolError as exc:
            if exc.code == "source_unavailable":
                metrics.tool_source_attempt(source.name, "circuit_open")
            if not (request.action and may_have_run):
                raise
            break  # the circuit opened between attempts: the earlier ones may have run
        try:
            return _result(
                source.name, request, answer, limits.response_max_bytes, limits.error_max_chars
            )
        except ToolError as exc:
            if request.action and may_have_run:
                # A host that does not keep idempotency records may refuse the retry of an
                # action that its first, unanswered attempt already carried out.
                raise ToolError(
                    f"{exc.message}. An earlier attempt got no answer and may have carried the "
                    "action out: check in the application before trying again.",
                    code="outcome_unknown",
                ) from exc
            raise
    raise _gave_up(source.name, request, problem, may_have_run)


async def _send(
    client: httpx.AsyncClient, request: HttpRequest, headers: dict[str, str], limit: int
) -> _Answer:
    async with client.stream(
        request.method,
        request.url,
        params=request.query or None,
        json=request.body,
        headers=headers,
    ) as response:
        cap = limit if response.status_code < 400 else ERROR_BODY_MAX_BYTES
        body, truncated = await read_capped(response, cap)
    return _Answer(response.status_code, response.headers.get("content-type", ""), body, truncated)


def _result(source: str, request: HttpRequest, answer: _Answer, limit: int, chars: int) -> Any:
    status = answer.status
    if status in (401, 403):
        raise ToolError(
            f"not allowed: {source!r} refused {request.tool!r} for this user "
            f"({status}: {_message(answer, chars)})",
            code="host_forbidden",
        )
    if status >= 400 or status < 200:
        raise ToolError(
            f"{source!r} refused {request.tool!r} ({status}: {_message(answer, chars)})",
            code="host_refused",
        )
    text = answer.body.decode("utf-8", errors="replace")
    if answer.truncated:
        return {
            "truncated": True,
            "note": (
                f"The host's answer was longer than {limit} bytes; only its beginning is shown. "
                "Ask for less (filters, a smaller page) if more is needed."
            ),
            "partial": text,
        }
    if not answer.body:
        return {"ok": True, "status": status}
    if "json" in answer.content_type:
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def _gave_up(source: str, request: HttpRequest, problem: str, may_have_run: bool) -> ToolError:
    if request.action and may_have_run:
        return ToolError(
            f"{source!r} did not confirm {request.tool!r} ({problem}). The action may or may "
            "not have been carried out: check in the application before trying again.",
            code="outcome_unknown",
        )
    if request.action:
        return ToolError(
            f"{source!r} could not be reached ({problem}); {request.tool!r} was not carried out",
            code="source_unreachable",
        )
    return ToolError(
        f"{source!r} could not answer {request.tool!r} ({problem})", code="source_failed"
    )


def _transport_result(exc: httpx.HTTPError) -> str:
    if isinstance(exc, _NOT_SENT):
        return "unreachable"
    return "timeout" if isinstance(exc, httpx.TimeoutException) else "no_answer"


def _answer_result(status: int) -> str:
    if status >= 500:
        return "server_error"
    return "refused" if status >= 400 else "ok"


def _transport_problem(exc: httpx.HTTPError, timeout_s: float) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"no answer within {timeout_s:g}s"
    if isinstance(exc, _NOT_SENT):
        return "connection refused or unreachable"
    return f"the connection failed ({type(exc).__name__})"


def _message(answer: _Answer, limit: int) -> str:
    return host_message(answer.body, answer.content_type, limit)


def host_message(body: bytes, content_type: str, limit: int) -> str:
    """The host's own words about an error: a JSON ``detail``/``message``/``error``/``title``
    if it sent one, else its text; whitespace collapsed, at most ``limit`` characters."""
    text = body.decode("utf-8", errors="replace")
    if "json" in content_type:
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        found = _message_field(parsed)
        if found is not None:
            text = found
    text = " ".join(text.split()) or "no message"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _message_field(parsed: Any) -> str | None:
    if isinstance(parsed, str):
        return parsed
    if not isinstance(parsed, dict):
        return None
    for key in ("detail", "message", "error", "title", "error_description"):
        value = parsed.get(key)
        if isinstance(value, str):
            return value
        if isinstance(value, dict):
            inner = _message_field(value)
            if inner is not None:
                return inner
        if value is not None:
            return json.dumps(value, default=str)
    return None
