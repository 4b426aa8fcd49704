"""A worker leaves while it runs a turn: killed outright (its lease lapses and another worker
ends the turn), or asked to stop (it finishes the turn first, then sends its tabs elsewhere)."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.server.conftest import Backend
from tests.server.db import rows
from tests.server.harness import DevModel, ParleyServer, frames_of, logged

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]

WORDS = " ".join(f"word{number}" for number in range(120))


@pytest.fixture
def workers(real_backend: Backend, model: DevModel, tmp_path: Path) -> Iterator[list[ParleyServer]]:
    config = real_backend.config(model, PARLEY_TURN_LEASE_TTL_S="3")
    first = ParleyServer(tmp_path, config, process=True)
    second = ParleyServer(tmp_path, config, process=True)
    yield [first, second]
    for worker in (first, second):
        worker.stop()


def nth_delta(count: int) -> Any:
    seen = 0

    def test(frame: dict[str, Any]) -> bool:
        nonlocal seen
        seen += frame["type"] == "response_delta"
        return seen == count

    return test


def assert_consecutive(frames: list[dict[str, Any]]) -> None:
    seqs = [frame["seq"] for frame in frames]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs


def deduped(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What a client keeps: each seq once."""
    by_seq = {frame["seq"]: frame for frame in logged(frames)}
    return [by_seq[seq] for seq in sorted(by_seq)]


async def test_killed_worker_turn_ends_interrupted_and_its_tab_resumes_elsewhere(
    workers: list[ParleyServer], model: DevModel
) -> None:
    doomed, survivor = workers
    token = doomed.token()
    model.set_faults([{"fault": "token_rate", "rate": 15}])
    on_doomed = await doomed.tab(token)
    on_survivor = await survivor.tab(token)
    await on_doomed.send({"type": "user_message", "client_msg_id": "m-1", "text": f"[say] {WORDS}"})
    await on_survivor.until(nth_delta(5))

    doomed.kill()
    await on_doomed.closed()  # whatever reached it before the socket died
    end = (await on_survivor.until("turn_end", timeout=30))[-1]
    assert end["status"] == "interrupted"
    assert end["error"]["code"] == "turn_interrupted"
    assert end["error"]["retryable"] is True

    seen = logged(on_doomed.frames)
    back = await survivor.tab(token, epoch=on_doomed.ready["epoch"], last_seq=seen[-1]["seq"])
    assert back.ready["resumed"] is True
    rest = await back.until("turn_end")
    everything = logged(on_survivor.frames)
    assert deduped(seen + rest) == everything
    assert_consecutive(everything)

    # The partial answer is kept exactly as the tabs saw it, frames after the last save included.
    streamed = "".join(frame["delta"] for frame in frames_of(everything, "response_delta"))
    saved = await rows(
        doomed.config.database_url,
        "SELECT text, status FROM message WHERE role = 'assistant' AND turn_id = :t",
        t=end["turn_id"],
    )
    assert saved == [(streamed, "interrupted")]
    # The conversation is free again: the next message runs on the surviving worker.
    again = await back.ask("[say] still here", "m-2", conversation_id=end["conversation_id"])
    assert again[-1]["status"] == "completed"
    await back.close()
    await on_survivor.close()


async def test_sigterm_finishes_the_turn_then_sends_tabs_to_another_worker(
    workers: list[ParleyServer], model: DevModel
) -> None:
    leaving, staying = workers
    token = leaving.token()
    model.set_faults([{"fault": "token_rate", "rate": 25}])
    on_leaving = await leaving.tab(token)
    on_staying = await staying.tab(token)
    await on_leaving.send(
        {"type": "user_message", "client_msg_id": "m-1", "text": f"[say] {WORDS}"}
    )
    started = await on_leaving.until(nth_delta(3))
    conversation = started[0]["conversation_id"]

    leaving.signal(signal.SIGTERM)
    # Sent while the worker drains: it waits behind the running turn and another worker runs it.
    await on_leaving.send(
        {
            "type": "user_message",
            "client_msg_id": "m-2",
            "text": "[say] answered elsewhere",
            "conversation_id": conversation,
        }
    )
    first_turn = await on_leaving.until("turn_end", timeout=30)
    assert first_turn[-1]["status"] == "completed"
    response = frames_of(started + first_turn, "response")[0]
    deltas = frames_of(started + first_turn, "response_delta")
    assert "".join(frame["delta"] for frame in deltas) == response["text"] == WORDS

    code, _ = await on_leaving.closed(timeout=30)
    assert code == 1012
    # uvicorn re-raises the signal it handled once it has shut down cleanly.
    assert leaving.wait() in (0, -signal.SIGTERM)

    second_end = await on_staying.until(
        lambda frame: frame["type"] == "turn_end" and frame["turn_id"] != response["turn_id"],
        timeout=30,
    )
    assert second_end[-1]["status"] == "completed"
    answered = frames_of(on_staying.frames, "response")
    assert [frame["text"] for frame in answered] == [WORDS, "answered elsewhere"]

    seen = logged(on_leaving.frames)
    back = await staying.tab(token, epoch=on_leaving.ready["epoch"], last_seq=seen[-1]["seq"])
    assert back.ready["resumed"] is True
    rest = await back.until(lambda frame: frame.get("seq") == second_end[-1]["seq"])
    assert deduped(seen + rest) == logged(on_staying.frames)
    assert_consecutive(logged(on_staying.frames))
    await back.close()
    await on_staying.close()
