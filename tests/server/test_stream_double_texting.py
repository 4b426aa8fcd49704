"""Messages while a turn runs: a resend of the same ``client_msg_id`` runs once, and a new
message follows the configured double-texting policy (queue, reject, interrupt)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.server.conftest import Backend
from tests.server.db import rows
from tests.server.harness import DevModel, ParleyServer, Tab, frames_of, logged

# In process, but long (long streamed turns): the full run's.
pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]

LONG = " ".join(f"word{number}" for number in range(60))
# The user's own messages: the tests of a module share the database.
USER_MESSAGES_WITH_ID = "SELECT count(*) FROM message WHERE client_msg_id = :m AND user_id = :u"


@pytest.fixture
def make_server(real_backend: Backend, model: DevModel, tmp_path: Path) -> Iterator[Any]:
    started: list[ParleyServer] = []

    def make(**extra: str) -> ParleyServer:
        server = ParleyServer(tmp_path, real_backend.config(model, **extra))
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


async def long_turn_running(tab: Tab, model: DevModel, client_msg_id: str) -> str:
    """Start a slowly streamed answer; the id of its conversation, once it streams."""
    model.set_faults([{"fault": "token_rate", "rate": 20}])
    await tab.send(message(client_msg_id, f"[say] {LONG}"))
    return str((await tab.until("response_delta"))[0]["conversation_id"])


def message(client_msg_id: str, text: str, conversation_id: str | None = None) -> dict[str, Any]:
    frame = {"type": "user_message", "client_msg_id": client_msg_id, "text": text}
    if conversation_id is not None:
        frame["conversation_id"] = conversation_id
    return frame


async def test_resend_after_reconnect_runs_once(make_server: Any, model: DevModel) -> None:
    server = make_server()
    tab = await server.tab()
    first = await tab.ask("[say] only once", "m-1")
    original = first[0]
    await tab.close()

    again = await server.tab(epoch=tab.ready["epoch"], last_seq=first[-1]["seq"])
    await again.send(message("m-1", "[say] only once"))
    echo = await again.expect("message")
    assert echo["message_id"] == original["message_id"]
    assert echo["client_msg_id"] == "m-1"
    assert "seq" not in echo  # an acknowledgement for this tab, not a new frame of the stream
    await again.send({"type": "ping", "t": 1})
    assert (await again.expect("pong"))["t"] == 1  # and nothing ran in between

    database = server.config.database_url
    assert await rows(
        database,
        "SELECT role, count(*) FROM message WHERE conversation_id = :c GROUP BY role ORDER BY role",
        c=original["conversation_id"],
    ) == [("assistant", 1), ("user", 1)]
    assert len(model.requests()) == 1
    await again.close()


async def test_resend_while_its_turn_runs_runs_once(make_server: Any, model: DevModel) -> None:
    server = make_server()
    model.set_faults([{"fault": "token_rate", "rate": 20}])
    tab = await server.tab()
    other = await server.tab()
    await tab.send(message("m-1", f"[say] {LONG}"))
    await tab.until("response_delta")
    await other.send(message("m-1", f"[say] {LONG}"))
    await tab.until("turn_end")
    seen_by_other = await other.until("turn_end")
    assert frames_of(seen_by_other, "message")[-1].get("seq") is None  # the echo
    assert len(frames_of(logged(tab.frames), "thinking")) == 1
    assert len(model.requests()) == 1
    await tab.close()
    await other.close()


async def test_queue_runs_the_second_message_after_the_first(
    make_server: Any, model: DevModel
) -> None:
    server = make_server()  # queue is the default
    model.set_faults([{"fault": "token_rate", "rate": 20}])
    tab = await server.tab()
    await tab.send(message("m-1", f"[say] {LONG}"))
    opened = await tab.until("response_delta")
    conversation = opened[0]["conversation_id"]
    await tab.send(message("m-2", "[say] second", conversation))
    first_end = await tab.until("turn_end")
    # Mirrored at once, while the first turn still streamed.
    assert [f["client_msg_id"] for f in frames_of(first_end, "message")] == ["m-2"]
    second = await tab.until("turn_end")
    assert first_end[-1]["status"] == second[-1]["status"] == "completed"
    assert [f["text"] for f in frames_of(tab.frames, "response")] == [LONG, "second"]
    assert first_end[-1]["seq"] < frames_of(second, "thinking")[0]["seq"]
    await tab.close()


async def test_reject_refuses_a_message_while_a_turn_runs(
    make_server: Any, model: DevModel
) -> None:
    server = make_server(PARLEY_DOUBLE_TEXTING="reject")
    tab = await server.tab()
    conversation = await long_turn_running(tab, model, "m-1")
    await tab.send(message("m-2", "[say] too soon", conversation))
    frames = await tab.until("turn_end")
    [refusal] = frames_of(frames, "error")
    assert refusal["code"] == "turn_in_progress"
    assert refusal["ref"] == "m-2"
    assert refusal["retryable"] is True
    assert not [f for f in frames_of(frames, "message") if f["client_msg_id"] == "m-2"]
    assert frames[-1]["status"] == "completed"
    assert await rows(
        server.config.database_url, USER_MESSAGES_WITH_ID, m="m-2", u=server.user
    ) == [(0,)]
    # Once the turn is over, the same message goes through.
    retried = await tab.ask("[say] now", "m-2", conversation_id=conversation)
    assert retried[-1]["status"] == "completed"
    await tab.close()


async def test_a_full_queue_refuses_the_next_message_without_a_trace(
    make_server: Any, model: DevModel
) -> None:
    server = make_server(PARLEY_TURN_QUEUE_MAX="5")
    tab = await server.tab()
    conversation = await long_turn_running(tab, model, "m-0")
    for n in range(1, 6):  # five wait: the queue is full, not over
        await tab.send(message(f"m-{n}", f"[say] queued {n}", conversation))
    await tab.until(lambda f: f["type"] == "message" and f.get("client_msg_id") == "m-5")
    await tab.send(message("m-6", "[say] one too many", conversation))
    refused = await tab.until(lambda f: f["type"] == "error" and f.get("ref") == "m-6")
    assert refused[-1]["code"] == "turn_in_progress"
    assert refused[-1]["retryable"] is True
    while len(frames_of(tab.frames, "turn_end")) < 6:
        await tab.until("turn_end")
    assert not [f for f in frames_of(tab.frames, "message") if f["client_msg_id"] == "m-6"]
    assert await rows(
        server.config.database_url, USER_MESSAGES_WITH_ID, m="m-6", u=server.user
    ) == [(0,)]
    # Sent again once the queue has drained, it is a new message and it is answered.
    again = await tab.ask("[say] one too many", "m-6", conversation_id=conversation)
    assert frames_of(again, "message")[0]["client_msg_id"] == "m-6"
    assert again[-1]["status"] == "completed"
    assert frames_of(again, "response")[0]["text"] == "one too many"
    await tab.close()


async def test_interrupt_cancels_the_running_turn_and_runs_the_new_message(
    make_server: Any, model: DevModel
) -> None:
    server = make_server(PARLEY_DOUBLE_TEXTING="interrupt")
    model.set_faults([{"fault": "token_rate", "rate": 20}])
    tab = await server.tab()
    await tab.send(message("m-1", f"[say] {LONG}"))
    opened = await tab.until("response_delta")
    conversation = opened[0]["conversation_id"]
    await tab.send(message("m-2", "[say] instead", conversation))
    first = await tab.until("turn_end")
    assert first[-1]["status"] == "cancelled"
    assert not frames_of(first, "response")
    second = await tab.until("turn_end")
    assert second[-1]["status"] == "completed"
    assert frames_of(second, "response")[0]["text"] == "instead"
    cut = "".join(f["delta"] for f in frames_of(opened + first, "response_delta"))
    assert cut
    assert cut != LONG
    assert await rows(
        server.config.database_url,
        "SELECT text, status FROM message WHERE turn_id = :t",
        t=first[-1]["turn_id"],
    ) == [(cut, "cancelled")]
    await tab.close()
