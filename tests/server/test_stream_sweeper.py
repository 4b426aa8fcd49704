"""What the sweeper finishes when nobody else will: a turn whose worker died before it wrote
anything, and messages left waiting after every worker went away (DESIGN invariant 4:
nothing waits forever)."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import pytest
import redis.asyncio

from storage.keys import UserKey
from storage.leases import TurnClaim, TurnLeases
from tests.server.conftest import Backend
from tests.server.db import rows
from tests.server.harness import DevModel, ParleyServer, frames_of, logged

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]

WORDS = " ".join(f"word{number}" for number in range(120))


async def test_a_turn_whose_worker_died_before_writing_its_reply_still_ends(
    real_backend: Backend, model: DevModel, tmp_path: Path
) -> None:
    parley = ParleyServer(tmp_path, real_backend.config(model), process=True)
    client = redis.asyncio.Redis.from_url(real_backend.redis_url or "")
    try:
        tab = await parley.tab()
        first = await tab.ask("[say] hello", "m-1")
        conversation = first[0]["conversation_id"]
        # What a worker leaves when it dies right after claiming the turn: a lease, no reply.
        leases = TurnLeases(client, prefix=real_backend.redis_prefix)
        claim = TurnClaim(
            turn_id="t_orphan",
            conversation_id=conversation,
            message_id="m_orphan",
            worker_id="w-gone",
            started_at=time.time(),
        )
        # The first turn's worker frees the slot just after its turn_end goes out.
        holder = await leases.acquire(UserKey("acme", parley.user), claim, 1.0)
        for _ in range(100):
            if holder is None:
                break
            await asyncio.sleep(0.05)
            holder = await leases.acquire(UserKey("acme", parley.user), claim, 1.0)
        assert holder is None

        end = await tab.until(
            lambda frame: frame["type"] == "turn_end" and frame["turn_id"] == "t_orphan",
            timeout=30,
        )
        assert end[-1]["status"] == "interrupted"
        assert end[-1]["error"]["code"] == "turn_interrupted"
        saved = await rows(
            parley.config.database_url,
            "SELECT role, status, text, turn_id FROM message WHERE id = 'm_orphan'",
        )
        assert saved == [("assistant", "interrupted", "", "t_orphan")]

        # The conversation's turn slot is free again.
        again = await tab.ask("[say] still here", "m-2", conversation_id=conversation)
        assert again[-1]["status"] == "completed"
        await tab.close()
    finally:
        await client.aclose()
        parley.stop()


async def test_messages_left_waiting_when_every_worker_left_run_on_the_next_one(
    real_backend: Backend, model: DevModel, tmp_path: Path
) -> None:
    config = real_backend.config(model, PARLEY_SHUTDOWN_DRAIN_S="0.5")
    leaving = ParleyServer(tmp_path, config, process=True)
    arriving: ParleyServer | None = None
    try:
        token = leaving.token()
        model.set_faults([{"fault": "token_rate", "rate": 10}])
        tab = await leaving.tab(token)
        await tab.send({"type": "user_message", "client_msg_id": "m-1", "text": f"[say] {WORDS}"})
        started = await tab.until("response_delta")
        conversation = started[0]["conversation_id"]
        await tab.send(
            {
                "type": "user_message",
                "client_msg_id": "m-2",
                "text": "[say] answered later",
                "conversation_id": conversation,
            }
        )
        await tab.until(lambda frame: frame.get("client_msg_id") == "m-2")

        # The only worker leaves; the first answer is cut short, the second waits.
        leaving.signal(signal.SIGTERM)
        code, _ = await tab.closed(timeout=30)
        assert code == 1012
        leaving.wait()
        ends = frames_of(tab.frames, "turn_end")
        assert [end["status"] for end in ends] == ["interrupted"]

        model.clear_faults()
        arriving = ParleyServer(tmp_path, config, process=True)
        seen = logged(tab.frames)
        back = await arriving.tab(token, epoch=tab.ready["epoch"], last_seq=seen[-1]["seq"])
        assert back.ready["resumed"] is True
        rest = await back.until("turn_end", timeout=30)
        assert rest[-1]["status"] == "completed"
        assert [frame["text"] for frame in frames_of(rest, "response")] == ["answered later"]
        await back.close()
    finally:
        leaving.stop()
        if arriving is not None:
            arriving.stop()
