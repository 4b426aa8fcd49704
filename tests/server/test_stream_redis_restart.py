"""Redis restarted under two running workers: they survive, say so on /readyz, answer requests
meanwhile with a retryable error and pick up fan-out by themselves.

A Redis that keeps nothing across the restart has lost every user's stream: the log starts
over under a new epoch, and tabs are told to rebuild from a snapshot (``resumed: false``).
A Redis with an append-only file keeps the stream: tabs stay, seqs go on, nothing is lost.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server.conftest import Backend
from tests.server.harness import DevModel, ParleyServer, RedisProcess, frames_of, logged
from tests.server.outage import ask_until_accepted, assert_consecutive, wait_ready

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]


def start_workers(
    backend: Backend, model: DevModel, tmp: Path, redis: RedisProcess
) -> list[ParleyServer]:
    config = backend.config(model)
    config.redis_url = redis.url
    return [ParleyServer(tmp, config, process=True), ParleyServer(tmp, config, process=True)]


@pytest.fixture
def volatile_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    redis = RedisProcess(tmp_path)
    yield redis
    redis.stop()


@pytest.fixture
def durable_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    redis = RedisProcess(tmp_path, appendonly=True)
    yield redis
    redis.stop()


async def test_restart_without_persistence_makes_tabs_rebuild(
    real_backend: Backend, model: DevModel, tmp_path: Path, volatile_redis: RedisProcess
) -> None:
    workers = start_workers(real_backend, model, tmp_path, volatile_redis)
    try:
        first, second = workers
        token = first.token()
        talker, listener = await first.tab(token), await second.tab(token)
        before = await talker.ask("[say] before the restart", "m-1")
        conversation = before[0]["conversation_id"]
        assert logged(await listener.until("turn_end")) == logged(before)

        volatile_redis.stop()
        body = await wait_ready(first, 503)
        assert "redis" in body["problems"]
        await talker.send(
            {
                "type": "user_message",
                "client_msg_id": "m-2",
                "text": "[say] after the restart",
                "conversation_id": conversation,
            }
        )
        refusal = await talker.expect("error")
        assert refusal["code"] == "store_unavailable"
        assert refusal["retryable"] is True
        assert refusal["ref"] == "m-2"

        volatile_redis.start()
        for worker in workers:
            await wait_ready(worker, 200)
        # The stream is gone with the old Redis: both tabs are sent to resync.
        for tab in (talker, listener):
            code, reason = await tab.closed(timeout=30)
            assert code == 1012, reason

        epoch = talker.ready["epoch"]
        talker = await first.tab(token, epoch=epoch, last_seq=before[-1]["seq"])
        listener = await second.tab(token, epoch=epoch, last_seq=before[-1]["seq"])
        for tab in (talker, listener):
            assert tab.ready["resumed"] is False
            assert tab.ready["epoch"] != epoch
            texts = [message["text"] for message in tab.ready["messages"]]
            assert texts[:2] == ["[say] before the restart", "before the restart"]
        # The message refused during the outage goes through when it is sent again.
        after = await talker.ask("[say] after the restart", "m-2", conversation_id=conversation)
        assert after[-1]["status"] == "completed"
        assert logged(await listener.until("turn_end")) == logged(after)
        assert after[0]["seq"] == talker.ready["last_seq"] + 1
        await talker.close()
        await listener.close()
    finally:
        for worker in workers:
            worker.stop()


async def test_restart_with_persistence_loses_no_frame(
    real_backend: Backend, model: DevModel, tmp_path: Path, durable_redis: RedisProcess
) -> None:
    workers = start_workers(real_backend, model, tmp_path, durable_redis)
    try:
        first, second = workers
        token = first.token()
        talker, listener = await first.tab(token), await second.tab(token)
        before = await talker.ask("[say] before the crash", "m-1")
        conversation = before[0]["conversation_id"]
        await listener.until("turn_end")

        durable_redis.restart(signal.SIGKILL)  # a crash; the append-only file has every write
        after = await ask_until_accepted(talker, "m-2", "[say] after the crash", conversation)
        assert after[-1]["status"] == "completed"
        for worker in workers:
            await wait_ready(worker, 200)

        # The listener's worker follows again by itself, with nothing missing.
        heard = await listener.until(lambda frame: frame.get("seq") == after[-1]["seq"])
        everything = logged(listener.frames)
        assert logged(talker.frames) == everything
        assert_consecutive(everything)
        assert heard[-1]["type"] == "turn_end"
        assert [f["text"] for f in frames_of(everything, "response")] == [
            "before the crash",
            "after the crash",
        ]
        await talker.close()
        await listener.close()
    finally:
        for worker in workers:
            worker.stop()
