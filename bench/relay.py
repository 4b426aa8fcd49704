"""The baselines: a bare Starlette WebSocket relay from the same model to the same client.

It speaks just enough of Parley's protocol for the benchmark client (``hello`` → ``ready``,
``user_message`` → ``response_delta`` per model chunk, then ``turn_end``) and does nothing
else: no authentication, no frame log, no Redis, no database, no batching. It reads the model
with the same ``openai`` client Parley uses, in one of two ways (``BENCH_RELAY_READER``):

* ``raw`` (the floor): the SDK makes the request and the relay reads the raw streaming
  response (``with_streaming_response``), each SSE ``data:`` line parsed with orjson — the
  least any server that relays an OpenAI-compatible stream has to do;
* ``typed``: the SDK's own stream of typed chunk objects, as most code written against the
  SDK reads it.

Run with ``uvicorn bench.relay:app``; ``BENCH_MODEL_URL`` is the model's ``/v1`` URL.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import openai
import orjson
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

_client = openai.AsyncOpenAI(
    base_url=os.environ.get("BENCH_MODEL_URL", "http://127.0.0.1:8100/v1"),
    api_key="bench",
    max_retries=0,
)
_READER = os.environ.get("BENCH_RELAY_READER", "typed")


async def _typed_deltas(text: str) -> AsyncIterator[str]:
    stream = await _client.chat.completions.create(
        model="bench", messages=[{"role": "user", "content": text}], stream=True
    )
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            yield chunk.choices[0].delta.content


async def _raw_deltas(text: str) -> AsyncIterator[str]:
    streaming = _client.chat.completions.with_streaming_response.create(
        model="bench", messages=[{"role": "user", "content": text}], stream=True
    )
    async with streaming as response:
        async for line in response.http_response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            choices = orjson.loads(line[6:]).get("choices")
            if choices:
                content = choices[0].get("delta", {}).get("content")
                if content:
                    yield content


_deltas = _raw_deltas if _READER == "raw" else _typed_deltas


async def _answer(websocket: WebSocket, text: str, lock: asyncio.Lock) -> None:
    async for delta in _deltas(text):
        frame = {"type": "response_delta", "delta": delta}
        async with lock:
            await websocket.send_text(orjson.dumps(frame).decode())
    async with lock:
        await websocket.send_text('{"type":"turn_end","status":"completed"}')


async def relay(websocket: WebSocket) -> None:
    await websocket.accept()
    lock = asyncio.Lock()
    answers: set[asyncio.Task[None]] = set()
    try:
        while True:
            frame = orjson.loads(await websocket.receive_text())
            if frame.get("type") == "hello":
                await websocket.send_text('{"type":"ready","last_seq":0,"active_turns":[]}')
            elif frame.get("type") == "user_message":
                task = asyncio.create_task(_answer(websocket, frame["text"], lock))
                answers.add(task)
                task.add_done_callback(answers.discard)
    except WebSocketDisconnect:
        for task in answers:
            task.cancel()


app = Starlette(routes=[WebSocketRoute("/ws", relay)])
