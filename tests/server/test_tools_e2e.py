"""Tools and human confirmation over a real socket, with the demo ERP pack and the scripted
model: queries run at once, actions only after the user approves, exactly once. The turn that
asks ends with the card pending (invariant 12); the decision starts a continuation turn."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.server.conftest import Backend
from tests.server.db import rows
from tests.server.harness import DevModel, ParleyServer, Tab, frames_of, make_token

pytestmark = pytest.mark.timeout(300)

# The demo prompt from the README: the scripted model turns it into create_sales_order.
SALES_ORDER_PROMPT = "create a sales order for Acme: 100 units of Widget at 50"


@pytest.fixture
def erp(fresh_backend: Backend, model: DevModel, tmp_path: Path) -> Iterator[ParleyServer]:
    """A server with the demo ERP pack loaded (the default tool configuration), on books of
    its own."""
    config = fresh_backend.config(model)
    config.tools = None
    parley = ParleyServer(tmp_path, config)
    yield parley
    parley.stop()


def erp_token(server: ParleyServer, roles: tuple[str, ...] = ("admin",), **claims: Any) -> str:
    return make_token(server.user, "acme", roles, **claims)


async def po_status(server: ParleyServer, number: str) -> str:
    found = await rows(
        server.config.database_url,
        "SELECT status FROM erp_purchase_order WHERE tenant = 'acme' AND number = :n",
        n=number,
    )
    return str(found[0][0])


async def audit_events(server: ParleyServer, token: str) -> list[str]:
    found = await rows(
        server.config.database_url,
        "SELECT event FROM audit_event WHERE confirmation_token = :t ORDER BY created_at",
        t=token,
    )
    return [event for (event,) in found]


async def assert_no_dangling_tool_calls(server: ParleyServer, turn_id: str) -> None:
    """Invariant 6: every tool call recorded for the turn has a result."""
    (rounds,) = (
        await rows(
            server.config.database_url,
            "SELECT tool_rounds FROM message WHERE turn_id = :t AND role = 'assistant'",
            t=turn_id,
        )
    )[0]
    rounds = json.loads(rounds) if isinstance(rounds, str) else rounds
    assert rounds, "the turn recorded no tool round"
    for round_ in rounds:
        called = [call["id"] for call in round_["calls"]]
        answered = [result["tool_call_id"] for result in round_["results"]]
        assert sorted(called) == sorted(answered)


async def ask_for_approval(
    tab: Tab, text: str, client_msg_id: str, **fields: Any
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Send a message that asks for an action: its ``confirm_request`` and the frames up to
    the asking turn's ``turn_end``, which names the card as still awaited."""
    frames = await tab.ask(text, client_msg_id, **fields)
    (request,) = frames_of(frames, "confirm_request")
    assert frames[-1]["status"] == "completed"
    assert frames[-1]["awaiting"] == [request["token"]]
    return request, frames


async def decide(tab: Tab, token: str, decision: str, **fields: Any) -> list[dict[str, Any]]:
    """Decide a card: the frames up to the end of the continuation turn that reports it."""
    await tab.send({"type": "confirm", "token": token, "decision": decision, **fields})
    frames = await tab.until("turn_end")
    (thinking,) = frames_of(frames, "thinking")
    assert thinking["continuation"] is True
    return frames


def outcome_note(model: DevModel) -> str:
    """The note the model was last given about an approval's outcome."""
    last = model.requests()[-1]["body"]
    notes = [
        message["content"]
        for message in last["messages"][1:]
        if message["role"] == "system" and message["content"].startswith("Update on the action")
    ]
    assert notes, "the model was told no outcome"
    return str(notes[-1])


async def test_query_tool_shows_progress_and_answers(erp: ParleyServer) -> None:
    tab = await erp.tab(erp_token(erp))
    frames = await tab.ask("what's our cash balance?", "q-1")
    kinds = [frame["type"] for frame in frames if frame["type"] != "response_delta"]
    assert kinds == [
        "message",
        "conversation_updated",
        "thinking",
        "tool_call",
        "tool_result",
        "response",
        "turn_end",
    ]
    call, result = frames_of(frames, "tool_call")[0], frames_of(frames, "tool_result")[0]
    assert call["name"] == result["name"] == "cash_balance"
    assert call["call_id"] == result["call_id"]
    assert result["ok"] is True
    assert "USD" in result["summary"]
    response = frames_of(frames, "response")[0]
    assert "in cash across" in response["text"]
    await assert_no_dangling_tool_calls(erp, response["turn_id"])
    await tab.close()


