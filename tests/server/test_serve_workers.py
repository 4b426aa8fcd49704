"""``parley serve --workers N``: several workers on one port, each draining on SIGTERM, a dead
one replaced, and a clear refusal where several workers cannot share their state."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.server.conftest import Backend
from tests.server.harness import DevModel, ParleyServer, base_env, frames_of

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]

WORDS = " ".join(f"word{number}" for number in range(60))


def worker_pids(supervisor: int) -> set[int]:
    """The worker processes the supervisor started (its spawned children)."""
    pids = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue  # exited while we looked
        if parent == supervisor and b"spawn_main" in command:
            pids.add(int(entry.name))
    return pids


def any_running(pids: set[int]) -> bool:
    return any(Path(f"/proc/{pid}").exists() for pid in pids)


async def until_workers(supervisor: int, count: int, *, other_than: set[int]) -> set[int]:
    deadline = time.monotonic() + 30
    while True:
        pids = worker_pids(supervisor)
        if len(pids) == count and not pids & other_than:
            return pids
        assert time.monotonic() < deadline, f"workers {pids}, wanted {count} new ones"
        await asyncio.sleep(0.2)


@pytest.fixture
def pair(real_backend: Backend, model: DevModel, tmp_path: Path) -> Iterator[ParleyServer]:
    config = real_backend.config(model)
    config.serve_args = ["--workers", "2"]
    parley = ParleyServer(tmp_path, config, process=True)
    yield parley
    parley.stop()


async def test_two_workers_serve_one_port_and_drain_on_sigterm(
    pair: ParleyServer, model: DevModel
) -> None:
    workers = await until_workers(pair.pid, 2, other_than=set())
    token = pair.token()
    tabs = [await pair.tab(token) for _ in range(4)]
    model.set_faults([{"fault": "token_rate", "rate": 40}])
    await tabs[0].send({"type": "user_message", "client_msg_id": "m-1", "text": f"[say] {WORDS}"})
    await tabs[0].until("response_delta")

    pair.signal(signal.SIGTERM)
    # The worker running the turn finishes it before it lets its sockets go; every tab, on
    # either worker, is then asked to reconnect (to the next release, in a deploy).
    answered = await tabs[0].until("turn_end", timeout=30)
    assert answered[-1]["status"] == "completed"
    assert frames_of(tabs[0].frames, "response")[0]["text"] == WORDS
    for tab in tabs:
        code, _ = await tab.closed(timeout=30)
        assert code == 1012
    assert pair.wait() == 0
    assert not any_running(workers)


async def test_a_worker_that_dies_is_replaced(pair: ParleyServer) -> None:
    first = await until_workers(pair.pid, 2, other_than=set())
    victim = min(first)
    os.kill(victim, signal.SIGKILL)
    await until_workers(pair.pid, 2, other_than={victim})

    tab = await pair.tab()
    assert (await tab.ask("[say] still serving", "m-1"))[-1]["status"] == "completed"
    await tab.close()
    async with httpx.AsyncClient() as client:
        metrics = await client.get(f"{pair.url}/metrics", timeout=10)
    assert metrics.status_code == 200
    assert "parley_turns_total" in metrics.text


def test_several_workers_need_redis(tmp_path: Path) -> None:
    env = base_env()
    env.update({"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'parley.db'}", "PORT": "0"})
    env.pop("REDIS_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "server.cli", "serve", "--workers", "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "several workers share their state through Redis: set REDIS_URL" in done.stderr
