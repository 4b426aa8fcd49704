"""An MCP tool source in this process against the tests' MCP server as a real process: retries
keep the action's key, an outcome that stays unknown is reported as unknown, a server that is
down runs nothing, and results and refusals reach the caller as the model would see them."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import jwt
import pytest
from prometheus_client import REGISTRY

from server.config import Settings
from server.tools.context import ToolContext
from server.tools.registry import ToolRegistry
from server.tools.sources.base import SourceLimits
from server.tools.sources.config import parse_sources
from server.tools.sources.errors import SourceLoadError
from server.tools.sources.mcp import McpSource
from server.tools.sources.user_token import CallAuth
from tests.server.mcp_peer import HttpPeer, recorded_calls

# Its peers (host apps, MCP servers) are real processes: the full run has it.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

SECRET = "mcp-source-secret-for-tests-0123456789abcdef"
ROLES = frozenset({"clerk"})


def make_source(target: dict[str, Any], **limits: Any) -> McpSource:
    table = {"name": "peer", "kind": "mcp", "secret": SECRET, "timeout_s": 5, **target}
    (config,) = parse_sources({"source": [table]}, "sources.toml", {})
    base = SourceLimits.of(Settings(), config)
    auth = CallAuth(config, issuer="parley", ttl_s=30, signing_key=None)
    return McpSource(config, replace(base, retry_base_s=0.05, **limits), auth)


def context(confirmation: str | None = None) -> ToolContext:
    return ToolContext(
        tenant="acme",
        user="alice",
        roles=ROLES,
        conversation_id="conversation-1",
        turn_id="turn-1",
        currency="USD",
        locale="en-US",
        sessions=None,  # type: ignore[arg-type]
        call_id="call-1",
        confirmation=confirmation,
    )


@pytest.fixture
async def over_http(tmp_path: Path) -> AsyncIterator[tuple[McpSource, ToolRegistry, HttpPeer]]:
    peer = HttpPeer(tmp_path)
    source = make_source({"url": peer.url}, timeout_s=1.0)
    await source.start()
    registry = ToolRegistry()
    registry.add_provider(source)
    try:
        yield source, registry, peer
    finally:
        await source.close()
        peer.stop()


def attempts_counted(result: str) -> float:
    """``parley_tool_source_attempts_total{source="peer", result=...}`` in this process."""
    value = REGISTRY.get_sample_value(
        "parley_tool_source_attempts_total", {"source": "peer", "result": result}
    )
    return value or 0.0


async def run(registry: ToolRegistry, tool: str, arguments: str, ctx: ToolContext) -> Any:
    return await registry.run(registry.validate(tool, arguments, ROLES), ctx)


async def test_an_action_without_an_answer_is_retried_under_its_key_then_reported_unknown(
    over_http: tuple[McpSource, ToolRegistry, HttpPeer],
) -> None:
    source, registry, peer = over_http
    assert source.limits.action_attempts == 3
    timeouts = attempts_counted("timeout")
    outcome = await run(
        registry, "peer__pay_slowly", '{"number": "INV-1", "seconds": 3}', context("token-7")
    )
    assert attempts_counted("timeout") == timeouts + 3
    assert outcome.ok is False
    assert "may or may not have been carried out" in outcome.summary
    calls = [call for call in peer.calls() if call["tool"] == "pay_slowly"]
    assert len(calls) == 3
    assert {call["idempotency_key"] for call in calls} == {"token-7"}
    assert {call["idempotency_header"] for call in calls} == {"token-7"}
    # The host ran it once: the retries carried the key it had already seen.
    assert [call["executed"] for call in calls] == [True, False, False]
    # Each attempt carried a token of its own, all naming the confirmation.
    tokens = [
        jwt.decode(
            call["authorization"].removeprefix("Bearer "), SECRET, ["HS256"], audience="peer"
        )
        for call in calls
    ]
    assert len({claims["jti"] for claims in tokens}) == 3
    assert {claims["confirmation"] for claims in tokens} == {"token-7"}


async def test_a_refused_retry_of_an_unanswered_action_still_says_it_may_have_run(
    over_http: tuple[McpSource, ToolRegistry, HttpPeer],
) -> None:
    _, registry, peer = over_http
    arguments = '{"number": "INV-1", "seconds": 3}'
    outcome = await run(registry, "peer__pay_forgetfully", arguments, context("token-9"))
    assert outcome.ok is False
    assert "invoice INV-1 is already paid" in outcome.summary
    assert "may have carried the action out" in outcome.summary
    calls = [call for call in peer.calls() if call["tool"] == "pay_forgetfully"]
    assert [call["executed"] for call in calls] == [True, False]


async def test_a_slow_query_is_not_asked_again(
    over_http: tuple[McpSource, ToolRegistry, HttpPeer],
) -> None:
    _, registry, peer = over_http
    outcome = await run(registry, "peer__slow_report", '{"seconds": 3}', context())
    assert outcome.ok is False
    assert "no answer within 1s" in outcome.summary
    assert len([call for call in peer.calls() if call["tool"] == "slow_report"]) == 1


async def test_an_action_is_refused_without_its_confirmation(
    over_http: tuple[McpSource, ToolRegistry, HttpPeer],
) -> None:
    _, registry, peer = over_http
    outcome = await run(
        registry, "peer__pay_invoice", '{"number": "INV-1", "amount": "1"}', context()
    )
    assert outcome.ok is False
    assert "only after the user approves" in outcome.summary
    assert peer.calls() == []


async def test_an_action_for_a_server_gone_away_is_not_carried_out(
    over_http: tuple[McpSource, ToolRegistry, HttpPeer],
) -> None:
    _, registry, peer = over_http
    peer.stop()
    outcome = await run(
        registry, "peer__pay_invoice", '{"number": "INV-1", "amount": "1"}', context("token-8")
    )
    assert outcome.ok is False
    assert "was not carried out" in outcome.summary


async def test_an_answer_over_the_cap_is_cut_with_a_note(
    over_http: tuple[McpSource, ToolRegistry, HttpPeer],
) -> None:
    source, registry, _ = over_http
    outcome = await run(registry, "peer__big_report", '{"size": 1000000}', context())
    assert outcome.ok is True
    assert "only the first" in outcome.result["truncated"]
    assert len(outcome.result["text"]) < source.limits.response_max_bytes


async def test_an_answer_over_the_wire_cap_is_a_refusal_not_a_lost_answer(
    tmp_path: Path,
) -> None:
    peer = HttpPeer(tmp_path)
    source = make_source({"url": peer.url}, document_max_bytes=200_000)
    await source.start()
    registry = ToolRegistry()
    registry.add_provider(source)
    try:
        outcome = await run(registry, "peer__big_report", '{"size": 1000000}', context())
        assert outcome.ok is False
        assert "larger than 200000 bytes" in outcome.summary
        assert len([call for call in peer.calls() if call["tool"] == "big_report"]) == 1
        # The connection is fine afterwards.
        again = await run(registry, "peer__lookup_invoice", '{"number": "INV-1"}', context())
        assert again.ok is True
    finally:
        await source.close()
        peer.stop()


async def test_a_stdio_server_gets_the_users_token_in_meta(tmp_path: Path) -> None:
    state = tmp_path / "peer"
    command = [sys.executable, "-m", "tests.peers.mcp_server", "--state", str(state), "stdio"]
    source = make_source({"command": command})
    await source.start()
    registry = ToolRegistry()
    registry.add_provider(source)
    try:
        outcome = await run(registry, "peer__lookup_invoice", '{"number": "INV-2"}', context())
        assert outcome.ok is True
    finally:
        await source.close()
    (call,) = recorded_calls(state)
    claims = jwt.decode(
        call["meta_authorization"].removeprefix("Bearer "), SECRET, ["HS256"], audience="peer"
    )
    assert claims["sub"] == "alice"
    assert claims["tenant"] == "acme"


async def test_a_dotted_tool_is_offered_with_a_dash_and_called_by_its_own_name(
    over_http: tuple[McpSource, ToolRegistry, HttpPeer],
) -> None:
    source, registry, peer = over_http
    assert "peer__invoice-history" in source.tools
    outcome = await run(registry, "peer__invoice-history", '{"number": "INV-1"}', context())
    assert outcome.ok is True
    assert outcome.result == {"structured_content": {"result": "INV-1: issued, sent"}}
    assert [call["tool"] for call in peer.calls()] == ["invoice.history"]


async def test_a_summary_template_that_does_not_fit_stops_the_start(tmp_path: Path) -> None:
    peer = HttpPeer(tmp_path)
    source = make_source(
        {"url": peer.url, "tools": {"pay_invoice": {"summary": "Pay {invoice_id}"}}}
    )
    try:
        with pytest.raises(SourceLoadError) as failed:
            await source.start()
        assert "pay_invoice" in str(failed.value)
        assert "invoice_id" in str(failed.value)
    finally:
        await source.close()
        peer.stop()


async def test_passthrough_sends_the_users_own_token(tmp_path: Path) -> None:
    peer = HttpPeer(tmp_path)
    source = make_source({"url": peer.url, "auth": "passthrough", "secret": None})
    await source.start()
    registry = ToolRegistry()
    registry.add_provider(source)
    try:
        ctx = replace(context(), user_token="the-users-own-token")
        outcome = await run(registry, "peer__lookup_invoice", '{"number": "INV-1"}', ctx)
        assert outcome.ok is True
        # Without a token of the user's own, the call is refused before anything is sent.
        refused = await run(registry, "peer__lookup_invoice", '{"number": "INV-2"}', context())
        assert refused.ok is False
        assert "own token" in refused.summary
    finally:
        await source.close()
        peer.stop()
    (call,) = peer.calls()
    assert call["authorization"] == "Bearer the-users-own-token"


async def test_a_server_back_after_the_circuit_opened_is_offered_again_at_once(
    tmp_path: Path,
) -> None:
    peer = HttpPeer(tmp_path)
    source = make_source(
        {"url": peer.url}, breaker_failures=1, breaker_reset_s=600.0, retry_load_s=0.3
    )
    await source.start()
    registry = ToolRegistry()
    registry.add_provider(source)
    try:
        assert source.available
        peer.stop()
        outcome = await run(registry, "peer__lookup_invoice", '{"number": "INV-1"}', context())
        assert outcome.ok is False
        assert not source.available  # the circuit is open, for ten minutes by its own clock
        peer.start()
        deadline = asyncio.get_running_loop().time() + 30
        while not source.available:
            assert asyncio.get_running_loop().time() < deadline, "the source stayed hidden"
            await asyncio.sleep(0.1)
        again = await run(registry, "peer__lookup_invoice", '{"number": "INV-1"}', context())
        assert again.ok is True
    finally:
        await source.close()
        peer.stop()