async def test_approved_action_executes_once_and_is_audited(erp: ParleyServer) -> None:
    tab = await erp.tab(erp_token(erp))
    assert await po_status(erp, "PO-1001") == "awaiting_approval"
    request, asking = await ask_for_approval(tab, "approve PO-1001", "a-1")
    assert request["action"] == "approve_purchase_order"
    assert request["params"] == {"po_number": "PO-1001"}
    assert "PO-1001" in request["summary"]
    assert "USD" in request["summary"]
    # The asking turn ends with the card; nothing happens before the user decides.
    assert frames_of(asking, "response")[0]["text"] == ""
    assert await po_status(erp, "PO-1001") == "awaiting_approval"

    frames = await decide(tab, request["token"], "approve")
    resolved = frames_of(frames, "confirm_resolved")[0]
    executed = frames_of(frames, "action_executed")[0]
    assert resolved["status"] == "approved"
    assert executed["ok"] is True
    assert executed["result"]["status"] == "approved"
    assert frames[-1]["status"] == "completed"
    assert "awaiting" not in frames[-1]
    assert frames_of(frames, "response")[0]["text"] == "Done: PO-1001 is now approved."

    assert await po_status(erp, "PO-1001") == "approved"
    assert await audit_events(erp, request["token"]) == ["requested", "approved", "executed"]
    (audit_id,) = (
        await rows(
            erp.config.database_url,
            "SELECT id FROM audit_event WHERE confirmation_token = :t AND event = 'executed'",
            t=request["token"],
        )
    )[0]
    assert executed["audit_id"] == audit_id
    debit, credit = (
        await rows(
            erp.config.database_url,
            "SELECT sum(debit), sum(credit) FROM erp_journal_line WHERE tenant = 'acme'",
        )
    )[0]
    assert Decimal(str(debit)) == Decimal(str(credit))
    await assert_no_dangling_tool_calls(erp, request["turn_id"])
    await tab.close()


async def test_sales_order_action_posts_balanced_books(erp: ParleyServer) -> None:
    tab = await erp.tab(erp_token(erp))
    await tab.send(
        {
            "type": "user_message",
            "client_msg_id": "s-1",
            "text": SALES_ORDER_PROMPT,
        }
    )
    request = (await tab.until("confirm_request"))[-1]
    assert request["action"] == "create_sales_order"
    await tab.until("turn_end")
    frames = await decide(tab, request["token"], "approve")
    executed = frames_of(frames, "action_executed")[0]
    assert executed["ok"] is True, executed
    await tab.close()


@pytest.fixture
def busy_erp(fresh_backend: Backend, model: DevModel, tmp_path: Path) -> Iterator[ParleyServer]:
    """The ERP server with rate limits raised for a test that approves 100 actions."""
    config = fresh_backend.config(
        model,
        PARLEY_USER_MESSAGES_PER_MINUTE="1000",
        PARLEY_ACTIONS_PER_MINUTE="1000",
        # Each round's losing approval decides nothing and is counted as such.
        PARLEY_REFUSED_CONFIRMS_PER_MINUTE="1000",
        PARLEY_FRAMES_PER_SECOND="1000",
    )
    config.tools = None
    parley = ParleyServer(tmp_path, config)
    yield parley
    parley.stop()


@pytest.mark.slow  # a hundred rounds: minutes on a busy machine
async def test_two_tabs_approving_at_once_execute_exactly_once(busy_erp: ParleyServer) -> None:
    erp = busy_erp
    first = await erp.tab(erp_token(erp))
    second = await erp.tab(erp_token(erp))
    rounds = 100
    for index in range(rounds):
        # A new conversation each round keeps clear of the per-conversation message limit.
        await first.send(
            {
                "type": "user_message",
                "client_msg_id": f"cc-{index}",
                "text": f"create customer Concurrent Customer {index:03d}",
            }
        )
        request = (await first.until("confirm_request"))[-1]
        # Both tabs see the asking turn end before anyone decides.
        await asyncio.gather(first.until("turn_end"), second.until("turn_end"))
        decision = {"type": "confirm", "token": request["token"], "decision": "approve"}
        await asyncio.gather(first.send(decision), second.send(decision))
        # The one continuation turn the decision starts ends in both tabs.
        seen = list(await asyncio.gather(first.until("turn_end"), second.until("turn_end")))
        # A socket's frames are handled in order: once a ping sent now is answered, the
        # answer to that tab's confirm has arrived too.
        for position, tab in enumerate((first, second)):
            await tab.send({"type": "ping"})
            seen[position] += await tab.until("pong")
        refusals = [
            frame
            for frames in seen
            for frame in frames_of(frames, "error")
            if frame.get("ref") == request["token"]
        ]
        assert [frame["code"] for frame in refusals] == ["confirmation_not_pending"]
        for frames in seen:
            assert len(frames_of(frames, "action_executed")) == 1
        assert await audit_events(erp, request["token"]) == ["requested", "approved", "executed"]
    created = await rows(
        erp.config.database_url,
        "SELECT name, count(*) FROM erp_customer WHERE tenant = 'acme' "
        "AND name LIKE 'Concurrent Customer %' GROUP BY name",
    )
    assert len(created) == rounds
    assert {count for _, count in created} == {1}
    await first.close()
    await second.close()


