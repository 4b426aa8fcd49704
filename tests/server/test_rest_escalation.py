"""Escalating a conversation to a human: the conversation's status, the escalation row, the
frame every tab gets, and the help-desk webhook — signed, retried after a failure, every
attempt recorded — delivered to a receiver on a loopback port."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.server.db import rows
from tests.server.harness import DevModel, ParleyServer
from tests.server.rest_support import (
    BACKENDS,
    Caller,
    Callers,
    Received,
    WebhookReceiver,
    assert_error,
    callers,
    start_server,
)

__all__ = ["callers"]

pytestmark = pytest.mark.timeout(180)

WEBHOOK_SECRET = "help-desk-shared-secret-for-tests"
MAX_ATTEMPTS = 3


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    hook = WebhookReceiver()
    yield hook
    hook.close()


@pytest.fixture(scope="module", params=BACKENDS)
def rest(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    dev_model: DevModel,
    receiver: WebhookReceiver,
) -> Iterator[ParleyServer]:
    server = start_server(
        request.param,
        request,
        tmp_path_factory.mktemp("escalation"),
        dev_model,
        PARLEY_ESCALATION_WEBHOOK_URL=receiver.url,
        PARLEY_ESCALATION_WEBHOOK_SECRET=WEBHOOK_SECRET,
        PARLEY_WEBHOOK_RETRY_BASE_S="0.2",
        PARLEY_WEBHOOK_RETRY_MAX_S="1",
        PARLEY_WEBHOOK_POLL_INTERVAL_S="0.5",
        PARLEY_WEBHOOK_MAX_ATTEMPTS=str(MAX_ATTEMPTS),
    )
    yield server
    server.stop()


async def conversation_with_messages(caller: Caller) -> str:
    tab = await caller.tab()
    frames = await tab.ask("I need to change my delivery address", "m-1")
    await tab.close()
    return str(frames[0]["conversation_id"])


def deliveries_of(receiver: WebhookReceiver, escalation_id: str) -> list[Received]:
    return [hit for hit in receiver.received if hit.headers["x-parley-delivery"] == escalation_id]


async def wait_for_deliveries(
    receiver: WebhookReceiver, escalation_id: str, count: int
) -> list[Received]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = deliveries_of(receiver, escalation_id)
        if len(found) >= count:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"{len(deliveries_of(receiver, escalation_id))} deliveries, not {count}")


async def webhook_state(server: ParleyServer, escalation_id: str, until: str) -> tuple[Any, ...]:
    """The escalation's (webhook_state, webhook_attempts), once the state is ``until``."""
    deadline = time.monotonic() + 20
    while True:
        [row] = await rows(
            server.config.database_url,
            "SELECT webhook_state, webhook_attempts FROM escalation WHERE id = :e",
            e=escalation_id,
        )
        if row[0] == until or time.monotonic() > deadline:
            return row
        await asyncio.sleep(0.1)


async def test_escalation_marks_the_conversation_and_tells_every_tab(
    rest: ParleyServer, callers: Callers
) -> None:
    alice = callers.new()
    conversation_id = await conversation_with_messages(alice)
    tab = await alice.tab()
    reply = await alice.post(
        f"/conversations/{conversation_id}/escalate", {"reason": "  the bot cannot help  "}
    )
    assert reply.status_code == 201, reply.text
    escalation = reply.json()
    assert escalation["conversation_id"] == conversation_id
    assert escalation["reason"] == "the bot cannot help"
    assert escalation["user"] == alice.user
    assert escalation["webhook"] == "pending"

    [frame] = await tab.until("conversation_updated")
    assert (frame["conversation_id"], frame["status"]) == (conversation_id, "escalated")
    await tab.close()
    conversation = (await alice.get(f"/conversations/{conversation_id}")).json()
    assert conversation["status"] == "escalated"
    stored = await rows(
        rest.config.database_url,
        "SELECT tenant, user_id, conversation_id, reason FROM escalation WHERE id = :e",
        e=escalation["escalation_id"],
    )
    assert stored == [("acme", alice.user, conversation_id, "the bot cannot help")]

    again = await alice.post(f"/conversations/{conversation_id}/escalate", {"reason": "hello?"})
    assert_error(again, 409, "conflict")
    assert "escalated" in again.json()["error"]["message"]
    archived = (await alice.post("/conversations", {})).json()["conversation_id"]
    await alice.patch(f"/conversations/{archived}", {"archived": True})
    assert_error(
        await alice.post(f"/conversations/{archived}/escalate", {"reason": "x"}), 409, "conflict"
    )


