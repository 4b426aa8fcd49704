"""Isolation between users and tenants on every surface of the socket: the frame stream and
resume, the ready snapshot, conversations, messages, feedback, typing, cancel and
confirmations. Another user's ids, guessed or stolen, behave exactly like ids that do not
exist, and nothing of theirs is read, replayed, cancelled or executed."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio

from tests.server.conftest import REDIS_URL, Backend
from tests.server.db import rows
from tests.server.harness import DevModel, ParleyServer, Tab, frames_of, make_token
from tests.server.security_support import SECURITY_PACK, StartServer, server_starter

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def start_server(backend: Backend, model: DevModel, tmp_path: Path) -> Iterator[StartServer]:
    yield from server_starter(backend, model, tmp_path)


@pytest.fixture
def parley(start_server: StartServer) -> ParleyServer:
    return start_server(tools=SECURITY_PACK)


class People:
    """Alice, Bob of the same tenant, and another tenant's user with Alice's very user id."""

    def __init__(self, server: ParleyServer) -> None:
        self.server = server
        self.alice = make_token(server.user, "acme")
        self.bob = make_token(f"{server.user}-bob", "acme")
        self.twin = make_token(server.user, "globex")  # same `sub`, other tenant

    def intruders(self) -> dict[str, str]:
        return {"same tenant": self.bob, "other tenant": self.twin}


async def quiet(tab: Tab, marker: int) -> None:
    """Assert nothing reached the tab before a ping's answer: no frame of someone else."""
    await tab.send({"type": "ping", "t": marker})
    frame = await tab.recv()
    assert frame == {"type": "pong", "t": marker}, frame


async def answer(tab: Tab, frame: dict[str, Any]) -> dict[str, Any]:
    await tab.send(frame)
    return await tab.expect("error")


async def test_resume_with_another_users_position_replays_nothing(parley: ParleyServer) -> None:
    people = People(parley)
    alice = await parley.tab(people.alice)
    turn = await alice.ask("hello", "a-1")
    epoch, last_seq = alice.ready["epoch"], turn[-1]["seq"]
    for kind, token in people.intruders().items():
        for position in ({"epoch": epoch, "last_seq": 0}, {"epoch": epoch, "last_seq": last_seq}):
            intruder = await parley.tab(token, **position)
            ready = intruder.ready
            assert ready["resumed"] is False, kind
            assert ready["epoch"] != epoch, kind
            assert ready.get("conversations", []) == [], kind
            assert ready.get("messages", []) == [], kind
            assert ready["active_turns"] == [], kind
            await quiet(intruder, 1)
            # Alice's next turn streams to Alice only.
            await alice.ask("hello again", f"a-{secrets.token_hex(3)}")
            await quiet(intruder, 2)
            await intruder.close()
    await alice.close()


async def test_another_users_conversation_id_is_not_found(parley: ParleyServer) -> None:
    people = People(parley)
    alice = await parley.tab(people.alice)
    turn = await alice.ask("hello", "a-1")
    conversation = turn[0]["conversation_id"]
    reply = frames_of(turn, "response")[0]
    for kind, token in people.intruders().items():
        intruder = await parley.tab(token)
        guessed = await answer(
            intruder,
            {
                "type": "user_message",
                "client_msg_id": "x-1",
                "text": "hi",
                "conversation_id": conversation,
            },
        )
        unknown_id = f"c_{secrets.token_hex(8)}"
        unknown = await answer(
            intruder,
            {
                "type": "user_message",
                "client_msg_id": "x-2",
                "text": "hi",
                "conversation_id": unknown_id,
            },
        )
        assert guessed["code"] == unknown["code"] == "conversation_not_found", kind
        assert guessed["message"] == unknown["message"].replace(unknown_id, conversation), kind
        feedback = await answer(
            intruder, {"type": "feedback", "message_id": reply["message_id"], "rating": "down"}
        )
        assert feedback["code"] == "message_not_found", kind
        await intruder.send({"type": "typing", "conversation_id": conversation, "active": True})
        await quiet(alice, 3)
        await intruder.close()
    stored = await rows(
        parley.config.database_url,
        "SELECT user_id, tenant, role FROM message WHERE conversation_id = :c ORDER BY created_at",
        c=conversation,
    )
    assert stored == [(parley.user, "acme", "user"), (parley.user, "acme", "assistant")]
    feedback_rows = await rows(
        parley.config.database_url,
        "SELECT rating FROM feedback WHERE message_id = :m",
        m=reply["message_id"],
    )
    assert feedback_rows == []
    await alice.close()


async def test_another_user_cannot_cancel_a_running_turn(
    parley: ParleyServer, model: DevModel
) -> None:
    people = People(parley)
    model.set_faults([{"fault": "token_rate", "rate": 20}])
    alice = await parley.tab(people.alice)
    await alice.send({"type": "user_message", "client_msg_id": "a-1", "text": "what can you do?"})
    started = await alice.until("response_delta")
    conversation = started[0]["conversation_id"]
    turn_id = next(frame["turn_id"] for frame in started if "turn_id" in frame)
    for kind, token in people.intruders().items():
        intruder = await parley.tab(token)
        assert intruder.ready["active_turns"] == [], kind
        for cancel in (
            {"type": "cancel", "conversation_id": conversation},
            {"type": "cancel", "conversation_id": conversation, "turn_id": turn_id},
        ):
            error = await answer(intruder, cancel)
            assert error["code"] == "no_active_turn", kind
        await intruder.close()
    rest = await alice.until("turn_end")
    assert rest[-1]["status"] == "completed"
    await alice.close()


