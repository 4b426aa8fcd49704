"""Approvals that never hold the conversation (invariant 12), over real sockets with the demo
ERP pack and the scripted model: other messages run while a card waits, a decision starts a
continuation turn that reports it in every tab, a typed yes or no decides the one open card,
and an edited card runs with the user's values."""

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
from tests.server.harness import DevModel, ParleyServer, Tab, frames_of, logged
from tests.server.rest_support import REST_TOOLS, start_server
from tests.server.test_tools_e2e import (
    SALES_ORDER_PROMPT,
    ask_for_approval,
    audit_events,
    decide,
    erp_token,
    po_status,
)

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def erp(fresh_backend: Backend, model: DevModel, tmp_path: Path) -> Iterator[ParleyServer]:
    """A server with the demo ERP pack, on books of its own."""
    config = fresh_backend.config(model)
    config.tools = None
    parley = ParleyServer(tmp_path, config)
    yield parley
    parley.stop()


def last_request_notes(model: DevModel) -> list[str]:
    """The system notes (not the prompt) of the model's last request."""
    messages = model.requests()[-1]["body"]["messages"]
    return [message["content"] for message in messages[1:] if message["role"] == "system"]


async def audit_rows(server: ParleyServer, token: str, event: str) -> list[tuple[Any, ...]]:
    return await rows(
        server.config.database_url,
        "SELECT via, params, approved_params FROM audit_event "
        "WHERE confirmation_token = :t AND event = :e",
        t=token,
        e=event,
    )


async def test_a_question_runs_while_a_card_waits_and_every_tab_sees_the_outcome(
    erp: ParleyServer, model: DevModel
) -> None:
    first = await erp.tab(erp_token(erp))
    second = await erp.tab(erp_token(erp))
    request, asking = await ask_for_approval(first, "approve PO-1001", "w-1")
    conversation = request["conversation_id"]
    await second.until("turn_end")

    # The conversation is free: the question runs at once and completes while the card waits.
    question = await first.ask("what's our cash balance?", "w-2", conversation_id=conversation)
    assert frames_of(question, "tool_call")[0]["name"] == "cash_balance"
    assert "in cash across" in frames_of(question, "response")[0]["text"]
    assert question[-1]["status"] == "completed"
    assert "awaiting" not in question[-1]
    assert not frames_of(question, "confirm_resolved")
    # The model was told which card is still open.
    assert any(request["token"] in note for note in last_request_notes(model))
    await second.until("turn_end")
    assert await po_status(erp, "PO-1001") == "awaiting_approval"

    await first.send({"type": "confirm", "token": request["token"], "decision": "approve"})
    seen = await asyncio.gather(first.until("turn_end"), second.until("turn_end"))
    # Every tab sees the same frames, in the same order, with the same seqs.
    assert logged(seen[0]) == logged(seen[1])
    frames = seen[0]
    kinds = [frame["type"] for frame in frames if frame["type"] != "response_delta"]
    assert kinds == [
        "confirm_resolved",
        "action_executed",
        "thinking",
        "response",
        "turn_end",
    ]
    assert frames_of(frames, "thinking")[0]["continuation"] is True
    assert frames_of(frames, "response")[0]["text"] == "Done: PO-1001 is now approved."
    assert await po_status(erp, "PO-1001") == "approved"
    assert await audit_events(erp, request["token"]) == ["requested", "approved", "executed"]
    (via,) = (await audit_rows(erp, request["token"], "approved"))[0][:1]
    assert via == "button"
    assert frames_of(asking, "confirm_request")[0]["token"] == request["token"]
    for tab in (first, second):
        await tab.close()


async def test_a_decision_while_another_turn_runs_is_applied_and_reported_after_it(
    erp: ParleyServer,
) -> None:
    tab = await erp.tab(erp_token(erp))
    request, _ = await ask_for_approval(tab, "approve PO-1002", "q-1")
    # A question whose answer is slow to start holds the conversation's turn slot.
    await tab.send(
        {
            "type": "user_message",
            "client_msg_id": "q-2",
            "text": "what's our cash balance? [fault:slow_first_token=2]",
            "conversation_id": request["conversation_id"],
        }
    )
    (thinking,) = frames_of(await tab.until("thinking"), "thinking")
    await tab.send({"type": "confirm", "token": request["token"], "decision": "approve"})
    frames = await tab.until("turn_end")
    frames += await tab.until("turn_end")
    assert not frames_of(frames, "error")
    kinds = [(frame["type"], frame.get("turn_id")) for frame in frames]
    # The decision is applied at once, during the running turn; its continuation waits its
    # turn in the queue and runs after.
    question_end = kinds.index(("turn_end", thinking["turn_id"]))
    assert kinds.index(("action_executed", request["turn_id"])) < question_end
    continuation = frames_of(frames, "thinking")[0]
    assert continuation["continuation"] is True
    assert kinds.index(("thinking", continuation["turn_id"])) > question_end
    assert frames[-1]["turn_id"] == continuation["turn_id"]
    assert frames_of(frames, "response")[-1]["text"] == "Done: PO-1002 is now approved."
    assert await audit_events(erp, request["token"]) == ["requested", "approved", "executed"]
    await tab.close()


