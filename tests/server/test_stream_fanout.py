"""Fan-out across workers: two worker processes share Redis, a user's tabs are spread over
both, and every tab sees the same frames with the same seqs, tool calls included."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio

from storage.keys import UserKey
from storage.small_stores import Presence
from tests.server.conftest import Backend
from tests.server.harness import DevModel, ParleyServer, frames_of, logged

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]


@pytest.fixture
def workers(real_backend: Backend, model: DevModel, tmp_path: Path) -> Iterator[list[ParleyServer]]:
    """Two workers on one Redis and one database, with the demo ERP tools loaded."""
    config = real_backend.config(model, PARLEY_CONNECTION_PRESENCE_TTL_S="3")
    config.tools = None
    first = ParleyServer(tmp_path, config, process=True)
    second = ParleyServer(tmp_path, config, process=True)
    yield [first, second]
    for worker in (first, second):
        worker.stop()


def assert_consecutive(frames: list[dict[str, Any]]) -> None:
    seqs = [frame["seq"] for frame in frames]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs


async def test_three_tabs_on_two_workers_see_one_stream(workers: list[ParleyServer]) -> None:
    first, second = workers
    token = first.token()
    sender = await first.tab(token)
    same_worker = await first.tab(token)
    other_worker = await second.tab(token)
    tabs = [sender, same_worker, other_worker]
    assert len({tab.ready["epoch"] for tab in tabs}) == 1

    await sender.send(
        {"type": "user_message", "client_msg_id": "m-1", "text": "what's our cash balance?"}
    )
    seen = await asyncio.gather(*(tab.until("turn_end") for tab in tabs))

    streams = [logged(frames) for frames in seen]
    assert streams[0] == streams[1] == streams[2]
    stream = streams[0]
    assert_consecutive(stream)
    assert stream[0]["seq"] == sender.ready["last_seq"] + 1
    kinds = [frame["type"] for frame in stream]
    assert kinds[:3] == ["message", "conversation_updated", "thinking"]
    assert kinds[-2:] == ["response", "turn_end"]
    calls, results = frames_of(stream, "tool_call"), frames_of(stream, "tool_result")
    assert [call["name"] for call in calls] == ["cash_balance"]
    assert [result["call_id"] for result in results] == [calls[0]["call_id"]]
    assert results[0]["ok"] is True
    assert kinds.index("tool_call") < kinds.index("tool_result") < kinds.index("response")
    response = frames_of(stream, "response")[0]
    deltas = "".join(frame["delta"] for frame in frames_of(stream, "response_delta"))
    assert deltas == response["text"]
    assert stream[-1]["status"] == "completed"
    for tab in tabs:
        await tab.close()


async def test_presence_counts_tabs_on_every_worker(
    workers: list[ParleyServer], real_backend: Backend
) -> None:
    first, second = workers
    token = first.token()
    client = redis.asyncio.Redis.from_url(real_backend.redis_url or "")
    presence = Presence(client, prefix=real_backend.redis_prefix)
    owner = UserKey(tenant="acme", user=first.user)
    try:
        tabs = [await first.tab(token), await first.tab(token), await second.tab(token)]
        assert await presence.count(owner) == 3
        await tabs[0].close()
        await _until(lambda: presence.count(owner), 2)
        # A worker that dies cannot say goodbye: its tabs' entries lapse on their own.
        second.kill()
        await _until(lambda: presence.count(owner), 1, timeout=15)
        await tabs[1].close()
        await _until(lambda: presence.count(owner), 0)
    finally:
        await client.aclose()


async def _until(probe: Any, expected: int, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while (value := await probe()) != expected:
        assert asyncio.get_running_loop().time() < deadline, f"still {value}, not {expected}"
        await asyncio.sleep(0.1)
