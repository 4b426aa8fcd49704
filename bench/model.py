"""The benchmark's model: an OpenAI-compatible streaming endpoint whose tokens carry the moment
they were sent.

Each token is `` @<ns>``, ``<ns>`` being ``time.monotonic_ns()`` when the chunk was written;
Linux's monotonic clock is shared by every process on the machine, so a client can subtract it
from its own clock on receipt and get the delay from the model to the tab. The last user
message sets the reply: ``tokens=N`` tokens at ``rate=R`` tokens per second (0: as fast as the
loop goes).

Run with ``uvicorn bench.model:app``.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

DEFAULT_TOKENS = 50
_TOKENS = re.compile(r"tokens=(\d+)")
_RATE = re.compile(r"rate=(\d+(?:\.\d+)?)")


def _last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages", [])):
        if message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else ""
    return ""


def _chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
    payload = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "bench",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}] if delta else [],
        **extra,
    }
    return b"data: " + orjson.dumps(payload) + b"\n\n"


async def _tokens(count: int, rate: float, with_usage: bool) -> AsyncIterator[bytes]:
    yield _chunk({"role": "assistant", "content": ""})
    started = time.monotonic()
    for index in range(count):
        if rate > 0:
            delay = started + index / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        elif index % 16 == 0:
            await asyncio.sleep(0)  # let other streams write too
        yield _chunk({"content": f" @{time.monotonic_ns()}"})
    yield _chunk({"content": ""}, "stop")
    if with_usage:
        usage = {"prompt_tokens": 10, "completion_tokens": count, "total_tokens": 10 + count}
        yield _chunk({}, usage=usage)
    yield b"data: [DONE]\n\n"


async def completions(request: Request) -> Response:
    body = await request.json()
    text = _last_user_text(body)
    tokens = _TOKENS.search(text)
    rate = _RATE.search(text)
    count = int(tokens.group(1)) if tokens else DEFAULT_TOKENS
    per_second = float(rate.group(1)) if rate else 0.0
    with_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    if not body.get("stream"):
        return JSONResponse({"error": {"message": "the benchmark model only streams"}}, 400)
    return StreamingResponse(_tokens(count, per_second, with_usage), media_type="text/event-stream")


async def models(_request: Request) -> Response:
    return JSONResponse({"object": "list", "data": [{"id": "bench", "object": "model"}]})


app = Starlette(
    routes=[
        Route("/v1/chat/completions", completions, methods=["POST"]),
        Route("/v1/models", models),
    ]
)
