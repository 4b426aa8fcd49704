"""Bad input on the socket gets the documented answer, the worker keeps serving, and nothing
already saved is lost (invariant 7)."""

from __future__ import annotations

import asyncio
import contextlib

import orjson
import pytest
import websockets

from tests.server.db import rows
from tests.server.harness import ParleyServer, Tab, make_token

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize(
    ("raw", "code", "field"),
    [
        ("this is not json", "invalid_json", None),
        ("[1, 2, 3]", "invalid_frame", None),
        ('{"type": "shout", "text": "hi"}', "unknown_type", None),
        ('{"type": "user_message", "text": "hi"}', "missing_field", "client_msg_id"),
        ('{"type": "user_message", "client_msg_id": 7, "text": "hi"}', "invalid_field", None),
        ('{"type": "cancel", "conversation_id": ["x"]}', "invalid_field", None),
        ('{"type": "confirm", "token": "t", "decision": "maybe"}', "invalid_field", None),
    ],
)
async def test_malformed_frames_get_an_error_and_the_socket_stays(
    server: ParleyServer, raw: str, code: str, field: str | None
) -> None:
    tab = await server.tab()
    await tab.ws.send(raw)
    error = await tab.expect("error")
    assert error["code"] == code
    assert error["retryable"] is False
    if field is not None:
        assert field in error["message"]
    # Still open and serving.
    await tab.send({"type": "ping", "t": 1})
    assert (await tab.expect("pong"))["t"] == 1
    await tab.close()


async def test_oversized_frame_closes_with_1009_and_others_keep_going(
    server: ParleyServer,
) -> None:
    bystander = await server.tab()
    first = await bystander.ask("hello", "m-1")
    offender = await server.tab()
    huge = orjson.dumps(
        {"type": "user_message", "client_msg_id": "big", "text": "x" * (2 * 1024 * 1024)}
    ).decode()
    # Far above the transport limit: the server may close while the frame is still going out,
    # so the send itself can fail; what counts is the close code the server sent.
    with contextlib.suppress(websockets.ConnectionClosed):
        await offender.ws.send(huge)
    code, _reason = await offender.closed()
    assert code == 1009
    # The other connection is unaffected and the earlier transcript is intact.
    again = await bystander.ask("hello again", "m-2", conversation_id=first[0]["conversation_id"])
    assert again[-1]["status"] == "completed"
    saved = await rows(
        server.config.database_url,
        "SELECT count(*) FROM message WHERE conversation_id = :c",
        c=first[0]["conversation_id"],
    )
    assert saved == [(4,)]
    await bystander.close()


async def test_message_before_hello_is_refused_then_hello_works(server: ParleyServer) -> None:
    tab = await Tab.connect(server.ws_url)
    await tab.send({"type": "user_message", "client_msg_id": "early", "text": "hi"})
    assert (await tab.expect("error"))["code"] == "hello_required"
    await tab.send({"type": "hello", "protocol": 1, "token": server.token()})
    ready = await tab.expect("ready")
    assert ready["resumed"] is False
    await tab.close()


async def test_no_hello_in_time_closes_with_4400(backend, model, tmp_path) -> None:  # type: ignore[no-untyped-def]
    parley = ParleyServer(tmp_path, backend.config(model, PARLEY_HELLO_TIMEOUT_S="1"))
    try:
        tab = await Tab.connect(parley.ws_url)
        code, _ = await tab.closed(timeout=10)
        assert code == 4400
    finally:
        parley.stop()


async def test_unsupported_protocol_closes_with_4426(server: ParleyServer) -> None:
    tab = await Tab.connect(server.ws_url)
    await tab.send({"type": "hello", "protocol": 99, "token": server.token()})
    error = await tab.expect("error")
    assert error["code"] == "unsupported_protocol"
    code, _ = await tab.closed()
    assert code == 4426


async def test_bad_token_closes_with_4401(server: ParleyServer) -> None:
    tab = await Tab.connect(server.ws_url)
    await tab.send(
        {"type": "hello", "protocol": 1, "token": make_token(server.user, secret="wrong" * 10)}
    )
    error = await tab.expect("error")
    assert error["code"] == "unauthenticated"
    code, _ = await tab.closed()
    assert code == 4401


async def test_unknown_conversation_and_empty_text_are_errors_with_ref(
    server: ParleyServer,
) -> None:
    tab = await server.tab()
    await tab.send(
        {
            "type": "user_message",
            "client_msg_id": "m-x",
            "text": "hi",
            "conversation_id": "c_doesnotexist",
        }
    )
    error = await tab.expect("error")
    assert (error["code"], error["ref"]) == ("conversation_not_found", "m-x")
    await tab.send({"type": "user_message", "client_msg_id": "m-y", "text": "   "})
    error = await tab.expect("error")
    assert (error["code"], error["ref"]) == ("invalid_field", "m-y")
    await tab.close()


async def test_many_bad_connections_do_not_disturb_a_good_one(server: ParleyServer) -> None:
    good = await server.tab()

    async def misbehave(index: int) -> None:
        tab = await server.tab()
        for raw in ("{", "null", '{"type": 5}', '{"type": "nope"}'):
            await tab.ws.send(raw)
            assert (await tab.expect("error"))["type"] == "error"
        await tab.close()

    await asyncio.gather(*(misbehave(index) for index in range(10)))
    frames = await good.ask("hello", "m-1")
    assert frames[-1]["status"] == "completed"
    await good.close()