async def test_a_typed_yes_or_no_decides_the_one_open_card(erp: ParleyServer) -> None:
    tab = await erp.tab(erp_token(erp))
    request, _ = await ask_for_approval(tab, "approve PO-1002", "t-1")
    frames = await tab.ask("Yes!", "t-2", conversation_id=request["conversation_id"])
    # The message is mirrored like any other, then the decision, then the continuation.
    kinds = [frame["type"] for frame in frames if frame["type"] != "response_delta"]
    assert kinds == [
        "message",
        "confirm_resolved",
        "action_executed",
        "thinking",
        "response",
        "turn_end",
    ]
    assert frames_of(frames, "message")[0]["text"] == "Yes!"
    assert frames_of(frames, "confirm_resolved")[0]["status"] == "approved"
    assert frames_of(frames, "response")[0]["text"] == "Done: PO-1002 is now approved."
    assert await po_status(erp, "PO-1002") == "approved"
    assert await audit_events(erp, request["token"]) == ["requested", "approved", "executed"]
    assert (await audit_rows(erp, request["token"], "approved"))[0][0] == "typed"

    rejecting, _ = await ask_for_approval(tab, "reject PO-1003", "t-3")
    frames = await tab.ask("no", "t-4", conversation_id=rejecting["conversation_id"])
    assert frames_of(frames, "confirm_resolved")[0]["status"] == "rejected"
    assert not frames_of(frames, "action_executed")
    assert frames_of(frames, "response")[0]["text"].startswith("Cancelled: ")
    assert await po_status(erp, "PO-1003") == "awaiting_approval"
    assert await audit_events(erp, rejecting["token"]) == ["requested", "rejected"]
    assert (await audit_rows(erp, rejecting["token"], "rejected"))[0][0] == "typed"
    await tab.close()


async def test_a_yes_with_two_open_cards_asks_which_and_decides_nothing(
    erp: ParleyServer, model: DevModel
) -> None:
    tab = await erp.tab(erp_token(erp))
    one, _ = await ask_for_approval(tab, "approve PO-1001", "y-1")
    conversation = one["conversation_id"]
    other, _ = await ask_for_approval(tab, "approve PO-1004", "y-2", conversation_id=conversation)
    frames = await tab.ask("yes", "y-3", conversation_id=conversation)
    assert not frames_of(frames, "confirm_resolved")
    assert not frames_of(frames, "action_executed")
    question = frames_of(frames, "response")[0]["text"]
    assert "which one do you mean" in question
    assert one["summary"] in question
    assert other["summary"] in question
    assert any("Ask the user which one" in note for note in last_request_notes(model))
    for card in (one, other):
        assert await audit_events(erp, card["token"]) == ["requested"]
    assert await po_status(erp, "PO-1001") == "awaiting_approval"
    assert await po_status(erp, "PO-1004") == "awaiting_approval"
    await tab.close()


def with_quantity(params: dict[str, Any], quantity: Any) -> dict[str, Any]:
    line = {**params["lines"][0], "quantity": quantity}
    return {**params, "lines": [line]}


