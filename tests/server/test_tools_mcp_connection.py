"""An MCP connection against the tests' own MCP server, a real process over stdio and HTTP:
listing, change notifications, per-call headers, failures, reconnection and shutdown."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from server.tools.sources.mcp_connection import CallFailed, McpConnection, McpLimits, McpUnavailable
from tests.server.mcp_peer import (
    HttpPeer,
    add_late_tool,
    alive,
    peer_pid,
    recorded_calls,
    stdio_command,
)

# Its peers (host apps, MCP servers) are real processes: the full run has it.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

LIMITS = McpLimits(list_timeout_s=10.0, retry_min_s=0.2, retry_max_s=0.5)
PEER_TOOLS = {"lookup_invoice", "pay_invoice", "tag_invoice", "slow_report", "big_report"}


async def eventually(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


@pytest.fixture
def http_peer(tmp_path: Path) -> AsyncIterator[HttpPeer]:
    peer = HttpPeer(tmp_path)
    yield peer
    peer.stop()


@pytest.fixture(params=["stdio", "http"])
async def connection(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[McpConnection, Path]]:
    """A started connection to the peer over each transport, and the peer's state folder."""
    state = tmp_path / "peer"
    peer: HttpPeer | None = None
    if request.param == "http":
        peer = HttpPeer(tmp_path, state=state)
        conn = McpConnection("peer", url=peer.url, limits=LIMITS)
    else:
        conn = McpConnection("peer", command=stdio_command(state), limits=LIMITS)
    await conn.start(wait_s=30)
    try:
        yield conn, state
    finally:
        await conn.close()
        if peer is not None:
            peer.stop()


async def test_lists_tools_with_their_hints(connection: tuple[McpConnection, Path]) -> None:
    conn, _ = connection
    assert conn.connected, conn.error
    assert conn.tools is not None
    tools = {tool.name: tool for tool in conn.tools}
    assert set(tools) >= PEER_TOOLS
    lookup = tools["lookup_invoice"].annotations
    assert lookup is not None
    assert lookup.read_only_hint is True
    pay = tools["pay_invoice"].annotations
    assert pay is not None
    assert pay.destructive_hint is True
    assert not pay.read_only_hint


async def test_a_call_returns_structured_and_text_content(
    connection: tuple[McpConnection, Path],
) -> None:
    conn, _ = connection
    result = await conn.call("lookup_invoice", {"number": "INV-1"}, timeout_s=10)
    assert not result.is_error
    assert result.structured_content == {
        "number": "INV-1",
        "customer": "Acme",
        "status": "open",
        "amount_due": "120.00",
    }
    assert [block.text for block in result.content] == ["Invoice INV-1 for Acme is open."]  # type: ignore[union-attr]


async def test_an_error_result_carries_the_servers_message(
    connection: tuple[McpConnection, Path],
) -> None:
    conn, _ = connection
    result = await conn.call("fail_invoice", {"number": "INV-2"}, timeout_s=10)
    assert result.is_error
    assert "locked by the accounting period close" in result.content[0].text  # type: ignore[union-attr]


async def test_meta_reaches_the_server(connection: tuple[McpConnection, Path]) -> None:
    conn, state = connection
    meta = {"parley/idempotency_key": "confirmation-token-1"}
    await conn.call("pay_invoice", {"number": "INV-1", "amount": "5"}, timeout_s=10, meta=meta)
    (call,) = [call for call in recorded_calls(state) if call["tool"] == "pay_invoice"]
    assert call["idempotency_key"] == "confirmation-token-1"
    assert call["executed"] is True


async def test_tools_list_changed_reaches_the_listing(
    connection: tuple[McpConnection, Path],
) -> None:
    conn, state = connection
    assert "late_lookup" not in {tool.name for tool in conn.tools or ()}
    add_late_tool(state)
    await eventually(lambda: "late_lookup" in {tool.name for tool in conn.tools or ()})


async def test_a_slow_call_times_out_with_an_unknown_outcome(
    connection: tuple[McpConnection, Path],
) -> None:
    conn, _ = connection
    with pytest.raises(CallFailed) as failed:
        await conn.call("slow_report", {"seconds": 5}, timeout_s=0.5)
    assert failed.value.timed_out
    assert failed.value.delivered is None
    # The connection is still usable afterwards.
    result = await conn.call("lookup_invoice", {"number": "INV-2"}, timeout_s=10)
    assert not result.is_error


async def test_concurrent_calls_each_carry_their_own_headers(http_peer: HttpPeer) -> None:
    conn = McpConnection("peer", url=http_peer.url, headers={"X-Api-Key": "static"}, limits=LIMITS)
    await conn.start(wait_s=30)
    try:

        async def pay(n: int) -> None:
            await conn.call(
                "pay_invoice",
                {"number": "INV-1", "amount": str(n)},
                timeout_s=10,
                headers={"Authorization": f"Bearer user-{n}", "Idempotency-Key": f"key-{n}"},
                meta={"parley/idempotency_key": f"key-{n}"},
            )

        await asyncio.gather(*(pay(n) for n in range(12)))
        await conn.call("lookup_invoice", {"number": "INV-1"}, timeout_s=10)
    finally:
        await conn.close()
    calls = http_peer.calls()
    pays = [call for call in calls if call["tool"] == "pay_invoice"]
    assert len(pays) == 12
    for call in pays:
        n = call["arguments"]["amount"]
        assert call["authorization"] == f"Bearer user-{n}"
        assert call["idempotency_header"] == call["idempotency_key"] == f"key-{n}"
    # A call without headers of its own carries none of another call's.
    (lookup,) = [call for call in calls if call["tool"] == "lookup_invoice"]
    assert lookup["authorization"] is None
    assert lookup["idempotency_header"] is None


