"""The model adapter: one streamed chat completion through the ``openai`` SDK.

Any OpenAI-compatible endpoint works. Several API keys may be configured: a 429 moves on to the
next key, honouring ``Retry-After``. The SDK's own retries are off so this module alone decides
what is retried, and every provider failure leaves as a ``ModelError`` that says honestly
whether trying again later can help.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import httpx
import openai

from protocol import ErrorCode
from server.config import Settings
from server.errors import ModelError
from server.turns.idle_watch import IdleWatch
from server.turns.model_stream import (
    MalformedStream,
    ModelReply,
    ModelUsage,
    ReplyBuilder,
    SseDecoder,
    StreamReportedError,
    ToolCallRequest,
)
from server.turns.token_counting import TokenCounter

logger = logging.getLogger(__name__)

TextSink = Callable[[str], Awaitable[None]]
DEV_MODEL_NAME = "parley-dev"

__all__ = ["ModelClient", "ModelReply", "ModelUsage", "ToolCallRequest"]

# The body is read outside the SDK, so the HTTP client's own errors arrive unmapped. Recent
# SDKs run on httpx2 and accept httpx clients too (the in-process dev model is one); older
# ones run on httpx alone: the errors of whichever are installed.
BODY_TIMEOUTS: tuple[type[Exception], ...] = (httpx.TimeoutException,)
BODY_ERRORS: tuple[type[Exception], ...] = (httpx.TransportError, httpx.StreamError)
try:
    import httpx2
except ImportError:  # pragma: no cover - an SDK from before httpx2
    pass
else:
    BODY_TIMEOUTS += (httpx2.TimeoutException,)
    BODY_ERRORS += (httpx2.TransportError, httpx2.StreamError)


class ModelClient:
    """Streams chat completions, rotating API keys on rate limits."""

    def __init__(self, settings: Settings, clients: Sequence[openai.AsyncOpenAI]) -> None:
        if not clients:
            raise RuntimeError("ModelClient needs at least one configured client")
        self.settings = settings
        # The scripted dev model answers to its own name, so usage and cost never pass off
        # its replies as a real model's (it has no price, so it costs nothing).
        self.model = DEV_MODEL_NAME if settings.dev_model else settings.model
        self._clients = list(clients)
        # A key that answered 429 rests until its Retry-After has passed (monotonic time).
        self._resting_until = [0.0] * len(self._clients)
        self._next = 0
        self.counter = TokenCounter(self.model)

    async def stream(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        on_text: TextSink,
        *,
        model: str | None = None,
        temperature: float | None = None,
    ) -> ModelReply:
        """Run one completion, passing text to ``on_text`` as it arrives.

        ``model`` and ``temperature`` are a profile's choices (see `model_for`); None asks for
        the configured model and the endpoint's default temperature.

        Raises:
            ModelError: the endpoint failed, refused, or the stream broke. Nothing is retried
                once text has reached ``on_text``, since it cannot be taken back.
        """
        attempts = self.settings.model_max_attempts
        for attempt in range(1, attempts + 1):
            index = await self._pick_client()
            builder = ReplyBuilder()
            try:
                await self._stream_once(
                    self._clients[index],
                    messages,
                    tools,
                    builder,
                    on_text,
                    model or self.model,
                    temperature,
                )
            except ModelError as exc:
                if exc.code == ErrorCode.MODEL_RATE_LIMITED:
                    self._rest(index, exc.retry_after)
                if attempt == attempts or builder.started or not exc.retryable:
                    raise
                if exc.code != ErrorCode.MODEL_RATE_LIMITED:
                    await asyncio.sleep(random.uniform(0, min(4.0, 0.25 * 2**attempt)))
                continue
            reply = builder.finish()
            if reply.usage is None:
                reply.usage = self._count_usage(messages, tools, reply)
            return reply
        raise RuntimeError("unreachable: the last attempt either returns or raises")

    async def _pick_client(self) -> int:
        """The next key in turn that is not resting; waits for one if all are.

        Raises:
            ModelError: every key rests longer than ``model_max_retry_after_s``.
        """
        count = len(self._clients)
        now = time.monotonic()
        for offset in range(count):
            index = (self._next + offset) % count
            if self._resting_until[index] <= now:
                self._next = (index + 1) % count
                return index
        index = min(range(count), key=self._resting_until.__getitem__)
        wait = self._resting_until[index] - now
        if wait > self.settings.model_max_retry_after_s:
            raise ModelError(
                ErrorCode.MODEL_RATE_LIMITED,
                "the model endpoint is rate limiting this server",
                retryable=True,
                retry_after=round(wait, 1),
            )
        await asyncio.sleep(wait)
        self._next = (index + 1) % count
        return index

    def _rest(self, index: int, retry_after: float | None) -> None:
        pause = 1.0 if retry_after is None else retry_after
        self._resting_until[index] = time.monotonic() + pause

    async def _stream_once(
        self,
        client: openai.AsyncOpenAI,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        builder: ReplyBuilder,
        on_text: TextSink,
        model: str,
        temperature: float | None,
    ) -> None:
        request: dict[str, Any] = {
            "model": model,
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": self.settings.model_max_output_tokens,
            "timeout": self.settings.model_timeout_s,
        }
        if tools:
            request["tools"] = tools
        if temperature is not None:
            request["temperature"] = temperature
        idle_timeout = self.settings.model_stream_idle_timeout_s
        try:
            # The SDK sends the request and turns a failed status into its error; the body is
            # read here (see model_stream.py for why). The SDK's overloads want TypedDicts for
            # messages; ours are plain dicts of the same shape, checked by the endpoint.
            streaming = client.chat.completions.with_streaming_response.create(**request)
            async with streaming as response:
                await _read_body(response.http_response, builder, on_text, idle_timeout)
        except TimeoutError as exc:
            raise ModelError(
                ErrorCode.MODEL_TIMEOUT,
                f"the model sent nothing for {idle_timeout:g} s",
                retryable=True,
            ) from exc
        except openai.APIError as exc:
            raise _translate(exc, streamed=builder.started) from exc
        except BODY_TIMEOUTS as exc:
            raise ModelError(
                ErrorCode.MODEL_TIMEOUT, "the model did not answer in time", retryable=True
            ) from exc
        except BODY_ERRORS as exc:
            raise _broken(streamed=builder.started) from exc
        except MalformedStream as exc:
            raise ModelError(
                ErrorCode.STREAM_INTERRUPTED,
                f"the model stream was malformed: {exc.reason}",
                retryable=True,
            ) from exc
        except StreamReportedError as exc:
            raise ModelError(
                ErrorCode.STREAM_INTERRUPTED,
                f"the model stream ended with an error: {exc.message}",
                retryable=True,
            ) from exc
        if builder.reply.finish_reason is None and not builder.started:
            raise ModelError(
                ErrorCode.STREAM_INTERRUPTED,
                "the model stream ended without a reply",
                retryable=True,
            )

    def _count_usage(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], reply: ModelReply
    ) -> ModelUsage:
        """Usage counted locally, for endpoints that send no usage chunk."""
        prompt = self.counter.count_messages(messages) + self.counter.count_tools(tools)
        completion = self.counter.count_message(
            {"content": reply.text, "tool_calls": [call.wire() for call in reply.tool_calls]}
        )
        return ModelUsage(prompt_tokens=prompt, completion_tokens=completion, estimated=True)

    def model_for(self, wanted: str | None) -> str:
        """The model a profile's turns ask for: ``wanted``, except that the scripted dev model
        answers under its own name whatever a profile names (so usage never passes off its
        replies as a real model's)."""
        if self.settings.dev_model or wanted is None:
            return self.model
        return wanted

    def cost_usd(self, usage: ModelUsage, model: str | None = None) -> float:
        """The cost of ``usage`` at the configured price of ``model`` (default: the configured
        one; 0 when unpriced)."""
        prices = self.settings.price_per_million(model or self.model)
        if prices is None:
            return 0.0
        price_in, price_out = prices
        cost = usage.prompt_tokens * price_in + usage.completion_tokens * price_out
        return round(cost / 1_000_000, 8)


async def _read_body(
    body: Any, builder: ReplyBuilder, on_text: TextSink, idle_timeout: float
) -> None:
    """Read the SSE body into ``builder``, passing text on; ``body`` is the httpx response.

    Raises:
        TimeoutError: nothing came for ``idle_timeout`` seconds while the body was awaited.
        MalformedStream, StreamReportedError: see ``ReplyBuilder.take``.
        Exception: the HTTP client's transport errors, as the caller maps them.
    """
    decoder = SseDecoder()
    take = builder.take
    async with IdleWatch(idle_timeout) as watch:
        async for data in body.aiter_bytes():
            watch.busy()
            for event, payload in decoder.feed(data):
                text = take(event, payload)
                if text is not None:
                    await on_text(text)
            watch.waiting()


def _broken(*, streamed: bool) -> ModelError:
    """A connection that failed: before the reply began, or in the middle of it."""
    if streamed:
        return ModelError(
            ErrorCode.STREAM_INTERRUPTED, "the model stream broke off mid-reply", retryable=True
        )
    return ModelError(
        ErrorCode.MODEL_UNAVAILABLE, "the model endpoint cannot be reached", retryable=True
    )


def _translate(exc: openai.APIError, *, streamed: bool) -> ModelError:
    """Map an SDK error to what the user and the client need to know."""
    if isinstance(exc, openai.RateLimitError):
        return ModelError(
            ErrorCode.MODEL_RATE_LIMITED,
            "the model endpoint is rate limiting this server",
            retryable=True,
            retry_after=_retry_after_seconds(exc),
        )
    if isinstance(exc, openai.APITimeoutError):
        return ModelError(
            ErrorCode.MODEL_TIMEOUT, "the model did not answer in time", retryable=True
        )
    if isinstance(exc, openai.APIConnectionError):
        return _broken(streamed=streamed)
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        if status >= 500:
            return ModelError(
                ErrorCode.MODEL_UNAVAILABLE,
                f"the model endpoint failed (HTTP {status})",
                retryable=True,
            )
        if status in (401, 403):
            return ModelError(
                ErrorCode.MODEL_ERROR,
                "the model endpoint refused this server's credentials",
                retryable=False,
            )
        return ModelError(
            ErrorCode.MODEL_ERROR,
            f"the model endpoint rejected the request (HTTP {status})",
            retryable=False,
        )
    # Any other SDK error is a stream the SDK could not make sense of.
    return ModelError(
        ErrorCode.STREAM_INTERRUPTED, "the model stream was malformed", retryable=True
    )


def _retry_after_seconds(exc: openai.APIStatusError) -> float | None:
    value = exc.response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