async def test_another_user_cannot_decide_a_confirmation(parley: ParleyServer) -> None:
    people = People(parley)
    alice = await parley.tab(people.alice)
    await alice.send(
        {"type": "user_message", "client_msg_id": "a-1", "text": '[call send_note] {"text": "hi"}'}
    )
    request = (await alice.until("confirm_request"))[-1]
    token = request["token"]
    # The turn that asked ends with the card open (invariant 12).
    assert (await alice.until("turn_end"))[-1]["awaiting"] == [token]
    for kind, intruder_token in people.intruders().items():
        intruder = await parley.tab(intruder_token)
        assert intruder.ready["pending_confirmations"] == [], kind
        for decision in ("approve", "reject"):
            error = await answer(
                intruder, {"type": "confirm", "token": token, "decision": decision}
            )
            assert (error["code"], error["ref"]) == ("forbidden", token), kind
        guessed = secrets.token_urlsafe(24)
        error = await answer(intruder, {"type": "confirm", "token": guessed, "decision": "approve"})
        assert error["code"] == "confirmation_not_found", kind
        await intruder.close()
    await quiet(alice, 4)  # no confirm_resolved, no action_executed
    status = await rows(
        parley.config.database_url, "SELECT status FROM confirmation WHERE token = :t", t=token
    )
    assert status == [("pending",)]
    events = await rows(
        parley.config.database_url,
        "SELECT event, user_id FROM audit_event WHERE confirmation_token = :t",
        t=token,
    )
    assert events == [("requested", parley.user)]
    # Alice herself still decides it.
    second = await parley.tab(people.alice)
    assert [item["token"] for item in second.ready["pending_confirmations"]] == [token]
    await alice.send({"type": "confirm", "token": token, "decision": "reject"})
    rest = await alice.until("turn_end")
    assert frames_of(rest, "confirm_resolved")[0]["status"] == "rejected"
    assert not frames_of(rest, "action_executed")
    await alice.close()
    await second.close()


async def test_redis_keys_of_a_conversation_carry_its_owners_tag(
    real_backend: Backend, model: DevModel, tmp_path: Path
) -> None:
    config = real_backend.config(model)
    server = ParleyServer(tmp_path, config)
    try:
        people = People(server)
        alice = await server.tab(people.alice)
        conversation = (await alice.ask("hello", "a-1"))[0]["conversation_id"]
        bob = await server.tab(people.bob)
        await bob.ask("hello", "b-1")
        client = redis.asyncio.Redis.from_url(REDIS_URL)
        try:
            keys = [key.decode() async for key in client.scan_iter(f"{config.redis_prefix}*")]
        finally:
            await client.aclose()
        alice_tag = f"{{t:acme:u:{server.user}}}"
        bob_tag = f"{{t:acme:u:{server.user}-bob}}"
        address_tag = "{t::u:127.0.0.1}"  # the per-address connection count
        tags = {key: re.findall(r"\{[^}]*\}", key) for key in keys}
        assert {alice_tag, bob_tag} <= {tag for found in tags.values() for tag in found}
        for key, found in tags.items():
            assert len(found) <= 1, key
            assert not found or found[0] in (alice_tag, bob_tag, address_tag), key
            if conversation in key:
                assert found == [alice_tag], key
        await alice.close()
        await bob.close()
    finally:
        server.stop()


async def test_rest_reads_of_another_users_things_reveal_nothing(parley: ParleyServer) -> None:
    people = People(parley)
    alice = await parley.tab(people.alice)
    turn = await alice.ask("hello", "a-1")
    conversation = turn[0]["conversation_id"]
    reply_id = frames_of(turn, "response")[0]["message_id"]
    await alice.send(
        {
            "type": "user_message",
            "client_msg_id": "a-2",
            "text": '[call send_note] {"text": "hi"}',
            "conversation_id": conversation,
        }
    )
    token = (await alice.until("confirm_request"))[-1]["token"]
    intruders = {
        **people.intruders(),
        "viewer": make_token(f"{parley.user}-v", "acme", ("viewer",)),
    }
    async with httpx.AsyncClient(base_url=f"{parley.url}/api/v1", timeout=10) as client:
        for kind, intruder in intruders.items():
            headers = {"Authorization": f"Bearer {intruder}"}
            for path in (
                f"/conversations/{conversation}",
                f"/conversations/{conversation}/messages",
            ):
                reply = await client.get(path, headers=headers)
                assert reply.status_code == 404, (kind, path)
            reply = await client.post(
                f"/messages/{reply_id}/feedback", json={"rating": "down"}, headers=headers
            )
            assert reply.status_code == 404, kind
            listed = (await client.get("/confirmations", headers=headers)).json()["items"]
            assert token not in [item["token"] for item in listed], kind
            usage = (await client.get("/usage", headers=headers)).json()
            assert usage["totals"]["calls"] == 0, kind
        # Admin reads stay inside the admin's tenant; a viewer gets none.
        viewer = {"Authorization": f"Bearer {intruders['viewer']}"}
        assert (await client.get("/admin/audit", headers=viewer)).status_code == 403
        twin_admin = {"Authorization": f"Bearer {people.twin}"}
        audit = (await client.get("/admin/audit", headers=twin_admin)).json()["items"]
        assert all(item.get("tenant", "globex") == "globex" for item in audit)
        assert token not in json.dumps(audit)
        confirmations = await client.get("/admin/confirmations", headers=twin_admin)
        assert token not in confirmations.text
    await alice.send({"type": "confirm", "token": token, "decision": "reject"})
    await alice.until("turn_end")
    await alice.close()
