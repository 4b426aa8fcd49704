"""A host's MCP server as a tool source, end to end: ``parley serve`` with a
``PARLEY_TOOL_SOURCES`` file naming the tests' own MCP server (a real process, over stdio and
over streamable HTTP), the scripted model choosing the calls, and a tab speaking the protocol."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from tests.server.conftest import Backend
from tests.server.harness import DevModel, ParleyServer, Tab, frames_of, make_token
from tests.server.mcp_peer import (
    HttpPeer,
    add_late_tool,
    alive,
    peer_pid,
    recorded_calls,
    stdio_command,
)

# Its peers (host apps, MCP servers) are real processes: the full run has it.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

SOURCE = "peer"
SECRET = "mcp-source-secret-for-tests-0123456789abcdef"


@dataclass
class McpSetup:
    parley: ParleyServer
    model: DevModel
    state: Path
    transport: str

    def calls(self, tool: str) -> list[dict[str, Any]]:
        return [call for call in recorded_calls(self.state) if call["tool"] == tool]

    def token_of(self, call: dict[str, Any]) -> dict[str, Any]:
        """The claims of the user token the call carried: the header over HTTP, the request's
        ``_meta`` over stdio, verified as a host would."""
        header = call["authorization"] if self.transport == "http" else call["meta_authorization"]
        assert header is not None
        assert header.startswith("Bearer ")
        claims: dict[str, Any] = jwt.decode(
            header.removeprefix("Bearer "),
            SECRET,
            algorithms=["HS256"],
            audience=SOURCE,
            options={"require": ["exp", "sub", "aud", "iss", "jti"]},
        )
        return claims


def write_sources(tmp: Path, transport: str, state: Path, peer: HttpPeer | None) -> Path:
    target = (
        f'url = "{peer.url}"'
        if peer is not None
        else "command = " + json.dumps(stdio_command(state))
    )
    path = tmp / "sources.toml"
    path.write_text(
        f"""
[[source]]
name = "{SOURCE}"
kind = "mcp"
{target}
secret = "{SECRET}"
timeout_s = 5
"""
    )
    return path


def embedded(tmp: Path) -> Backend:
    prefix = f"parley-test-{secrets.token_hex(4)}:"
    return Backend("embedded", f"sqlite+aiosqlite:///{tmp / 'parley.db'}", None, prefix)


def start(backend: Backend, model: DevModel, tmp: Path, transport: str) -> Iterator[McpSetup]:
    state = tmp / "mcp-peer"
    peer = HttpPeer(tmp, state=state) if transport == "http" else None
    config = backend.config(
        model,
        PARLEY_TOOL_SOURCES=str(write_sources(tmp, transport, state, peer)),
        PARLEY_TOOL_SOURCE_RETRY_S="1",
    )
    parley = ParleyServer(tmp, config)
    try:
        yield McpSetup(parley, model, state, transport)
    finally:
        parley.stop()
        if peer is not None:
            peer.stop()


@pytest.fixture(params=["stdio", "http"])
def mcp(request: pytest.FixtureRequest, model: DevModel, tmp_path: Path) -> Iterator[McpSetup]:
    """Parley on the embedded store with the MCP peer as source ``peer``."""
    yield from start(embedded(tmp_path), model, tmp_path, request.param)


@pytest.fixture(params=["stdio", "http"])
def mcp_on_each_backend(
    request: pytest.FixtureRequest, backend: Backend, model: DevModel, tmp_path: Path
) -> Iterator[McpSetup]:
    yield from start(backend, model, tmp_path, request.param)


async def readyz(parley: ParleyServer) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=5) as client:
        reply = await client.get(f"{parley.url}/readyz")
    assert reply.status_code == 200
    body: dict[str, Any] = reply.json()
    return body


async def open_tab(setup: McpSetup) -> Tab:
    return await setup.parley.tab(make_token(setup.parley.user, "acme", ("clerk",)))


def offered_tools(model: DevModel) -> set[str]:
    """The tools offered in the model's most recent request."""
    body = model.requests()[-1]["body"]
    return {tool["function"]["name"] for tool in body.get("tools", [])}


def tool_messages(model: DevModel) -> list[str]:
    body = model.requests()[-1]["body"]
    return [message["content"] for message in body["messages"] if message["role"] == "tool"]