async def test_an_edited_card_runs_with_the_users_values(erp: ParleyServer) -> None:
    tab = await erp.tab(erp_token(erp))
    request, _ = await ask_for_approval(tab, SALES_ORDER_PROMPT, "e-1")
    proposed = request["params"]
    assert proposed["lines"][0]["quantity"] == "100"
    token = request["token"]

    # Edits that do not fit are refused with the field named; the card stays pending.
    for bad, named in ((-5, "quantity"), ("lots", "lines[0].quantity")):
        await tab.send(
            {
                "type": "confirm",
                "token": token,
                "decision": "approve",
                "params": with_quantity(proposed, bad),
            }
        )
        error = await tab.expect("error")
        assert error["code"] == "invalid_params"
        assert error["ref"] == token
        assert named in error["message"]
    assert await audit_events(erp, token) == ["requested"]
    check = await erp.tab(erp_token(erp))
    assert [item["token"] for item in check.ready["pending_confirmations"]] == [token]

    frames = await decide(tab, token, "approve", params=with_quantity(proposed, 120))
    resolved = frames_of(frames, "confirm_resolved")[0]
    assert resolved["status"] == "approved"
    assert resolved["params"]["lines"][0]["quantity"] == "120"
    assert resolved["summary"] != request["summary"]
    executed = frames_of(frames, "action_executed")[0]
    assert executed["ok"] is True, executed
    assert executed["result"]["lines"][0]["quantity"] == "120"
    assert "with your changes" in frames_of(frames, "response")[0]["text"]
    (quantity,) = (
        await rows(
            erp.config.database_url,
            "SELECT line.quantity FROM erp_sales_order_line line "
            "JOIN erp_sales_order so ON so.id = line.sales_order_id "
            "WHERE so.tenant = 'acme' AND so.number = :n",
            n=executed["result"]["number"],
        )
    )[0]
    assert Decimal(str(quantity)) == 120
    # The audit keeps what was proposed and what was approved.
    for event in ("approved", "executed"):
        ((via, params, approved),) = await audit_rows(erp, token, event)
        assert via == ("button" if event == "approved" else None)
        params, approved = _json(params), _json(approved)
        assert params["lines"][0]["quantity"] == "100"
        assert approved["lines"][0]["quantity"] == "120"
    for each in (tab, check):
        await each.close()


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


@pytest.fixture
def two_workers(
    real_backend: Backend, postgres_database: str, model: DevModel, tmp_path: Path
) -> Iterator[list[ParleyServer]]:
    """Two worker processes on one Redis and a database of the test's own."""
    config = real_backend.config(model)
    config.database_url = postgres_database
    config.tools = None
    first = ParleyServer(tmp_path, config, process=True)
    second = ParleyServer(tmp_path, config, process=True)
    yield [first, second]
    for worker in (first, second):
        worker.stop()


@pytest.mark.slow
async def test_a_card_asked_on_one_worker_is_decided_on_the_other(
    two_workers: list[ParleyServer],
) -> None:
    first, second = two_workers
    token = erp_token(first)
    asking_tab = await Tab.open(first.ws_url, token)
    deciding_tab = await Tab.open(second.ws_url, token)
    request, _ = await ask_for_approval(asking_tab, "approve PO-1001", "m-1")
    await deciding_tab.until("turn_end")
    await deciding_tab.send({"type": "confirm", "token": request["token"], "decision": "approve"})
    seen = await asyncio.gather(asking_tab.until("turn_end"), deciding_tab.until("turn_end"))
    assert logged(seen[0]) == logged(seen[1])
    assert len(frames_of(seen[0], "action_executed")) == 1
    assert frames_of(seen[0], "response")[0]["text"] == "Done: PO-1001 is now approved."
    assert await po_status(first, "PO-1001") == "approved"
    assert await audit_events(first, request["token"]) == ["requested", "approved", "executed"]
    for tab in (asking_tab, deciding_tab):
        await tab.close()


PROFILES_TOML = """
[[profile]]
id = "desk"
title = "Memo desk"
tools = ["send_memo"]
handoff = ["quiet"]
default = true

[[profile]]
id = "quiet"
title = "Quiet room"
tools = []
"""


async def test_an_approved_action_its_profile_no_longer_offers_is_refused_at_execution(
    model: DevModel, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    profiles = tmp_path / "profiles.toml"
    profiles.write_text(PROFILES_TOML, "utf-8")
    parley = start_server(
        "embedded",
        request,
        tmp_path,
        model,
        PARLEY_PROFILES=str(profiles),
        PARLEY_TOOLS=REST_TOOLS,
    )
    try:
        tab = await parley.tab()
        card, _ = await ask_for_approval(tab, '[call send_memo] {"text": "hello"}', "p-1")
        conversation = card["conversation_id"]
        # The conversation moves to a profile that does not offer the action; the card stays.
        moved = await tab.ask("hand me over to quiet", "p-2", conversation_id=conversation)
        assert frames_of(moved, "conversation_updated")[0]["profile"] == "quiet"
        frames = await decide(tab, card["token"], "approve")
        (executed,) = frames_of(frames, "action_executed")
        assert executed["ok"] is False
        assert "not part of the profile 'quiet'" in executed["result"]["error"]
        assert await audit_events(parley, card["token"]) == ["requested", "approved", "failed"]
        await tab.close()
    finally:
        parley.stop()
