"""An OpenAPI host and an MCP server in one ``PARLEY_TOOL_SOURCES`` file, end to end.

Both are processes of the tests' own: the host app (``tests/server/host_app.py``, which checks
every call's JWT with PyJWT) and the MCP server made with the ``mcp`` SDK
(``tests/peers/mcp_server.py``, over streamable HTTP). Parley offers the tools of both, runs
their queries at once, and runs each action only after the user approves it, once, with the
confirmation token as ``Idempotency-Key``.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest

from tests.server.conftest import Backend
from tests.server.harness import ParleyServer, Tab, frames_of
from tests.server.mcp_peer import HttpPeer
from tests.server.tool_sources_support import HOST_API_KEY, HOST_SECRET, HostApp

# Its peers (host apps, MCP servers) are real processes: the full run has it.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

PEER_SECRET = "mcp-peer-secret-for-the-combined-test-0123456789"


@dataclass
class Sources:
    parley: ParleyServer
    host: HostApp
    peer: HttpPeer

    def peer_calls(self, tool: str) -> list[dict[str, Any]]:
        return [call for call in self.peer.calls() if call["tool"] == tool]


def sources_file(tmp: Path, host: HostApp, peer: HttpPeer) -> str:
    path = tmp / "sources.toml"
    path.write_text(
        f"""
[[source]]
name = "host"
kind = "openapi"
url = "{host.url}/openapi.json"
secret = "{HOST_SECRET}"
headers = {{ "X-Api-Key" = "{HOST_API_KEY}" }}

[[source]]
name = "peer"
kind = "mcp"
url = "{peer.url}"
secret = "{PEER_SECRET}"
timeout_s = 5
"""
    )
    return str(path)


@pytest.fixture
def sources(tmp_path: Path) -> Iterator[Sources]:
    host = HostApp(tmp_path)
    peer = HttpPeer(tmp_path)
    try:
        backend = Backend(
            "embedded",
            f"sqlite+aiosqlite:///{tmp_path / 'parley.db'}",
            None,
            f"parley-test-{secrets.token_hex(4)}:",
        )
        # The in-process scripted model: its "[call <tool>] <json>" rule makes exact calls.
        path = sources_file(tmp_path, host, peer)
        config = backend.config(None, PARLEY_TOOL_SOURCES=path, PARLEY_TOOL_RETRY_BASE_S="0.05")
        parley = ParleyServer(tmp_path, config)
        try:
            yield Sources(parley, host, peer)
        finally:
            parley.stop()
    finally:
        peer.stop()
        host.stop()


def peer_claims(call: dict[str, Any], user: str) -> dict[str, Any]:
    """The MCP call's token, checked as a host would check it with PyJWT."""
    header = call["authorization"]
    assert header is not None
    assert header.startswith("Bearer ")
    claims: dict[str, Any] = jwt.decode(
        header.removeprefix("Bearer "),
        PEER_SECRET,
        algorithms=["HS256"],
        audience="peer",
        options={"require": ["exp", "iat", "sub", "aud", "jti"]},
    )
    assert claims["sub"] == user
    assert claims["tenant"] == "acme"
    assert claims["exp"] - claims["iat"] <= 60
    return claims


async def ask_for_action(tab: Tab, text: str, client_msg_id: str) -> dict[str, Any]:
    """Send a message that asks for an action; its card, once the asking turn has ended."""
    await tab.send({"type": "user_message", "client_msg_id": client_msg_id, "text": text})
    (card,) = frames_of(await tab.until("confirm_request"), "confirm_request")
    assert (await tab.until("turn_end"))[-1]["awaiting"] == [card["token"]]
    return card


async def approve(tab: Tab, token: str) -> dict[str, Any]:
    await tab.send({"type": "confirm", "token": token, "decision": "approve"})
    frames = await tab.until("turn_end")
    assert frames[-1]["status"] == "completed", frames[-1]
    (executed,) = frames_of(frames, "action_executed")
    return executed


async def test_queries_run_at_once_and_actions_once_after_approval_on_both(
    sources: Sources,
) -> None:
    parley, host = sources.parley, sources.host
    tab = await parley.tab()
    try:
        # Queries of both sources: called at once, no card.
        for number, text, name in [
            (1, '[call host__get_thing] {"thing_id": "T-1"}', "host__get_thing"),
            (2, '[call peer__lookup_invoice] {"number": "INV-1"}', "peer__lookup_invoice"),
        ]:
            frames = await tab.ask(text, f"q-{number}")
            assert frames[-1]["status"] == "completed"
            assert not frames_of(frames, "confirm_request")
            (result,) = frames_of(frames, "tool_result")
            assert (result["name"], result["ok"]) == (name, True), result
        (thing,) = host.requests("/api/things")
        assert thing["idempotency_key"] is None
        assert thing["api_key"] == HOST_API_KEY
        assert (thing["claims"]["sub"], thing["claims"]["tenant"]) == (parley.user, "acme")
        (lookup,) = sources.peer_calls("lookup_invoice")
        assert lookup["idempotency_key"] is None
        assert "confirmation" not in peer_claims(lookup, parley.user)

        # The OpenAPI host's action.
        card = await ask_for_action(
            tab,
            '[call host__approve_order] {"po_number": "PO-1001", "comment": "fine"}',
            "a-1",
        )
        assert card["source"] == "host"
        assert host.requests("/api/orders") == []  # nothing before the decision
        executed = await approve(tab, card["token"])
        assert executed["ok"] is True, executed
        (approved,) = host.requests("/api/orders")
        assert approved["idempotency_key"] == card["token"]
        assert approved["claims"]["confirmation"] == card["token"]
        assert approved["claims"]["sub"] == parley.user
        assert host.executions() == {card["token"]: 1}

        # The MCP server's action.
        card = await ask_for_action(
            tab, '[call peer__pay_invoice] {"number": "INV-1", "amount": "40.00"}', "a-2"
        )
        assert card["source"] == "peer"
        assert sources.peer_calls("pay_invoice") == []
        executed = await approve(tab, card["token"])
        assert executed["ok"] is True, executed
        assert "pay_invoice done for INV-1" in json.dumps(executed["result"])
        (paid,) = sources.peer_calls("pay_invoice")
        assert paid["executed"] is True
        assert paid["idempotency_key"] == card["token"]
        assert paid["idempotency_header"] == card["token"]
        assert peer_claims(paid, parley.user)["confirmation"] == card["token"]

        # A second approval of a decided card runs nothing anywhere.
        await tab.send({"type": "confirm", "token": card["token"], "decision": "approve"})
        refused = await tab.until(lambda frame: frame["type"] == "error")
        assert refused[-1]["type"] == "error"
    finally:
        await tab.close()
    assert len(sources.peer_calls("pay_invoice")) == 1
    assert len(host.requests("/api/orders")) == 1