async def test_a_query_runs_at_once_and_both_contents_reach_the_model(mcp: McpSetup) -> None:
    tab = await open_tab(mcp)
    frames = await tab.ask('[call peer__lookup_invoice] {"number": "INV-1"}', "q-1")
    assert frames[-1]["status"] == "completed"
    (call,) = frames_of(frames, "tool_call")
    (result,) = frames_of(frames, "tool_result")
    assert call["name"] == result["name"] == "peer__lookup_invoice"
    assert result["ok"] is True
    assert not frames_of(frames, "confirm_request")

    (content,) = tool_messages(mcp.model)
    seen = json.loads(content)
    assert seen["text"] == "Invoice INV-1 for Acme is open."
    assert seen["structured_content"]["amount_due"] == "120.00"

    (received,) = mcp.calls("lookup_invoice")
    claims = mcp.token_of(received)
    assert claims["sub"] == mcp.parley.user
    assert claims["tenant"] == "acme"
    assert claims["roles"] == ["clerk"]
    assert claims["call_id"] == call["call_id"]
    assert "confirmation" not in claims
    assert received["idempotency_key"] is None
    await tab.close()


async def test_an_action_runs_only_after_approval_once_with_its_key(
    mcp_on_each_backend: McpSetup,
) -> None:
    mcp = mcp_on_each_backend
    tab = await open_tab(mcp)
    await tab.send(
        {
            "type": "user_message",
            "client_msg_id": "a-1",
            "text": '[call peer__pay_invoice] {"number": "INV-1", "amount": "40.00"}',
        }
    )
    request = (await tab.until("confirm_request"))[-1]
    assert request["action"] == "peer__pay_invoice"
    assert request["params"] == {"number": "INV-1", "amount": "40.00"}
    assert request["source"] == SOURCE
    assert request["destructive"] is True
    assert "destructive" in request["summary"]
    assert "INV-1" in request["summary"]
    # Nothing reached the host before the user decided.
    assert mcp.calls("pay_invoice") == []
    # A tab opened now shows the same card, warning and source included.
    later = await open_tab(mcp)
    (pending,) = [
        entry
        for entry in later.frames[0]["pending_confirmations"]
        if entry["token"] == request["token"]
    ]
    assert (pending["source"], pending["destructive"]) == (SOURCE, True)
    assert pending["summary"] == request["summary"]
    await later.close()
    # The turn that asked ends with the card open; the decision's continuation reports it.
    assert (await tab.until("turn_end"))[-1]["awaiting"] == [request["token"]]

    await tab.send({"type": "confirm", "token": request["token"], "decision": "approve"})
    frames = await tab.until("turn_end")
    assert frames_of(frames, "thinking")[0]["continuation"] is True
    (executed,) = frames_of(frames, "action_executed")
    assert executed["ok"] is True, executed
    assert "pay_invoice done for INV-1" in json.dumps(executed["result"])

    (received,) = mcp.calls("pay_invoice")
    assert received["executed"] is True
    assert received["idempotency_key"] == request["token"]
    if mcp.transport == "http":
        assert received["idempotency_header"] == request["token"]
    claims = mcp.token_of(received)
    assert claims["confirmation"] == request["token"]
    assert claims["sub"] == mcp.parley.user
    assert claims["tenant"] == "acme"
    await tab.close()


async def test_a_tool_that_fails_reaches_the_model_with_the_hosts_message(
    mcp: McpSetup,
) -> None:
    tab = await open_tab(mcp)
    frames = await tab.ask('[call peer__fail_invoice] {"number": "INV-2"}', "f-1")
    assert frames[-1]["status"] == "completed"
    (result,) = frames_of(frames, "tool_result")
    assert result["ok"] is False
    assert "locked by the accounting period close" in result["summary"]
    (content,) = tool_messages(mcp.model)
    assert "locked by the accounting period close" in json.loads(content)["error"]
    await tab.close()


