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
from dataclasses import dataclass, field
from typing import Any

import openai

from protocol import ErrorCode
from server.config import Settings
from server.errors import ModelError
from server.turns.token_counting import TokenCounter

logger = logging.getLogger(__name__)

TextSink = Callable[[str], Awaitable[None]]
DEV_MODEL_NAME = "parley-dev"


@dataclass(slots=True)
class ToolCallRequest:
    """A tool call as the model streamed it; ``arguments`` is raw JSON text, unchecked."""

    id: str
    name: str
    arguments: str

    def wire(self) -> dict[str, Any]:
        """The OpenAI message shape, for the transcript and the next request."""
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }


@dataclass(slots=True)
class ModelUsage:
    prompt_tokens: int
    completion_tokens: int
    estimated: bool

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(slots=True)
class ModelReply:
    """Everything one model call produced."""

    text: str = ""
    tool_calls: list[ToolCallRequest] = field(default_factory=list)
    usage: ModelUsage | None = None
    finish_reason: str | None = None


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
            reply = ModelReply()
            try:
                await self._stream_once(
                    self._clients[index],
                    messages,
                    tools,
                    reply,
                    on_text,
                    model or self.model,
                    temperature,
                )
            except ModelError as exc:
                if exc.code == ErrorCode.MODEL_RATE_LIMITED:
                    self._rest(index, exc.retry_after)
                started = bool(reply.text) or bool(reply.tool_calls)
                if attempt == attempts or started or not exc.retryable:
                    raise
                if exc.code != ErrorCode.MODEL_RATE_LIMITED:
                    await asyncio.sleep(random.uniform(0, min(4.0, 0.25 * 2**attempt)))
                continue
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
        reply: ModelReply,
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
            # The SDK's overloads want TypedDicts for messages; ours are plain dicts of the
            # same shape, checked by the endpoint.
            stream: openai.AsyncStream[Any] = await client.chat.completions.create(**request)
            async with stream:
                chunks = stream.__aiter__()
                while True:
                    try:
                        async with asyncio.timeout(idle_timeout):
                            chunk = await chunks.__anext__()
                    except StopAsyncIteration:
                        break
                    await self._take_chunk(chunk, reply, on_text)
        except TimeoutError as exc:
            raise ModelError(
                ErrorCode.MODEL_TIMEOUT,
                f"the model sent nothing for {idle_timeout:g} s",
                retryable=True,
            ) from exc
        except openai.APIError as exc:
            raise _translate(exc, streamed=bool(reply.text)) from exc
        if reply.finish_reason is None and not reply.text and not reply.tool_calls:
            raise ModelError(
                ErrorCode.STREAM_INTERRUPTED,
                "the model stream ended without a reply",
                retryable=True,
            )

    async def _take_chunk(self, chunk: Any, reply: ModelReply, on_text: TextSink) -> None:
        if chunk.usage is not None:
            reply.usage = ModelUsage(
                prompt_tokens=chunk.usage.prompt_tokens or 0,
                completion_tokens=chunk.usage.completion_tokens or 0,
                estimated=False,
            )
        if not chunk.choices:
            return
        choice = chunk.choices[0]
        delta = choice.delta
        if delta is not None:
            if delta.content:
                reply.text += delta.content
                await on_text(delta.content)
            for piece in delta.tool_calls or ():
                _merge_tool_call_piece(reply.tool_calls, piece)
        if choice.finish_reason is not None:
            reply.finish_reason = choice.finish_reason

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


def _merge_tool_call_piece(calls: list[ToolCallRequest], piece: Any) -> None:
    # Tool calls stream in pieces keyed by index: the first carries id and name, the rest
    # carry slices of the arguments text.
    while len(calls) <= piece.index:
        calls.append(ToolCallRequest(id="", name="", arguments=""))
    call = calls[piece.index]
    if piece.id:
        call.id = piece.id
    if piece.function is not None:
        if piece.function.name:
            call.name += piece.function.name
        if piece.function.arguments:
            call.arguments += piece.function.arguments


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
        if streamed:
            return ModelError(
                ErrorCode.STREAM_INTERRUPTED, "the model stream broke off mid-reply", retryable=True
            )
        return ModelError(
            ErrorCode.MODEL_UNAVAILABLE, "the model endpoint cannot be reached", retryable=True
        )
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
