"""What tests of a Redis outage (a restart, a failover) do while it lasts: read the workers'
readiness, wait for it to change, resend a message until a worker accepts it, and check that
the frames a tab kept are gapless."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.server.harness import ParleyServer, Tab


async def readiness(server: ParleyServer) -> tuple[int, dict[str, Any]]:
    async with httpx.AsyncClient() as client:
        reply = await client.get(f"{server.url}/readyz", timeout=10)
    return reply.status_code, reply.json()


async def wait_ready(server: ParleyServer, status: int, timeout: float = 30.0) -> dict[str, Any]:
    """Poll ``/readyz`` until it answers ``status``; its body then."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        code, body = await readiness(server)
        if code == status:
            return body
        assert asyncio.get_running_loop().time() < deadline, body
        await asyncio.sleep(0.1)


def assert_consecutive(frames: list[dict[str, Any]]) -> None:
    seqs = [frame["seq"] for frame in frames]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs


async def ask_until_accepted(
    tab: Tab, client_msg_id: str, text: str, conversation: str, timeout: float = 30.0
) -> list[dict[str, Any]]:
    """Send a message, and send it again while the answer is ``store_unavailable``."""
    deadline = asyncio.get_running_loop().time() + timeout

    def answered(frame: dict[str, Any]) -> bool:
        refused = frame["type"] == "error" and frame.get("ref") == client_msg_id
        return refused or frame["type"] == "turn_end"

    while True:
        await tab.send(
            {
                "type": "user_message",
                "client_msg_id": client_msg_id,
                "text": text,
                "conversation_id": conversation,
            }
        )
        frames = await tab.until(answered, timeout=timeout)
        if frames[-1]["type"] == "turn_end":
            return frames
        assert frames[-1]["code"] == "store_unavailable", frames[-1]
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.2)
