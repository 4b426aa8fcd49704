"""Token and cost budgets per conversation, per user per day and per tenant per day.

Each test first runs one probe turn with the budgets at their defaults to learn what a turn
costs here, then restarts the server with a budget just above that, so the next turn in scope
would overspend: it is refused with ``budget_exceeded`` before the model is called (the dev
model's request log does not grow), while turns outside the budget's scope go on."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.server.conftest import Backend
from tests.server.harness import DevModel, ParleyServer, Tab, frames_of, make_token
from tests.server.security_support import StartServer, server_starter

# In process, but long (restarts servers between turns): the full run's.
pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]

# A long scripted reply, so one turn's output clearly outweighs the next prompt's own size.
PROBE = "[say] " + " ".join(f"budget line {number} of the probe answer." for number in range(60))
# Prices high enough that costs are not lost to the database's six decimals.
PRICES = "gpt-4o-mini=1000/2000"


@pytest.fixture
def start_server(backend: Backend, model: DevModel, tmp_path: Path) -> Iterator[StartServer]:
    yield from server_starter(backend, model, tmp_path)


@dataclass
class Probe:
    conversation_id: str
    total_tokens: int
    cost: float


async def probe(server: ParleyServer, token: str | None = None) -> Probe:
    tab = await server.tab(token)
    frames = await tab.ask(PROBE, "probe")
    await tab.close()
    usage = frames_of(frames, "response")[0]["usage"]
    assert usage["completion_tokens"] > 200  # the long reply the margins below rely on
    return Probe(frames[0]["conversation_id"], usage["total_tokens"], usage["cost"])


def restart_with(server: ParleyServer, **settings: str) -> None:
    server.config.extra.update(settings)
    server.restart()


async def refused(
    tab: Tab, model: DevModel, ref: str, **fields: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Send a message that must be refused for its budget: the error and the turn_end."""
    before = len(model.requests())
    await tab.send({"type": "user_message", "client_msg_id": ref, "text": PROBE, **fields})
    frames = await tab.until("turn_end")
    errors = frames_of(frames, "error")
    assert [error["code"] for error in errors] == ["budget_exceeded"]
    assert errors[0]["ref"] == ref
    assert frames[-1]["status"] == "failed"
    # Tabs on other workers learn why from the logged turn_end.
    assert frames[-1]["error"]["code"] == "budget_exceeded"
    assert not frames_of(frames, "response_delta")
    assert len(model.requests()) == before, "a refused turn must not call the model"
    return errors[0], frames[-1]


async def test_conversation_budget_refuses_the_next_turn_there_only(
    start_server: StartServer, model: DevModel
) -> None:
    server = start_server()
    spent = await probe(server)
    restart_with(server, PARLEY_BUDGET_CONVERSATION_TOKENS=str(spent.total_tokens + 1))
    tab = await server.tab()
    error, _ = await refused(tab, model, "again", conversation_id=spent.conversation_id)
    assert error["message"] == (
        f"this conversation's token budget of {spent.total_tokens + 1} would be exceeded"
    )
    assert error["retryable"] is False
    assert "retry_after" not in error
    # A new conversation starts with a budget of its own.
    frames = await tab.ask(PROBE, "fresh")
    assert frames[-1]["status"] == "completed"
    await tab.close()


async def test_daily_budgets_of_user_and_tenant(start_server: StartServer, model: DevModel) -> None:
    server = start_server()
    spent = await probe(server)
    restart_with(server, PARLEY_BUDGET_USER_DAILY_TOKENS=str(spent.total_tokens + 1))
    alice = await server.tab()
    error, _ = await refused(alice, model, "alice-2")
    assert error["message"] == (
        f"this user's daily token budget of {spent.total_tokens + 1} would be exceeded"
    )
    # A daily budget comes back at midnight UTC, and the error says when.
    assert error["retryable"] is True
    assert 0 < error["retry_after"] <= 86_400
    await alice.close()
    bob_token = make_token(f"{server.user}-bob", "acme")
    bob = await server.tab(bob_token)
    assert (await bob.ask(PROBE, "bob-1"))[-1]["status"] == "completed"
    await bob.close()

    # The tenant has now spent two turns; allow a little more than that.
    restart_with(
        server,
        PARLEY_BUDGET_USER_DAILY_TOKENS="0",
        PARLEY_BUDGET_TENANT_DAILY_TOKENS=str(2 * spent.total_tokens + 50),
    )
    bob = await server.tab(bob_token)
    error, _ = await refused(bob, model, "bob-2")
    assert "this tenant's daily token budget" in error["message"]
    await bob.close()
    other_tenant = await server.tab(make_token(server.user, "globex"))
    assert (await other_tenant.ask(PROBE, "gx-1"))[-1]["status"] == "completed"
    await other_tenant.close()


async def test_cost_budget_refuses_a_turn_that_would_overspend(
    start_server: StartServer, model: DevModel
) -> None:
    server = start_server(PARLEY_MODEL_PRICES=PRICES)
    spent = await probe(server)
    assert spent.cost > 0
    restart_with(server, PARLEY_BUDGET_USER_DAILY_USD=f"{spent.cost + 0.001:.6f}")
    tab = await server.tab()
    error, _ = await refused(tab, model, "costly")
    assert "this user's daily cost budget" in error["message"]
    await tab.close()


async def test_budget_warning_past_the_threshold_lets_the_turn_run(
    start_server: StartServer, model: DevModel
) -> None:
    server = start_server()
    spent = await probe(server)
    restart_with(
        server,
        PARLEY_BUDGET_USER_DAILY_TOKENS=str(10 * spent.total_tokens),
        PARLEY_BUDGET_WARNING_RATIO="0.1",
    )
    tab = await server.tab()
    frames = await tab.ask(PROBE, "warned")
    warnings = frames_of(frames, "error")
    assert [warning["code"] for warning in warnings] == ["budget_warning"]
    assert warnings[0]["message"].startswith("this user's daily budget is ")
    assert warnings[0]["ref"] == "warned"
    assert frames[-1]["status"] == "completed"
    assert frames_of(frames, "response")
    await tab.close()


async def test_tool_rounds_cannot_run_a_turn_past_its_budget(
    start_server: StartServer, model: DevModel
) -> None:
    server = start_server()
    tab = await server.tab()
    # One model call in a fresh conversation: what a first round's prompt costs here.
    first_call = frames_of(await tab.ask("[say] measured", "measure"), "response")[0]["usage"]
    await tab.close()
    # The first round fits; with its usage and the tool result, the second round does not.
    budget = first_call["prompt_tokens"] * 3 // 2
    restart_with(server, PARLEY_BUDGET_CONVERSATION_TOKENS=str(budget))
    tab = await server.tab()
    before = len(model.requests())
    frames = await tab.ask("[call launch_rockets] {}", "rounds")

    assert len(model.requests()) == before + 1, "the second round must not call the model"
    assert [result["ok"] for result in frames_of(frames, "tool_result")] == [False]
    assert [error["code"] for error in frames_of(frames, "error")] == ["budget_exceeded"]
    assert frames[-1]["status"] == "failed"
    assert frames[-1]["error"]["code"] == "budget_exceeded"
    assert f"token budget of {budget} would be exceeded" in frames[-1]["error"]["message"]
    await tab.close()
