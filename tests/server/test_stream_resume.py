"""Resume: a tab that comes back gets exactly what it missed, or — when that was trimmed — a
snapshot that, together with the live frames after it, has no hole and no duplicate."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.server.conftest import Backend
from tests.server.harness import DevModel, ParleyServer, Tab, frames_of, logged

# In process, but long (tabs stay away for seconds mid-turn): the full run's.
pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]

# Each piece of text logged on its own, the stream waiting for it: both bounds at one character.
ONE_DELTA_PER_TOKEN = {"PARLEY_DELTA_FLUSH_CHARS": "1", "PARLEY_DELTA_MAX_WAITING_CHARS": "1"}

WORDS = " ".join(f"word{number}" for number in range(120))


def assert_consecutive(frames: list[dict[str, Any]], first: int) -> None:
    seqs = [frame["seq"] for frame in frames]
    assert seqs == list(range(first, first + len(seqs))), seqs


def _nth_delta(count: int) -> Any:
    """A frame test that matches the ``count``-th ``response_delta`` it is shown."""
    seen = 0

    def test(frame: dict[str, Any]) -> bool:
        nonlocal seen
        seen += frame["type"] == "response_delta"
        return seen == count

    return test


def text_of(frames: list[dict[str, Any]], turn_id: str) -> str:
    deltas = frames_of(frames, "response_delta")
    return "".join(frame["delta"] for frame in deltas if frame["turn_id"] == turn_id)


async def test_tab_away_for_five_seconds_gets_exactly_what_it_missed(
    server: ParleyServer, model: DevModel
) -> None:
    model.set_faults([{"fault": "token_rate", "rate": 15}])
    watcher = await server.tab()
    leaver = await server.tab()
    await leaver.send({"type": "user_message", "client_msg_id": "m-1", "text": f"[say] {WORDS}"})
    before = await leaver.until(_nth_delta(3))
    await leaver.close()
    await asyncio.sleep(5)

    back = await server.tab(epoch=leaver.ready["epoch"], last_seq=before[-1]["seq"])
    assert back.ready["resumed"] is True
    assert back.ready["epoch"] == leaver.ready["epoch"]
    after = await back.until("turn_end", timeout=30)
    everything = await watcher.until("turn_end", timeout=30)

    assert logged(before) + logged(after) == logged(everything)
    assert_consecutive(logged(everything), watcher.ready["last_seq"] + 1)
    # It was away while the turn went on, and came back before it ended.
    assert after[0]["seq"] <= back.ready["last_seq"] < after[-1]["seq"]
    response = frames_of(everything, "response")[0]
    assert text_of(before + after, response["turn_id"]) == response["text"]
    assert after[-1]["status"] == "completed"
    await back.close()
    await watcher.close()


@pytest.fixture
def small_log_server(
    real_backend: Backend, model: DevModel, tmp_path: Path
) -> Iterator[ParleyServer]:
    config = real_backend.config(
        model,
        PARLEY_LOG_MAX_FRAMES="10",
        # One delta per token: many frames, and much to get wrong between two saved texts.
        **ONE_DELTA_PER_TOKEN,
    )
    server = ParleyServer(tmp_path, config)
    yield server
    server.stop()


async def test_trimmed_stream_gives_a_snapshot_without_hole_or_duplicate(
    small_log_server: ParleyServer, model: DevModel
) -> None:
    server = small_log_server
    talker = await server.tab()
    leaver = await server.tab()
    first = await talker.ask("[say] the first answer", "m-1")
    conversation = first[0]["conversation_id"]
    left_at = (await leaver.until("turn_end"))[-1]["seq"]
    await leaver.close()

    # Hundreds of frames: Redis drops whole stream nodes of 100 entries once the log is longer
    # than its bound, so what the leaver saw last is gone.
    long_text = " ".join(f"filler{number}" for number in range(300))
    second = await talker.ask(f"[say] {long_text}", "m-2", conversation_id=conversation)
    assert second[-1]["seq"] - left_at > 250

    model.set_faults([{"fault": "token_rate", "rate": 15}])
    await talker.send(
        {
            "type": "user_message",
            "client_msg_id": "m-3",
            "text": f"[say] {WORDS}",
            "conversation_id": conversation,
        }
    )
    await talker.until(_nth_delta(5))

    back = await server.tab(epoch=leaver.ready["epoch"], last_seq=left_at)
    ready = back.ready
    assert ready["resumed"] is False
    assert ready["epoch"] == leaver.ready["epoch"]
    assert ready["conversations"][0]["conversation_id"] == conversation
    stored = {(m["role"], m["text"]) for m in ready["messages"]}
    assert ("user", "[say] the first answer") in stored
    assert ("assistant", "the first answer") in stored
    assert ("assistant", long_text) in stored
    [running] = ready["active_turns"]

    rest = await back.until("turn_end", timeout=30)
    assert_consecutive(logged(rest), ready["last_seq"] + 1)
    response = frames_of(rest, "response")[0]
    assert running["turn_id"] == response["turn_id"]
    assert running["text"] + text_of(rest, running["turn_id"]) == response["text"]
    assert running["text"], "the snapshot was taken while the turn streamed"
    await back.close()
    await talker.close()


async def test_fresh_tabs_during_a_turn_see_no_hole_and_no_duplicate(
    real_backend: Backend, model: DevModel, tmp_path: Path
) -> None:
    server = ParleyServer(tmp_path, real_backend.config(model, **ONE_DELTA_PER_TOKEN))
    try:
        model.set_faults([{"fault": "token_rate", "rate": 40}])
        talker = await server.tab()
        long_text = " ".join(f"piece{number}" for number in range(120))
        await talker.send(
            {"type": "user_message", "client_msg_id": "m-1", "text": f"[say] {long_text}"}
        )
        await talker.until("response_delta")
        # Tabs arriving at moments that fall between two saves of the turn's text.
        joined: list[Tab] = []
        for _ in range(5):
            await asyncio.sleep(0.23)
            joined.append(await server.tab())
        for tab in joined:
            [running] = tab.ready["active_turns"]
            rest = await tab.until("turn_end", timeout=30)
            assert_consecutive(logged(rest), tab.ready["last_seq"] + 1)
            response = frames_of(rest, "response")[0]
            assert running["text"] + text_of(rest, running["turn_id"]) == response["text"]
            await tab.close()
        await talker.close()
    finally:
        server.stop()


async def test_a_tab_that_missed_more_than_its_queue_holds_gets_a_snapshot(
    real_backend: Backend, model: DevModel, tmp_path: Path
) -> None:
    # A send queue of 40 frames: a replay of more than 20 would crowd out the live frames.
    config = real_backend.config(model, PARLEY_SEND_QUEUE_FRAMES="40", **ONE_DELTA_PER_TOKEN)
    server = ParleyServer(tmp_path, config)
    try:
        model.set_faults([{"fault": "token_rate", "rate": 100}])
        talker = await server.tab()
        leaver = await server.tab()
        first = await talker.ask("[say] short one", "m-1")
        conversation = first[0]["conversation_id"]
        left_at = (await leaver.until("turn_end"))[-1]["seq"]
        await leaver.close()

        long_text = " ".join(f"item{number}" for number in range(60))
        await talker.ask(f"[say] {long_text}", "m-2", conversation_id=conversation)
        back = await server.tab(epoch=leaver.ready["epoch"], last_seq=left_at)
        assert back.ready["resumed"] is False
        assert ("assistant", long_text) in {(m["role"], m["text"]) for m in back.ready["messages"]}

        # The rebuilt tab is served like any other, not dropped as a slow reader.
        third = await talker.ask("[say] after the snapshot", "m-3", conversation_id=conversation)
        seen = await back.until("turn_end")
        assert logged(seen) == logged(third)
        assert_consecutive(logged(seen), back.ready["last_seq"] + 1)

        # A short absence still resumes with exactly the missed frames.
        back_at = seen[-1]["seq"]
        await back.close()
        fourth = await talker.ask("[say] brief", "m-4", conversation_id=conversation)
        again = await server.tab(epoch=back.ready["epoch"], last_seq=back_at)
        assert again.ready["resumed"] is True
        assert logged(await again.until("turn_end")) == logged(fourth)
        await again.close()
        await talker.close()
    finally:
        server.stop()