async def test_a_server_down_at_start_is_connected_when_it_comes_up(tmp_path: Path) -> None:
    port_holder = HttpPeer(tmp_path)
    port = port_holder.port
    port_holder.stop()
    conn = McpConnection("peer", url=f"http://127.0.0.1:{port}/mcp", limits=LIMITS)
    await conn.start(wait_s=5)
    peer: HttpPeer | None = None
    try:
        assert not conn.connected
        assert conn.error
        assert "could not connect" in conn.error
        with pytest.raises(McpUnavailable):
            await conn.call("lookup_invoice", {"number": "INV-1"}, timeout_s=5)
        peer = HttpPeer(tmp_path, port=port)
        await eventually(lambda: conn.connected)
        result = await conn.call("lookup_invoice", {"number": "INV-1"}, timeout_s=10)
        assert not result.is_error
    finally:
        await conn.close()
        if peer is not None:
            peer.stop()


async def test_a_call_to_a_server_gone_away_was_not_delivered_and_it_reconnects(
    tmp_path: Path,
) -> None:
    peer = HttpPeer(tmp_path)
    conn = McpConnection("peer", url=peer.url, limits=LIMITS)
    await conn.start(wait_s=30)
    try:
        assert conn.connected
        peer.stop()
        with pytest.raises((CallFailed, McpUnavailable)) as failed:
            await conn.call("pay_invoice", {"number": "INV-1", "amount": "1"}, timeout_s=5)
        if isinstance(failed.value, CallFailed):
            assert failed.value.delivered is False
        await eventually(lambda: not conn.connected)
        peer.start()
        await eventually(lambda: conn.connected)
        result = await conn.call("lookup_invoice", {"number": "INV-1"}, timeout_s=10)
        assert not result.is_error
    finally:
        await conn.close()
        peer.stop()


async def test_closing_stops_a_stdio_server(tmp_path: Path) -> None:
    state = tmp_path / "peer"
    conn = McpConnection("peer", command=stdio_command(state), limits=LIMITS)
    await conn.start(wait_s=30)
    assert conn.connected, conn.error
    pid = peer_pid(state)
    assert alive(pid)
    await conn.close()
    await eventually(lambda: not alive(pid), timeout=10)


async def test_a_command_that_cannot_start_is_reported(tmp_path: Path) -> None:
    conn = McpConnection("peer", command=[str(tmp_path / "no-such-server")], limits=LIMITS)
    await conn.start(wait_s=10)
    try:
        assert not conn.connected
        assert conn.error
        assert "no-such-server" in conn.error
    finally:
        await conn.close()


@pytest.mark.parametrize("transport", ["stdio", "http"])
async def test_a_handshake_era_server_is_followed_through_its_notifications(
    transport: str, tmp_path: Path
) -> None:
    """Servers of the initialize handshake (most MCP servers today) announce changes as
    tools/list_changed notifications rather than on a subscriptions/listen stream."""
    state = tmp_path / "peer"
    peer = HttpPeer(tmp_path, state=state) if transport == "http" else None
    target: dict[str, Any] = {"url": peer.url} if peer else {"command": stdio_command(state)}
    conn = McpConnection("peer", limits=LIMITS, mode="legacy", **target)
    await conn.start(wait_s=30)
    try:
        assert conn.connected, conn.error
        assert conn._client is not None
        assert conn._client.protocol_version == "2025-11-25"
        headers = {"Authorization": "Bearer legacy-user", "Idempotency-Key": "legacy-key"}
        meta = {"parley/idempotency_key": "legacy-key"}
        arguments = {"number": "INV-1", "amount": "2"}
        await conn.call("pay_invoice", arguments, timeout_s=10, headers=headers, meta=meta)
        (call,) = [call for call in recorded_calls(state) if call["tool"] == "pay_invoice"]
        assert call["idempotency_key"] == "legacy-key"
        if peer is not None:
            assert call["authorization"] == "Bearer legacy-user"
            assert call["idempotency_header"] == "legacy-key"
        add_late_tool(state)
        await eventually(lambda: "late_lookup" in {tool.name for tool in conn.tools or ()})
    finally:
        await conn.close()
        if peer is not None:
            peer.stop()


async def test_a_long_tool_list_is_cut_to_its_bounds(http_peer: HttpPeer) -> None:
    by_count = McpConnection("peer", url=http_peer.url, limits=replace(LIMITS, max_tools=3))
    by_bytes = McpConnection("peer", url=http_peer.url, limits=replace(LIMITS, max_list_bytes=700))
    try:
        await by_count.start(wait_s=30)
        await by_bytes.start(wait_s=30)
        assert by_count.tools is not None
        assert [tool.name for tool in by_count.tools] == [
            "lookup_invoice",
            "pay_invoice",
            "tag_invoice",
        ]
        assert by_bytes.tools is not None
        assert 0 < len(by_bytes.tools) < 3
        assert by_bytes.connected
    finally:
        await by_count.close()
        await by_bytes.close()