async def test_reject_tells_the_model_and_executes_nothing(
    erp: ParleyServer, model: DevModel
) -> None:
    tab = await erp.tab(erp_token(erp))
    request, _ = await ask_for_approval(tab, "approve PO-1002", "r-1")
    frames = await decide(tab, request["token"], "reject")
    assert frames_of(frames, "confirm_resolved")[0]["status"] == "rejected"
    assert not frames_of(frames, "action_executed")
    assert frames[-1]["status"] == "completed"
    assert frames_of(frames, "response")[0]["text"].startswith("Cancelled: ")
    assert await po_status(erp, "PO-1002") == "awaiting_approval"
    assert await audit_events(erp, request["token"]) == ["requested", "rejected"]
    assert "rejected" in outcome_note(model)
    await assert_no_dangling_tool_calls(erp, request["turn_id"])
    await tab.close()


def last_tool_message(model: DevModel) -> str:
    """What the model was told about the last tool call."""
    last = model.requests()[-1]["body"]
    tool_messages = [message for message in last["messages"] if message["role"] == "tool"]
    return str(tool_messages[-1]["content"])


async def test_expiry_tells_the_model_and_executes_nothing(
    fresh_backend: Backend, model: DevModel, tmp_path: Path
) -> None:
    config = fresh_backend.config(model, PARLEY_CONFIRMATION_TTL_S="1.5")
    config.tools = None
    parley = ParleyServer(tmp_path, config)
    try:
        tab = await parley.tab(erp_token(parley))
        request, _ = await ask_for_approval(tab, "approve PO-1003", "e-1")
        # The sweeper expires the card and a continuation turn tells the model.
        frames = await tab.until("turn_end")
        assert frames_of(frames, "confirm_resolved")[0]["status"] == "expired"
        assert frames_of(frames, "thinking")[0]["continuation"] is True
        assert frames[-1]["status"] == "completed"
        assert "in time" in outcome_note(model)
        assert "expired" in frames_of(frames, "response")[0]["text"]
        await tab.send({"type": "confirm", "token": request["token"], "decision": "approve"})
        error = await tab.expect("error")
        assert error["code"] in ("confirmation_not_pending", "confirmation_expired")
        assert await po_status(parley, "PO-1003") == "awaiting_approval"
        assert await audit_events(parley, request["token"]) == ["requested", "expired"]
        await assert_no_dangling_tool_calls(parley, request["turn_id"])
        await tab.close()
    finally:
        parley.stop()


async def test_a_card_outlives_the_turn_that_asked(erp: ParleyServer) -> None:
    tab = await erp.tab(erp_token(erp))
    request, _ = await ask_for_approval(tab, "approve PO-1004", "x-1")
    # No turn holds the conversation, and the card stays open.
    again = await erp.tab(erp_token(erp))
    assert [item["token"] for item in again.ready["pending_confirmations"]] == [request["token"]]
    assert again.ready["active_turns"] == []
    # Invariant 6: the action's call has its interim result in the transcript.
    await assert_no_dangling_tool_calls(erp, request["turn_id"])
    frames = await decide(tab, request["token"], "approve")
    assert len(frames_of(frames, "action_executed")) == 1
    assert await po_status(erp, "PO-1004") == "approved"
    assert await audit_events(erp, request["token"]) == ["requested", "approved", "executed"]
    for each in (tab, again):
        await each.close()


async def test_tools_outside_the_users_roles_are_hidden_and_refused(
    erp: ParleyServer, model: DevModel
) -> None:
    tab = await erp.tab(erp_token(erp, roles=("viewer",)))
    frames = await tab.ask("approve PO-1001", "v-1")
    offered = {tool["function"]["name"] for tool in model.requests()[-1]["body"]["tools"]}
    assert "cash_balance" in offered
    assert "approve_purchase_order" not in offered
    assert not frames_of(frames, "confirm_request")

    # A model that calls it anyway (models invent names) is refused at execution, and audited.
    forced = await tab.ask(
        '[call approve_purchase_order] {"po_number": "PO-1001"}',
        "v-2",
        conversation_id=frames[0]["conversation_id"],
    )
    result = frames_of(forced, "tool_result")[0]
    assert result["ok"] is False
    assert not frames_of(forced, "confirm_request")
    assert forced[-1]["status"] == "completed"
    assert await po_status(erp, "PO-1001") == "awaiting_approval"
    refused = await rows(
        erp.config.database_url,
        "SELECT tool, event FROM audit_event WHERE turn_id = :t",
        t=forced[-1]["turn_id"],
    )
    assert refused == [("approve_purchase_order", "refused")]
    await tab.close()


