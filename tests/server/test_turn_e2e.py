"""One streaming assistant turn over a real socket, on the embedded defaults and on real
Redis + PostgreSQL: frame order, seq numbering, the transcript in SQL, and model faults."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.server.db import rows
from tests.server.harness import DevModel, ParleyServer, ServerConfig, Tab, frames_of

pytestmark = pytest.mark.timeout(120)


def assert_seq_strictly_increasing(frames: list[dict[str, Any]]) -> None:
    seqs = [frame["seq"] for frame in frames if "seq" in frame]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs


async def test_full_turn_streams_in_order_and_is_saved(server: ParleyServer) -> None:
    tab = await server.tab()
    assert tab.ready["resumed"] is False
    assert tab.ready["user"] == {"id": server.user, "tenant": "acme", "roles": ["admin"]}

    frames = await tab.ask("hello there", "m-1")

    kinds = [frame["type"] for frame in frames]
    assert kinds[0] == "message"
    assert kinds[1] == "conversation_updated"  # the message started a conversation
    assert kinds[2] == "thinking"
    assert kinds[-2:] == ["response", "turn_end"]
    assert set(kinds[3:-2]) == {"response_delta"}, kinds
    assert frames[0]["seq"] == tab.ready["last_seq"] + 1
    assert_seq_strictly_increasing(frames)
    response = frames[-2]
    deltas = "".join(frame["delta"] for frame in frames_of(frames, "response_delta"))
    assert deltas == response["text"]
    assert "scripted development model" in response["text"]
    assert response["usage"]["total_tokens"] > 0
    assert frames[-1]["status"] == "completed"

    message_rows = await rows(
        server.config.database_url,
        "SELECT role, text, status, client_msg_id FROM message "
        "WHERE conversation_id = :c ORDER BY created_at",
        c=frames[0]["conversation_id"],
    )
    assert message_rows == [
        ("user", "hello there", "completed", "m-1"),
        ("assistant", response["text"], "completed", None),
    ]
    usage_rows = await rows(
        server.config.database_url,
        "SELECT total_tokens, model FROM usage_record WHERE turn_id = :t",
        t=frames[-1]["turn_id"],
    )
    assert usage_rows == [(response["usage"]["total_tokens"], response["usage"]["model"])]
    await tab.close()


async def test_second_message_continues_the_conversation(server: ParleyServer) -> None:
    tab = await server.tab()
    first = await tab.ask("hello", "m-1")
    conversation = first[0]["conversation_id"]
    second = await tab.ask("what can you do?", "m-2", conversation_id=conversation)
    assert {frame["conversation_id"] for frame in second} == {conversation}
    assert second[0]["seq"] == first[-1]["seq"] + 1
    await tab.close()


async def test_ping_is_answered(server: ParleyServer) -> None:
    tab = await server.tab()
    await tab.send({"type": "ping", "t": 42})
    assert await tab.expect("pong") == {"type": "pong", "t": 42}
    await tab.close()


async def test_endpoint_without_usage_is_counted_with_tiktoken(
    server: ParleyServer, model: DevModel
) -> None:
    model.set_faults([{"fault": "no_usage"}])
    tab = await server.tab()
    frames = await tab.ask("hello", "m-1")
    usage = frames_of(frames, "response")[0]["usage"]
    assert usage["estimated"] is True
    assert usage["prompt_tokens"] > 0
    assert usage["completion_tokens"] > 0
    await tab.close()


async def test_cancel_stops_the_turn_and_keeps_partial_text(
    server: ParleyServer, model: DevModel
) -> None:
    model.set_faults([{"fault": "token_rate", "rate": 5}])
    tab = await server.tab()
    await tab.send({"type": "user_message", "client_msg_id": "m-1", "text": "what can you do?"})
    frames = await tab.until("response_delta")
    conversation = frames[0]["conversation_id"]
    await tab.send({"type": "cancel", "conversation_id": conversation})
    rest = await tab.until("turn_end")
    end = rest[-1]
    assert end["status"] == "cancelled"
    assert not frames_of(rest, "response")
    streamed = "".join(frame["delta"] for frame in frames_of(frames + rest, "response_delta"))
    assert streamed
    saved = await rows(
        server.config.database_url,
        "SELECT text, status FROM message WHERE role = 'assistant' AND turn_id = :t",
        t=end["turn_id"],
    )
    assert saved == [(streamed, "cancelled")]
    await tab.send({"type": "cancel", "conversation_id": conversation})
    error = await tab.expect("error")
    assert error["code"] == "no_active_turn"
    await tab.close()


async def test_closing_every_tab_does_not_stop_the_turn(
    server: ParleyServer, model: DevModel
) -> None:
    model.set_faults([{"fault": "token_rate", "rate": 20}])
    tab = await server.tab()
    await tab.send({"type": "user_message", "client_msg_id": "m-1", "text": "what can you do?"})
    first = await tab.until("response_delta")
    await tab.close()
    later = await server.tab(epoch=tab.ready["epoch"], last_seq=first[-1]["seq"])
    assert later.ready["resumed"] is True
    rest = await later.until("turn_end")
    assert rest[-1]["status"] == "completed"
    assert rest[0]["seq"] == first[-1]["seq"] + 1
    text = "".join(frame["delta"] for frame in frames_of(first + rest, "response_delta"))
    assert text == frames_of(rest, "response")[0]["text"]
    await later.close()


# -- model faults ---------------------------------------------------------------------------


@pytest.fixture
def two_key_server(backend, model: DevModel, tmp_path):  # type: ignore[no-untyped-def]
    config = backend.config(model)
    config.api_keys = "key-first-aaaa,key-second-bbbb"
    parley = ParleyServer(tmp_path, config)
    yield parley
    parley.stop()


async def test_rate_limit_moves_to_the_next_key(
    two_key_server: ParleyServer, model: DevModel
) -> None:
    model.set_faults([{"fault": "rate_limit", "retry_after": 30, "api_keys": ["key-first-aaaa"]}])
    tab = await two_key_server.tab()
    frames = await tab.ask("hello", "m-1")
    assert frames[-1]["status"] == "completed"
    assert not frames_of(frames, "error")
    keys = [request["key"] for request in model.requests()]
    assert keys == ["…aaaa", "…bbbb"], keys
    await tab.close()


async def test_server_error_fails_the_turn_with_a_retryable_error(
    server: ParleyServer, model: DevModel
) -> None:
    model.set_faults([{"fault": "server_error"}])
    tab = await server.tab()
    await tab.send({"type": "user_message", "client_msg_id": "m-1", "text": "hello"})
    frames = await tab.until("turn_end")
    errors = frames_of(frames, "error")
    assert len(errors) == 1
    assert errors[0]["code"] == "model_unavailable"
    assert errors[0]["retryable"] is True
    assert errors[0]["ref"] == "m-1"
    assert frames[-1]["status"] == "failed"
    # The worker keeps serving: the next message works once the endpoint recovers.
    model.clear_faults()
    again = await tab.ask("hello", "m-2", conversation_id=frames[0]["conversation_id"])
    assert again[-1]["status"] == "completed"
    await tab.close()


async def test_dropped_stream_saves_partial_text_and_fails(
    server: ParleyServer, model: DevModel
) -> None:
    model.set_faults([{"fault": "drop_stream", "after_chunks": 4}])
    tab = await server.tab()
    await tab.send({"type": "user_message", "client_msg_id": "m-1", "text": "what can you do?"})
    frames = await tab.until("turn_end")
    assert frames[-1]["status"] == "failed"
    error = frames_of(frames, "error")[0]
    assert error["code"] == "stream_interrupted"
    assert error["retryable"] is True
    streamed = "".join(frame["delta"] for frame in frames_of(frames, "response_delta"))
    assert streamed
    saved = await rows(
        server.config.database_url,
        "SELECT text, status FROM message WHERE role = 'assistant' AND turn_id = :t",
        t=frames[-1]["turn_id"],
    )
    assert saved == [(streamed, "failed")]
    await tab.close()


@pytest.mark.slow  # waits for a first token 8 s away
async def test_slow_first_token_still_shows_thinking_at_once(
    server: ParleyServer, model: DevModel
) -> None:
    model.set_faults([{"fault": "slow_first_token", "delay_s": 8}])
    tab = await server.tab()
    await tab.send({"type": "user_message", "client_msg_id": "m-1", "text": "hello"})
    assert (await tab.expect("message", timeout=5))["client_msg_id"] == "m-1"
    # Well before the model's first token (8 s away), the tab already knows it is working.
    early = await tab.until("thinking", timeout=5)
    assert [frame["type"] for frame in early] == ["conversation_updated", "thinking"]
    rest = await tab.until("turn_end", timeout=30)
    assert rest[-1]["status"] == "completed"
    await tab.close()


async def test_a_tab_can_only_be_served_after_hello(server: ParleyServer) -> None:
    tab = await Tab.connect(server.ws_url)
    await tab.send({"type": "user_message", "client_msg_id": "m-1", "text": "hi"})
    assert (await tab.expect("error"))["code"] == "hello_required"
    await tab.close()


async def test_the_model_sees_the_conversation_so_far(
    server: ParleyServer, model: DevModel
) -> None:
    tab = await server.tab()
    first = await tab.ask("hello", "m-1")
    conversation = first[0]["conversation_id"]
    reply = frames_of(first, "response")[0]["text"]
    await tab.ask("what can you do?", "m-2", conversation_id=conversation)
    third = await tab.ask("hello again", "m-3", conversation_id=conversation)
    assert third[-1]["status"] == "completed"
    sent = model.requests()[-1]["body"]["messages"]
    assert [(m["role"], m["content"]) for m in sent[1:3]] == [
        ("user", "hello"),
        ("assistant", reply),
    ]
    assert [m["role"] for m in sent] == ["system"] + ["user", "assistant"] * 2 + ["user"]
    assert sent[-1]["content"] == "hello again"
    if server.config.redis_url:
        # Between turns the finished transcript lives in the user's context cache.
        client = redis.Redis.from_url(server.config.redis_url)
        user_tag = f"{{t:acme:u:{server.user}}}"
        try:
            keys = list(client.scan_iter(match=f"{server.config.redis_prefix}{user_tag}:ctx:*"))
        finally:
            client.close()
        assert len(keys) == 1
    await tab.close()


@pytest.mark.slow
async def test_embedded_crash_mid_reply_keeps_the_partial_text(
    model: DevModel, tmp_path: Path
) -> None:
    """With the embedded store a crash takes the turn's state with it; the next start marks
    the reply interrupted and keeps the text the user had already seen."""
    database = f"sqlite+aiosqlite:///{tmp_path / 'parley.db'}"
    config = ServerConfig(database_url=database, model_url=model.base_url)
    parley = ParleyServer(tmp_path, config, process=True)
    model.set_faults([{"fault": "token_rate", "rate": 10}])
    try:
        tab = await parley.tab()
        await tab.send({"type": "user_message", "client_msg_id": "m-1", "text": "what can you do?"})
        seen = await tab.until(
            lambda frame: (
                "".join(f["delta"] for f in frames_of(tab.frames, "response_delta")).count(" ")
                >= 12
            )
        )
        turn_id = seen[-1]["turn_id"]
        await asyncio.sleep(1.0)  # past the interval at which partial text is saved
        parley.kill()
        parley.start()
        saved = await rows(
            database,
            "SELECT text, status FROM message WHERE turn_id = :t AND role = 'assistant'",
            t=turn_id,
        )
        assert len(saved) == 1
        text, status = saved[0]
        assert status == "interrupted"
        assert len(text) > 10
        streamed = "".join(f["delta"] for f in frames_of(tab.frames, "response_delta"))
        assert streamed.startswith(text) or text.startswith(streamed[: len(text)])
    finally:
        parley.stop()