async def test_webhook_is_signed_retried_after_a_500_and_recorded(
    rest: ParleyServer, callers: Callers, receiver: WebhookReceiver
) -> None:
    alice = callers.new()
    conversation_id = await conversation_with_messages(alice)
    receiver.statuses.append(500)
    reply = await alice.post(
        f"/conversations/{conversation_id}/escalate", {"reason": "wrong invoice total"}
    )
    escalation_id = reply.json()["escalation_id"]

    first, second = await wait_for_deliveries(receiver, escalation_id, 2)
    for attempt, hit in enumerate((first, second), start=1):
        expected = hmac.new(WEBHOOK_SECRET.encode(), hit.body, hashlib.sha256).hexdigest()
        assert hit.headers["x-parley-signature"] == f"sha256={expected}"
        assert hit.headers["x-parley-event"] == "conversation.escalated"
        assert hit.headers["x-parley-attempt"] == str(attempt)
        assert hit.headers["content-type"] == "application/json"
        assert hit.path == "/hooks/escalations?key=secret-in-query"
    assert first.body == second.body  # the same body every time: receivers dedupe by id
    payload = json.loads(second.body)
    assert payload["event"] == "conversation.escalated"
    assert payload["escalation_id"] == escalation_id
    assert (payload["tenant"], payload["user"]) == ("acme", alice.user)
    assert payload["conversation_id"] == conversation_id
    assert payload["reason"] == "wrong invoice total"
    assert [m["role"] for m in payload["messages"]] == ["user", "assistant"]
    assert payload["messages"][0]["text"] == "I need to change my delivery address"

    assert await webhook_state(rest, escalation_id, "delivered") == ("delivered", 2)
    attempts = await rows(
        rest.config.database_url,
        "SELECT attempt, ok, status_code, url FROM webhook_delivery "
        "WHERE escalation_id = :e ORDER BY attempt",
        e=escalation_id,
    )
    origin = receiver.url.split("/hooks")[0]
    assert attempts == [(1, False, 500, origin), (2, True, 200, origin)]
    listed = (await callers.new(roles=("admin",)).get("/admin/escalations")).json()["items"]
    mine = [item for item in listed if item["escalation_id"] == escalation_id]
    assert mine[0]["webhook"] == "delivered"
    assert mine[0]["webhook_attempts"] == 2


async def test_webhook_gives_up_after_the_last_attempt(
    rest: ParleyServer, callers: Callers, receiver: WebhookReceiver
) -> None:
    alice = callers.new()
    conversation_id = (await alice.post("/conversations", {})).json()["conversation_id"]
    receiver.statuses.extend([503] * MAX_ATTEMPTS)
    reply = await alice.post(f"/conversations/{conversation_id}/escalate", {"reason": "down"})
    escalation_id = reply.json()["escalation_id"]
    await wait_for_deliveries(receiver, escalation_id, MAX_ATTEMPTS)
    assert await webhook_state(rest, escalation_id, "failed") == ("failed", MAX_ATTEMPTS)
    await asyncio.sleep(1.5)  # longer than the backoff: no further attempt comes
    assert len(deliveries_of(receiver, escalation_id)) == MAX_ATTEMPTS
    codes = await rows(
        rest.config.database_url,
        "SELECT status_code FROM webhook_delivery WHERE escalation_id = :e",
        e=escalation_id,
    )
    assert [code for (code,) in codes] == [503] * MAX_ATTEMPTS


async def test_only_my_conversations_and_good_reasons(callers: Callers) -> None:
    alice = callers.new()
    bob = callers.new()
    mallory = callers.new(tenant="globex", roles=("admin",))
    conversation_id = (await alice.post("/conversations", {})).json()["conversation_id"]
    path = f"/conversations/{conversation_id}/escalate"
    for stranger in (bob, mallory):
        assert_error(
            await stranger.post(path, {"reason": "mine now"}), 404, "conversation_not_found"
        )
    assert (await alice.get(f"/conversations/{conversation_id}")).json()["status"] == "active"
    assert_error(await alice.post(path, {}), 422, "missing_field", "reason")
    assert_error(await alice.post(path, {"reason": "   "}), 422, "invalid_field", "reason")
    assert_error(await alice.post(path, {"reason": "x" * 2001}), 422, "invalid_field", "reason")
    assert_error(await alice.post(path, {"reason": "x", "urgent": True}), 422, "invalid_field")
    assert_error(await callers.anonymous().post(path, json={"reason": "x"}), 401, "unauthenticated")


async def test_administrators_list_their_tenants_escalations(callers: Callers) -> None:
    alice = callers.new()
    made = []
    for _ in range(3):
        conversation_id = (await alice.post("/conversations", {})).json()["conversation_id"]
        reply = await alice.post(f"/conversations/{conversation_id}/escalate", {"reason": "r"})
        made.append(reply.json()["escalation_id"])
    admin = callers.new(roles=("admin",))
    pages = await admin.pages("/admin/escalations", limit=2, user=alice.user)
    assert [len(page) for page in pages] == [2, 1]
    assert [item["escalation_id"] for page in pages for item in page] == made[::-1]
    assert_error(await alice.get("/admin/escalations"), 403, "forbidden")
    foreign_admin = callers.new(tenant="globex", roles=("admin",))
    foreign = (await foreign_admin.get("/admin/escalations", user=alice.user)).json()
    assert foreign["items"] == []
