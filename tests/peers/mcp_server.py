"""An MCP server of the tests' own, made with the ``mcp`` SDK, run as a real process.

    python -m tests.peers.mcp_server --state DIR stdio
    python -m tests.peers.mcp_server --state DIR http --port N      (endpoint /mcp)

It plays a host app's MCP server for a few invoices:

- ``lookup_invoice`` (``readOnlyHint: true``): a query answering with structured content *and* a
  different text block, so a test can see that both reach the model;
- ``pay_invoice`` (destructive) and ``tag_invoice`` (``destructiveHint: false``): actions that
  keep one receipt per idempotency key, the way a careful host does;
- ``fail_invoice``: always answers ``isError`` with a message of its own;
- ``slow_report``, ``pay_slowly`` and ``big_report``: a host that is slow (after doing the
  work, for the action), or answers far too much; ``pay_forgetfully``: a slow host that keeps
  no record of keys and refuses a repeat.

Every call is appended to ``DIR/calls.jsonl`` as one JSON object: the tool, its arguments,
``params._meta["parley/idempotency_key"]``, and over HTTP the ``Authorization`` and
``Idempotency-Key`` headers, and ``executed`` (false when an action's key was seen before). The
process writes its pid to ``DIR/pid`` (over stdio its parent is Parley, so that is how a test
finds it); ``SIGUSR1`` adds the tool ``late_lookup`` and announces the change both ways the SDK
knows: on its ``subscriptions/listen`` bus (2026-07-28 clients) and as
``notifications/tools/list_changed`` on every handshake-era session it has seen.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import anyio
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.subscriptions import ToolsListChanged
from mcp_types import CallToolResult, TextContent, ToolAnnotations

IDEMPOTENCY_META_KEY = "parley/idempotency_key"
INVOICES: dict[str, dict[str, Any]] = {
    "INV-1": {"number": "INV-1", "customer": "Acme", "status": "open", "amount_due": "120.00"},
    "INV-2": {"number": "INV-2", "customer": "Globex", "status": "paid", "amount_due": "0.00"},
}


class Peer:
    """The server, its record of calls, and the sessions it can notify."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.calls = state / "calls.jsonl"
        self.receipts: dict[str, dict[str, Any]] = {}
        # Handshake-era sessions, by connection: where a tools/list_changed notification goes.
        self.sessions: dict[int, Any] = {}
        self.server: MCPServer = MCPServer("parley-test-peer", middleware=[self._remember])
        self._register()

    async def _remember(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        connection = getattr(ctx.session, "_connection", None)
        if connection is not None and len(self.sessions) < 1000:
            self.sessions[id(connection)] = ctx.session
        return await call_next(ctx)

    def record(
        self, ctx: Context, tool: str, arguments: dict[str, Any], **extra: Any
    ) -> dict[str, Any]:
        request_context = ctx.request_context
        meta = dict(request_context.meta or {})
        request = request_context.request
        headers = dict(request.headers) if request is not None else {}
        entry = {
            "tool": tool,
            "arguments": arguments,
            "idempotency_key": meta.get(IDEMPOTENCY_META_KEY),
            "meta_authorization": meta.get("parley/authorization"),
            "authorization": headers.get("authorization"),
            "idempotency_header": headers.get("idempotency-key"),
            **extra,
        }
        with self.calls.open("a") as out:
            out.write(json.dumps(entry) + "\n")
        return entry

    def recorded(self) -> list[dict[str, Any]]:
        if not self.calls.exists():
            return []
        return [json.loads(line) for line in self.calls.read_text().splitlines() if line]

    def _register(self) -> None:
        server = self.server

        @server.tool(annotations=ToolAnnotations(read_only_hint=True, title="Look up an invoice"))
        def lookup_invoice(number: str, ctx: Context) -> CallToolResult:
            """Look up an invoice by its number (INV-1, INV-2)."""
            self.record(ctx, "lookup_invoice", {"number": number})
            invoice = INVOICES.get(number)
            if invoice is None:
                raise ToolError(f"no invoice {number}")
            text = f"Invoice {number} for {invoice['customer']} is {invoice['status']}."
            return CallToolResult(
                content=[TextContent(type="text", text=text)], structured_content=invoice
            )

        @server.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True))
        def pay_invoice(number: str, amount: str, ctx: Context) -> str:
            """Record a payment against an invoice."""
            return self._act(ctx, "pay_invoice", {"number": number, "amount": amount})

        @server.tool(annotations=ToolAnnotations(destructive_hint=False))
        def tag_invoice(number: str, tag: str, ctx: Context) -> str:
            """Add a tag to an invoice."""
            return self._act(ctx, "tag_invoice", {"number": number, "tag": tag})

        @server.tool(annotations=ToolAnnotations(destructive_hint=True))
        async def pay_slowly(number: str, seconds: float, ctx: Context) -> str:
            """Records a payment at once, then takes ``seconds`` to answer."""
            text = self._act(ctx, "pay_slowly", {"number": number, "seconds": seconds})
            await anyio.sleep(seconds)
            return text

        @server.tool(annotations=ToolAnnotations(destructive_hint=True))
        async def pay_forgetfully(number: str, seconds: float, ctx: Context) -> str:
            """Like a host that keeps no record of keys: the first payment of an invoice takes
            ``seconds`` to answer, any later one is refused."""
            paid = any(call["tool"] == "pay_forgetfully" for call in self.recorded())
            self.record(ctx, "pay_forgetfully", {"number": number}, executed=not paid)
            if paid:
                raise ToolError(f"invoice {number} is already paid")
            await anyio.sleep(seconds)
            return f"paid {number}"

        @server.tool(annotations=ToolAnnotations(read_only_hint=True))
        async def slow_report(seconds: float, ctx: Context) -> str:
            """Answers after ``seconds``, like an overloaded host."""
            self.record(ctx, "slow_report", {"seconds": seconds})
            await anyio.sleep(seconds)
            return f"slept {seconds}s"

        @server.tool(annotations=ToolAnnotations(read_only_hint=True))
        def big_report(size: int, ctx: Context) -> str:
            """Answers with ``size`` characters of text."""
            self.record(ctx, "big_report", {"size": size})
            return "x" * size

        @server.tool(name="invoice.history", annotations=ToolAnnotations(read_only_hint=True))
        def invoice_history(number: str, ctx: Context) -> str:
            """The events of an invoice (a dotted name, as MCP allows)."""
            self.record(ctx, "invoice.history", {"number": number})
            return f"{number}: issued, sent"

        @server.tool(annotations=ToolAnnotations(read_only_hint=True))
        def fail_invoice(number: str, ctx: Context) -> str:
            """Always fails, the way a host refuses a request."""
            self.record(ctx, "fail_invoice", {"number": number})
            raise ToolError(f"invoice {number} is locked by the accounting period close")

    def _act(self, ctx: Context, tool: str, arguments: dict[str, Any]) -> str:
        key = (ctx.request_context.meta or {}).get(IDEMPOTENCY_META_KEY)
        seen = key is not None and key in self.receipts
        self.record(ctx, tool, arguments, executed=not seen)
        if seen:
            return str(self.receipts[key]["text"])
        text = f"{tool} done for {arguments['number']}"
        if key is not None:
            self.receipts[key] = {"text": text}
        return text

    def add_late_tool(self) -> None:
        if self.server._tool_manager.get_tool("late_lookup") is not None:
            return

        def late_lookup(number: str) -> str:
            """Look up an invoice's late fees."""
            return f"Invoice {number} has no late fees."

        self.server.add_tool(
            late_lookup, annotations=ToolAnnotations(read_only_hint=True), structured_output=False
        )

    async def announce_tools_changed(self) -> None:
        await self.server._subscriptions.publish(ToolsListChanged())
        for session in list(self.sessions.values()):
            try:
                await session.send_tool_list_changed()
            except Exception as exc:  # a closed session: the others still hear of it
                print(f"could not notify a session: {exc!r}", file=sys.stderr)

    async def on_signals(self) -> None:
        with anyio.open_signal_receiver(signal.SIGUSR1) as signals:
            async for _ in signals:
                self.add_late_tool()
                await self.announce_tools_changed()


async def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state", type=Path, required=True, help="folder for calls.jsonl and pid")
    sub = parser.add_subparsers(dest="transport", required=True)
    sub.add_parser("stdio")
    http = sub.add_parser("http")
    http.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)

    args.state.mkdir(parents=True, exist_ok=True)
    (args.state / "pid").write_text(str(os.getpid()))
    peer = Peer(args.state)
    async with anyio.create_task_group() as group:
        group.start_soon(peer.on_signals)
        if args.transport == "stdio":
            await peer.server.run_stdio_async()
        else:
            await peer.server.run_streamable_http_async(host="127.0.0.1", port=args.port)
        group.cancel_scope.cancel()


if __name__ == "__main__":
    anyio.run(main, sys.argv[1:])
