"""A tab of a host page that offers page tools: it registers them and answers their calls with
handlers of the test's own, while it keeps every frame it receives."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

import orjson
import websockets

from tests.server.harness import FRAME_TIMEOUT_S, ParleyServer, Tab

# What a handler answers: ``{"result": ...}`` or ``{"error": "..."}``; None leaves the call
# unanswered (a page that hangs).
Handler = Callable[[dict[str, Any]], dict[str, Any] | None]


def tool_spec(name: str, **extra: Any) -> dict[str, Any]:
    """A page tool taking one string argument ``id``."""
    return {
        "name": name,
        "description": f"the page's {name}",
        "parameters": {
            "type": "object",
            "properties": {"id": {"type": "string"}},
            "required": ["id"],
        },
        **extra,
    }


class Page:
    """One tab with page tools; its frames are read in the background."""

    def __init__(self, tab: Tab, handlers: dict[str, Handler]) -> None:
        self.tab = tab
        self.handlers = handlers
        self.frames: list[dict[str, Any]] = []
        self.calls: list[dict[str, Any]] = []
        self._arrived = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(
        cls,
        server: ParleyServer,
        handlers: dict[str, Handler],
        *,
        token: str | None = None,
        tools: list[dict[str, Any]] | None = None,
    ) -> Page:
        page = cls(await server.tab(token), handlers)
        await page.register(tools if tools is not None else [tool_spec(n) for n in handlers])
        return page

    async def register(self, tools: list[dict[str, Any]]) -> None:
        """Send ``page_tools`` and wait until the server has taken it (the pong that follows
        it on the same socket)."""
        await self.tab.send({"type": "page_tools", "tools": tools})
        await self.tab.send({"type": "ping", "t": len(self.frames)})
        await self.wait_for(lambda frame: frame["type"] == "pong")

    async def _read(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in self.tab.ws:
                frame = orjson.loads(raw)
                self.frames.append(frame)
                if frame["type"] == "page_tool_call":
                    self.calls.append(frame)
                    handler = self.handlers.get(frame["name"])
                    answer = handler(frame["arguments"]) if handler else None
                    if answer is not None:
                        reply = {"type": "page_tool_result", "call_id": frame["call_id"]}
                        await self.tab.send({**reply, **answer})
                self._arrived.set()

    async def wait_for(
        self, match: Callable[[dict[str, Any]], bool], timeout: float = FRAME_TIMEOUT_S
    ) -> dict[str, Any]:
        """The first frame received so far or from now on that matches."""
        deadline = time.monotonic() + timeout
        while True:
            for frame in self.frames:
                if match(frame):
                    return frame
            self._arrived.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no matching frame among {self.frames[-5:]}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)

    async def ask(
        self, text: str, client_msg_id: str, *, profile: str | None = None
    ) -> list[dict[str, Any]]:
        """Send a message (starting a conversation under ``profile``, if given); the frames of
        its turn, up to its ``turn_end``."""
        start = len(self.frames)
        frame = {"type": "user_message", "client_msg_id": client_msg_id, "text": text}
        if profile is not None:
            frame["profile"] = profile
        await self.tab.send(frame)
        message = await self.wait_for(
            lambda frame: frame["type"] == "message" and frame["client_msg_id"] == client_msg_id
        )
        conversation = message["conversation_id"]
        await self.wait_for(
            lambda frame: frame["type"] == "turn_end" and frame["conversation_id"] == conversation
        )
        return self.frames[start:]

    async def close(self) -> None:
        await self.tab.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


def answer_of(frames: list[dict[str, Any]]) -> str:
    """The text of the turn's ``response``."""
    (response,) = [frame for frame in frames if frame["type"] == "response"]
    return str(response["text"])
