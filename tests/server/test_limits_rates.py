"""Rate limits: user messages per user and per tenant, action approvals per user, messages per
conversation and frames per socket. Each trips at its configured value with its code, a refused
message costs no model call and leaves no trace, and each resets as documented."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets

from tests.server.conftest import Backend
from tests.server.db import rows
from tests.server.harness import DevModel, ParleyServer, Tab, frames_of, make_token
from tests.server.security_support import (
    SECURITY_PACK,
    StartServer,
    closed_after,
    server_starter,
)

# In process, but long (waits out rate windows): the full run's.
pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]

WINDOW_S = 10.0  # long enough that a slow machine still sends everything inside one window


@pytest.fixture
def start_server(backend: Backend, model: DevModel, tmp_path: Path) -> Iterator[StartServer]:
    yield from server_starter(backend, model, tmp_path)


def message(client_msg_id: str, text: str = "[say] ok", **fields: Any) -> dict[str, Any]:
    return {"type": "user_message", "client_msg_id": client_msg_id, "text": text, **fields}


async def error_for(tab: Tab, ref: str) -> dict[str, Any]:
    frames = await tab.until(lambda frame: frame["type"] == "error" and frame.get("ref") == ref)
    return frames[-1]


async def turns_ended(tab: Tab, count: int) -> None:
    """Wait until the tab has seen ``count`` turn_end frames in all (``tab.frames`` keeps every
    frame read, also by earlier helpers)."""
    while len(frames_of(tab.frames, "turn_end")) < count:
        await tab.recv()


async def stored(server: ParleyServer, client_msg_id: str) -> int:
    found = await rows(
        server.config.database_url,
        # The user's own messages: tests of a module share the database.
        "SELECT count(*) FROM message WHERE client_msg_id = :m AND user_id = :u",
        m=client_msg_id,
        u=server.user,
    )
    return int(found[0][0])


def assert_rate_limited(error: dict[str, Any], ref: str) -> None:
    assert error["code"] == "rate_limited"
    assert error["ref"] == ref
    assert error["retryable"] is True
    assert 0 < error["retry_after"] <= WINDOW_S


async def test_messages_per_user_trip_at_the_limit_and_reset_with_the_window(
    start_server: StartServer, model: DevModel
) -> None:
    server = start_server(PARLEY_USER_MESSAGES_PER_MINUTE="2", PARLEY_RATE_WINDOW_S=str(WINDOW_S))
    tab = await server.tab()
    for ref in ("m-1", "m-2", "m-3"):
        await tab.send(message(ref))
    error = await error_for(tab, "m-3")
    assert_rate_limited(error, "m-3")
    assert f"at most 2 per {WINDOW_S:g} s" in error["message"]
    await turns_ended(tab, 2)
    assert len(model.requests()) == 2  # the refused message cost no model call
    assert await stored(server, "m-3") == 0  # and left no trace
    # A resend of an accepted message is acknowledged even while refused ones are not.
    await tab.send(message("m-2"))
    ack = await tab.until("message")
    assert ack[-1]["client_msg_id"] == "m-2"
    # The window ends: the same message goes through.
    await asyncio.sleep(error["retry_after"] + 0.2)
    frames = await tab.ask("[say] ok", "m-3")
    assert frames[-1]["status"] == "completed"
    assert len(model.requests()) == 3
    await tab.close()


async def test_messages_per_tenant_count_every_user_of_the_tenant(
    start_server: StartServer, model: DevModel
) -> None:
    server = start_server(
        PARLEY_USER_MESSAGES_PER_MINUTE="10",
        PARLEY_TENANT_MESSAGES_PER_MINUTE="3",
        PARLEY_RATE_WINDOW_S=str(WINDOW_S),
    )
    alice = await server.tab()
    bob = await server.tab(make_token(f"{server.user}-bob", "acme"))
    stranger = await server.tab(make_token(f"{server.user}-gx", "globex"))
    await alice.send(message("a-1"))
    await alice.send(message("a-2"))
    await turns_ended(alice, 2)
    await bob.send(message("b-1"))
    await bob.send(message("b-2"))
    error = await error_for(bob, "b-2")
    assert_rate_limited(error, "b-2")
    assert "messages in this tenant" in error["message"]
    # Another tenant has a budget of its own.
    frames = await stranger.ask("[say] ok", "g-1")
    assert frames[-1]["status"] == "completed"
    await turns_ended(bob, 1)
    assert len(model.requests()) == 4
    for tab in (alice, bob, stranger):
        await tab.close()


async def confirm_request(tab: Tab, ref: str, **fields: Any) -> dict[str, Any]:
    """Ask for an action: its card, once the turn that asked has ended with it open."""
    await tab.send(message(ref, '[call send_note] {"text": "hello team"}', **fields))
    request = (await tab.until("confirm_request"))[-1]
    assert (await tab.until("turn_end"))[-1]["awaiting"] == [request["token"]]
    return request


async def test_action_approvals_per_user_trip_and_the_confirmation_stays_pending(
    start_server: StartServer,
) -> None:
    server = start_server(
        tools=SECURITY_PACK, PARLEY_ACTIONS_PER_MINUTE="1", PARLEY_RATE_WINDOW_S=str(WINDOW_S)
    )
    tab = await server.tab()
    first = await confirm_request(tab, "n-1")
    await tab.send({"type": "confirm", "token": first["token"], "decision": "approve"})
    done = await tab.until("turn_end")
    assert frames_of(done, "action_executed")[0]["ok"] is True
    conversation = done[-1]["conversation_id"]

    second = await confirm_request(tab, "n-2", conversation_id=conversation)
    await tab.send({"type": "confirm", "token": second["token"], "decision": "approve"})
    error = await error_for(tab, second["token"])
    assert_rate_limited(error, second["token"])
    status = await rows(
        server.config.database_url,
        "SELECT status FROM confirmation WHERE token = :t",
        t=second["token"],
    )
    assert status == [("pending",)]
    # Once the window has passed, the same approval executes the action, once.
    await asyncio.sleep(error["retry_after"] + 0.2)
    await tab.send({"type": "confirm", "token": second["token"], "decision": "approve"})
    done = await tab.until("turn_end")
    assert len(frames_of(done, "action_executed")) == 1
    await tab.close()


async def test_approvals_that_execute_nothing_leave_the_action_limit_alone(
    start_server: StartServer,
) -> None:
    server = start_server(
        tools=SECURITY_PACK,
        PARLEY_ACTIONS_PER_MINUTE="1",
        PARLEY_REFUSED_CONFIRMS_PER_MINUTE="100",
        PARLEY_RATE_WINDOW_S=str(WINDOW_S),
    )
    tab = await server.tab()
    first = await confirm_request(tab, "r-1")
    await tab.send({"type": "confirm", "token": first["token"], "decision": "reject"})
    done = await tab.until("turn_end")
    conversation = done[-1]["conversation_id"]
    # Ten made-up tokens and ten repeats of the decided one: each refused for what it is.
    for index in range(10):
        made_up = f"no-such-token-{index}"
        await tab.send({"type": "confirm", "token": made_up, "decision": "approve"})
        assert (await error_for(tab, made_up))["code"] == "confirmation_not_found"
        await tab.send({"type": "confirm", "token": first["token"], "decision": "approve"})
        assert (await error_for(tab, first["token"]))["code"] == "confirmation_not_pending"
    # The user's one real approval still executes: nothing above counted as an action.
    second = await confirm_request(tab, "r-2", conversation_id=conversation)
    await tab.send({"type": "confirm", "token": second["token"], "decision": "approve"})
    done = await tab.until("turn_end")
    assert [frame["ok"] for frame in frames_of(done, "action_executed")] == [True]
    await tab.close()


async def test_confirms_that_decide_nothing_are_limited_on_their_own(
    start_server: StartServer,
) -> None:
    server = start_server(
        tools=SECURITY_PACK,
        PARLEY_REFUSED_CONFIRMS_PER_MINUTE="3",
        PARLEY_RATE_WINDOW_S=str(WINDOW_S),
    )
    tab = await server.tab()
    for index in range(3):
        await tab.send({"type": "confirm", "token": f"spin-{index}", "decision": "approve"})
        assert (await error_for(tab, f"spin-{index}"))["code"] == "confirmation_not_found"
    await tab.send({"type": "confirm", "token": "spin-3", "decision": "approve"})
    assert_rate_limited(await error_for(tab, "spin-3"), "spin-3")
    # A real approval is not a refused confirm: it still goes through.
    pending = await confirm_request(tab, "s-1")
    await tab.send({"type": "confirm", "token": pending["token"], "decision": "approve"})
    done = await tab.until("turn_end")
    assert [frame["ok"] for frame in frames_of(done, "action_executed")] == [True]
    await tab.close()


async def test_a_full_conversation_refuses_more_messages(
    start_server: StartServer, model: DevModel
) -> None:
    server = start_server(PARLEY_MAX_MESSAGES_PER_CONVERSATION="4")
    tab = await server.tab()
    conversation = (await tab.ask("[say] one", "c-1"))[0]["conversation_id"]
    await tab.ask("[say] two", "c-2", conversation_id=conversation)
    await tab.send(message("c-3", conversation_id=conversation))
    error = await error_for(tab, "c-3")
    assert error["code"] == "conversation_full"
    assert error["retryable"] is False
    assert len(model.requests()) == 2
    assert await stored(server, "c-3") == 0
    # A new conversation is the way on.
    frames = await tab.ask("[say] three", "c-4")
    assert frames[0]["conversation_id"] != conversation
    assert frames[-1]["status"] == "completed"
    await tab.close()


async def test_flooding_closes_1008_and_spares_other_sockets(start_server: StartServer) -> None:
    server = start_server(PARLEY_FRAMES_PER_SECOND="5", PARLEY_FRAME_BURST="10")
    flooder, neighbour = await server.tab(), await server.tab()
    with contextlib.suppress(websockets.ConnectionClosed):
        for number in range(40):
            await flooder.send({"type": "ping", "t": number})
    code, reason, frames = await closed_after(flooder)
    assert code == 1008
    assert reason == "flooding: more than 5 frames per second"
    # The burst (less the hello it also paid for), and what refilled meanwhile, were answered;
    # the rest never was.
    assert 9 <= len(frames_of(frames, "pong")) < 40
    assert frames_of(frames, "error")[-1]["code"] == "flooding"
    # A tab of the same user at a steady pace is untouched.
    for number in range(8):
        await neighbour.send({"type": "ping", "t": number})
        assert (await neighbour.expect("pong"))["t"] == number
        await asyncio.sleep(0.25)
    await neighbour.close()


async def test_flooding_before_hello_closes_1008(start_server: StartServer) -> None:
    server = start_server(PARLEY_FRAMES_PER_SECOND="5", PARLEY_FRAME_BURST="10")
    tab = await Tab.connect(server.ws_url)
    with contextlib.suppress(websockets.ConnectionClosed):
        for _ in range(40):
            await tab.send({"type": "ping"})
    code, _, frames = await closed_after(tab)
    assert code == 1008
    assert {frame["code"] for frame in frames_of(frames, "error")} == {"hello_required", "flooding"}
