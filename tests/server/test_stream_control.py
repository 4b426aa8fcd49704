"""Requests that cross workers over the control channel: a tab on one worker stops a turn that
runs on another."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server.conftest import Backend
from tests.server.harness import DevModel, ParleyServer, frames_of

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]

WORDS = " ".join(f"word{number}" for number in range(200))


@pytest.fixture
def workers(real_backend: Backend, model: DevModel, tmp_path: Path) -> Iterator[list[ParleyServer]]:
    config = real_backend.config(model)
    first = ParleyServer(tmp_path, config)
    second = ParleyServer(tmp_path, config)
    yield [first, second]
    for worker in (first, second):
        worker.stop()


async def test_a_cancel_sent_to_another_worker_stops_the_turn(
    workers: list[ParleyServer], model: DevModel
) -> None:
    running, other = workers
    token = running.token()
    # Slow enough that the turn could not finish on its own while the test waits for it.
    model.set_faults([{"fault": "token_rate", "rate": 5}])
    on_running = await running.tab(token)
    on_other = await other.tab(token)
    await on_running.send(
        {"type": "user_message", "client_msg_id": "m-1", "text": f"[say] {WORDS}"}
    )
    started = await on_running.until("response_delta")
    conversation = started[0]["conversation_id"]

    # The worker that receives the cancel does not run the turn: it publishes a CancelTurn.
    await on_other.send({"type": "cancel", "conversation_id": conversation})
    rest = await on_other.until("turn_end", timeout=60)

    assert rest[-1]["status"] == "cancelled"
    assert rest[-1]["turn_id"] == frames_of(started, "thinking")[0]["turn_id"]
    # The other tab saw the whole stream: some of the text, then the end.
    streamed = "".join(frame["delta"] for frame in frames_of(rest, "response_delta"))
    assert streamed
    assert WORDS.startswith(streamed)
    assert len(streamed) < len(WORDS)
    for tab in (on_running, on_other):
        await tab.close()
