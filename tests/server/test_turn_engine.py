"""The turn engine on its own, assembled as a worker assembles it (embedded store, SQLite, the
in-process scripted model) but driven by calls instead of sockets: ``accept`` takes a message
from admission to its logged turn, ``end_turn`` ends a turn for every tab and frees its
conversation, ``decide`` refuses what decides nothing."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from protocol import Confirm, Decision, ErrorCode, TurnStatus, UserMessage
from server.assembly import Worker, assemble
from server.config import Settings
from server.errors import ClientError, Failure
from server.security.auth import Principal
from storage.keys import UserKey
from storage.leases import TurnClaim, TurnLeases
from storage.memory_frame_log import AnyFrameLog

pytestmark = pytest.mark.timeout(60)

TOOLS = "tests.server.security_pack:pack"


@dataclass
class Parts:
    worker: Worker
    frame_log: AnyFrameLog
    leases: TurnLeases
    principal: Principal

    @property
    def owner(self) -> UserKey:
        return UserKey(tenant=self.principal.tenant, user=self.principal.user)

    async def frames(self) -> list[dict[str, Any]]:
        position = await self.frame_log.position(self.owner)
        logged = await self.frame_log.read_after(self.owner, position.epoch, 0)
        assert logged is not None
        return [orjson.loads(frame.data) for frame in logged]

    async def frames_until_turn_ends(self, count: int = 1) -> list[dict[str, Any]]:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            frames = await self.frames()
            if sum(frame["type"] == "turn_end" for frame in frames) >= count:
                return frames
            await asyncio.sleep(0.02)
        raise AssertionError(f"no turn_end in {await self.frames()}")


@pytest.fixture
async def parts(tmp_path: Path) -> AsyncIterator[Parts]:
    settings = Settings.from_env(
        {
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'parley.db'}",
            "PARLEY_TOOLS": TOOLS,
            "PARLEY_JWT_SECRET": "unit-test-secret-unit-test-secret-0123",
            "PARLEY_SWEEP_INTERVAL_S": "60",
        }
    )
    async with contextlib.AsyncExitStack() as stack:
        worker = await assemble(settings, stack)
        redis = worker.readiness.redis
        principal = Principal(
            tenant="acme", user="ann", roles=frozenset({"admin"}), expires_at=time.time() + 600
        )
        yield Parts(
            worker,
            worker.frame_log,
            TurnLeases(redis, prefix=settings.redis_prefix),
            principal,
        )
        await worker.engine.drain(1.0)


async def test_accept_stores_mirrors_and_runs_the_turn(parts: Parts) -> None:
    ack = await parts.worker.engine.accept(
        parts.principal, UserMessage(client_msg_id="m1", text="[say] hello there")
    )
    assert ack is None  # the mirror went to every tab through the stream
    frames = await parts.frames_until_turn_ends()
    kinds = [frame["type"] for frame in frames]
    # The message started a conversation: every tab is told so right after its mirror.
    assert kinds[:3] == ["message", "conversation_updated", "thinking"]
    assert frames[1]["conversation_id"] == frames[0]["conversation_id"]
    assert kinds[-2:] == ["response", "turn_end"]
    assert set(kinds[3:-2]) == {"response_delta"}
    assert [frame["seq"] for frame in frames] == list(range(1, len(frames) + 1))
    assert frames[0]["client_msg_id"] == "m1"
    assert frames[-2]["text"] == "hello there"
    assert frames[-1]["status"] == "completed"


async def test_a_resent_message_is_acknowledged_to_its_tab_and_runs_nothing(parts: Parts) -> None:
    engine = parts.worker.engine
    await engine.accept(parts.principal, UserMessage(client_msg_id="m1", text="[say] once"))
    first = await parts.frames_until_turn_ends()
    ack = await engine.accept(parts.principal, UserMessage(client_msg_id="m1", text="[say] once"))
    assert ack is not None
    assert ack.message_id == first[0]["message_id"]
    await asyncio.sleep(0.2)
    assert await parts.frames() == first


async def test_accept_refuses_what_cannot_be_stored_and_stores_nothing(parts: Parts) -> None:
    engine = parts.worker.engine
    with pytest.raises(ClientError) as empty:
        await engine.accept(parts.principal, UserMessage(client_msg_id="e", text="   "))
    assert empty.value.code == ErrorCode.INVALID_FIELD
    with pytest.raises(ClientError) as unknown:
        await engine.accept(
            parts.principal,
            UserMessage(client_msg_id="u", text="hi", conversation_id="c_nowhere"),
        )
    assert unknown.value.code == ErrorCode.CONVERSATION_NOT_FOUND
    assert unknown.value.ref == "u"
    assert await parts.frames() == []


async def test_end_turn_logs_the_failure_and_frees_the_conversation(parts: Parts) -> None:
    claim = TurnClaim(
        turn_id="t_dead",
        conversation_id="c_1",
        message_id="m_dead",
        worker_id="w_gone",
        started_at=time.time(),
    )
    assert await parts.leases.acquire(parts.owner, claim, 30) is None
    failure = Failure.of(ErrorCode.TURN_INTERRUPTED, "the worker stopped")
    await parts.worker.engine.end_turn(
        parts.owner, "c_1", "t_dead", TurnStatus.INTERRUPTED, failure
    )
    (end,) = await parts.frames()
    assert end["type"] == "turn_end"
    assert end["status"] == "interrupted"
    assert end["error"] == {
        "code": "turn_interrupted",
        "message": "the worker stopped",
        "retryable": True,
    }
    assert await parts.leases.holder(parts.owner, "c_1") is None


async def test_decide_refuses_a_token_that_decides_nothing(parts: Parts) -> None:
    with pytest.raises(ClientError) as refused:
        await parts.worker.engine.decide(
            parts.principal, Confirm(token="no-such-token", decision=Decision.APPROVE), "k_1"
        )
    assert refused.value.code == ErrorCode.CONFIRMATION_NOT_FOUND
    assert await parts.frames() == []