async def test_another_users_token_is_forbidden_and_reveals_nothing(erp: ParleyServer) -> None:
    owner = await erp.tab(erp_token(erp))
    await owner.send({"type": "user_message", "client_msg_id": "o-1", "text": "approve PO-1002"})
    request = (await owner.until("confirm_request"))[-1]
    intruder = await erp.tab(make_token("mallory", "acme", ("admin",)))
    await intruder.send({"type": "confirm", "token": request["token"], "decision": "approve"})
    error = await intruder.expect("error")
    assert error["code"] == "forbidden"
    assert "PO-1002" not in error["message"]
    other_tenant = await erp.tab(make_token(erp.user, "globex", ("admin",)))
    await other_tenant.send({"type": "confirm", "token": request["token"], "decision": "approve"})
    assert (await other_tenant.expect("error"))["code"] == "forbidden"
    assert await po_status(erp, "PO-1002") == "awaiting_approval"
    assert await audit_events(erp, request["token"]) == ["requested"]
    # The real owner can still decide it.
    await owner.until("turn_end")
    assert (await decide(owner, request["token"], "reject"))[-1]["status"] == "completed"
    for tab in (owner, intruder, other_tenant):
        await tab.close()


async def test_confirmation_survives_a_restart_and_executes_once(
    fresh_backend: Backend, model: DevModel, tmp_path: Path
) -> None:
    config = fresh_backend.config(model, PARLEY_SHUTDOWN_DRAIN_S="0.5")
    config.tools = None
    parley = ParleyServer(tmp_path, config)
    try:
        tab = await parley.tab(erp_token(parley))
        await tab.send({"type": "user_message", "client_msg_id": "p-1", "text": "approve PO-1004"})
        request = (await tab.until("confirm_request"))[-1]
        parley.restart()

        again = await Tab.open(parley.ws_url, erp_token(parley))
        pending = [item["token"] for item in again.ready["pending_confirmations"]]
        assert pending == [request["token"]]
        frames = await decide(again, request["token"], "approve")
        assert len(frames_of(frames, "action_executed")) == 1
        assert frames[-1]["status"] == "completed"
        assert frames_of(frames, "response")
        assert await po_status(parley, "PO-1004") == "approved"
        events = await audit_events(parley, request["token"])
        assert events == ["requested", "approved", "executed"]
        await again.close()
    finally:
        parley.stop()


@pytest.mark.parametrize(
    ("forced_call", "expected"),
    [
        ('[call approve_purchase_order] {"po_number": ["PO-1001"]}', "po_number"),
        ("[call approve_purchase_order] {}", "po_number"),
        ("[call launch_rockets] {}", "unknown tool"),
        ("[call cash_balance] {not json", "not valid JSON"),
    ],
)
async def test_bad_tool_arguments_become_a_tool_error_the_model_sees(
    erp: ParleyServer, model: DevModel, forced_call: str, expected: str
) -> None:
    tab = await erp.tab(erp_token(erp))
    frames = await tab.ask(forced_call, "b-1")
    result = frames_of(frames, "tool_result")[0]
    assert result["ok"] is False
    assert frames[-1]["status"] == "completed"
    assert frames_of(frames, "response")
    told = last_tool_message(model)
    assert "error" in told
    assert expected in told
    await assert_no_dangling_tool_calls(erp, frames[-1]["turn_id"])
    await tab.close()


@pytest.fixture
def terse_erp(fresh_backend: Backend, model: DevModel, tmp_path: Path) -> Iterator[ParleyServer]:
    """The ERP server with tool results cut short for the model."""
    config = fresh_backend.config(model, PARLEY_TOOL_RESULT_MAX_CHARS="40")
    config.tools = None
    parley = ParleyServer(tmp_path, config)
    yield parley
    parley.stop()


async def test_the_model_reads_a_tool_result_cut_at_the_configured_length(
    terse_erp: ParleyServer, model: DevModel
) -> None:
    tab = await terse_erp.tab(erp_token(terse_erp))
    frames = await tab.ask("show AR aging", "m-terse")
    assert frames[-1]["status"] == "completed"
    await tab.close()
    (content,) = [
        message["content"]
        for message in model.requests()[-1]["body"]["messages"]
        if message["role"] == "tool"
    ]
    assert content.endswith("…(truncated)")
    assert len(content) == 40 + len("…(truncated)")