async def test_a_new_tool_is_offered_on_the_next_turn_after_tools_list_changed(
    mcp: McpSetup,
) -> None:
    tab = await open_tab(mcp)
    await tab.ask("[say] hello", "c-0")
    offered = offered_tools(mcp.model)
    assert "peer__lookup_invoice" in offered
    assert "peer__late_lookup" not in offered

    add_late_tool(mcp.state)
    deadline = time.monotonic() + 30
    turn = 0
    while "peer__late_lookup" not in offered_tools(mcp.model):
        assert time.monotonic() < deadline, "the new tool was never offered"
        await asyncio.sleep(0.3)
        turn += 1
        await tab.ask("[say] hello again", f"c-{turn}")
    frames = await tab.ask('[call peer__late_lookup] {"number": "INV-1"}', "late")
    (result,) = frames_of(frames, "tool_result")
    assert result["ok"] is True
    assert "no late fees" in tool_messages(mcp.model)[0]
    await tab.close()


@pytest.mark.parametrize("transport", ["http"])
async def test_a_source_down_at_startup_does_not_stop_parley(
    transport: str, model: DevModel, tmp_path: Path
) -> None:
    state = tmp_path / "mcp-peer"
    placeholder = HttpPeer(tmp_path, state=state)
    placeholder.stop()  # its port is free now: nothing answers there
    config = embedded(tmp_path).config(
        model,
        PARLEY_TOOL_SOURCES=str(write_sources(tmp_path, transport, state, placeholder)),
        PARLEY_TOOL_SOURCE_RETRY_S="1",
    )
    parley = ParleyServer(tmp_path, config)
    peer: HttpPeer | None = None
    try:
        setup = McpSetup(parley, model, state, transport)
        tab = await open_tab(setup)
        frames = await tab.ask("[say] hello", "d-1")
        assert frames[-1]["status"] == "completed"
        assert not {name for name in offered_tools(model) if name.startswith("peer__")}
        ready = await readyz(parley)
        assert ready["status"] == "degraded"
        assert "could not connect" in ready["degraded"]["tool_source:peer"]

        peer = HttpPeer(tmp_path, port=placeholder.port, state=state)
        deadline = time.monotonic() + 30
        turn = 1
        while "peer__lookup_invoice" not in offered_tools(model):
            assert time.monotonic() < deadline, "the source never came up"
            await asyncio.sleep(0.5)
            turn += 1
            await tab.ask("[say] hello", f"d-{turn}")
        frames = await tab.ask('[call peer__lookup_invoice] {"number": "INV-2"}', "d-q")
        assert frames_of(frames, "tool_result")[0]["ok"] is True
        assert (await readyz(parley))["status"] == "ready"
        await tab.close()
    finally:
        parley.stop()
        if peer is not None:
            peer.stop()


@pytest.mark.parametrize("mcp", ["stdio"], indirect=True)
def test_a_stdio_server_stops_with_parley(mcp: McpSetup) -> None:
    pid = peer_pid(mcp.state)
    assert alive(pid)
    mcp.parley.stop()
    deadline = time.monotonic() + 15
    while alive(pid):
        assert time.monotonic() < deadline, "the stdio server outlived Parley"
        time.sleep(0.1)


async def test_concurrent_calls_of_two_tenants_each_carry_their_own_user(mcp: McpSetup) -> None:
    """Invariant 10 with calls in flight at once: every token names the user who asked."""
    users = [(f"{mcp.parley.user}-a", "acme"), (f"{mcp.parley.user}-b", "globex")]
    tabs = [await mcp.parley.tab(make_token(user, tenant, ("clerk",))) for user, tenant in users]

    async def ask(tab: Tab, index: int) -> list[dict[str, Any]]:
        frames: list[dict[str, Any]] = []
        for turn in range(3):
            text = f'[call peer__lookup_invoice] {{"number": "INV-{1 + turn % 2}"}}'
            frames += await tab.ask(text, f"t-{index}-{turn}")
        return frames

    seen = await asyncio.gather(*(ask(tab, index) for index, tab in enumerate(tabs)))
    expected: dict[str, tuple[str, str]] = {}
    for (user, tenant), frames in zip(users, seen, strict=True):
        for call in frames_of(frames, "tool_call"):
            expected[call["call_id"]] = (user, tenant)
    received = mcp.calls("lookup_invoice")
    assert len(received) == len(expected) == 6
    for call in received:
        claims = mcp.token_of(call)
        assert expected[claims["call_id"]] == (claims["sub"], claims["tenant"])
    for tab in tabs:
        await tab.close()
