"""The demo as ``scripts/serve`` gives it: ``parley serve`` in dev mode starts the demo ERP app
(``python -m examples.erp``) and reaches it only as the tool source ``erp``.

Everything here is a real process: Parley, the app it starts, and the scripted dev model in
Parley. What the page and the assistant show is read back from the app itself, through the
same demo endpoint the page reads after a reload.
"""

from __future__ import annotations

import asyncio
import csv
import io
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from server.ops import demo_erp
from server.tools.sources.config import load_sources_file
from tests.server.conftest import Backend
from tests.server.harness import ParleyServer, ServerConfig, Tab, base_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ParleyServer]:
    tmp = tmp_path_factory.mktemp("demo-erp")
    config = ServerConfig(
        database_url=f"sqlite+aiosqlite:///{tmp / 'parley.db'}",
        extra={
            "PARLEY_DEMO_ERP": "host",
            "PARLEY_DEV_SIGNING_KEY_FILE": str(tmp / "dev-signing-key.pem"),
        },
    )
    server = ParleyServer(tmp, config, process=True)
    try:
        yield server
    finally:
        server.stop()


def erp_url(server: ParleyServer) -> str:
    """The demo ERP app's URL, as the demo page learns it: from where ``/`` sends it."""
    page = httpx.get(f"{server.url}/", follow_redirects=False, timeout=10)
    assert page.status_code == 307, page.text
    location = urlsplit(page.headers["location"])
    assert location.path == "/"
    (url,) = parse_qs(location.query)["erp"]
    return url


def books(server: ParleyServer, tenant: str = "acme") -> dict[str, Any]:
    """The company's live books, read as the demo page reads them."""
    answer = httpx.get(
        f"{erp_url(server)}/api/demo/purchase-orders", params={"tenant": tenant}, timeout=10
    )
    answer.raise_for_status()
    data: dict[str, Any] = answer.json()
    return data


def status_of(server: ParleyServer, number: str) -> str:
    orders = {order["number"]: order for order in books(server)["purchase_orders"]}
    return str(orders[number]["status"])


def of_type(frames: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [frame for frame in frames if frame["type"] == kind]


async def ask_for_approval(tab: Tab, text: str, client_msg_id: str) -> dict[str, Any]:
    """Send a message that asks for an action; the confirmation card it brings, once the turn
    that asked has ended with the card open (a decision then starts a continuation turn)."""
    await tab.send({"type": "user_message", "client_msg_id": client_msg_id, "text": text})
    frames = await tab.until("confirm_request")
    assert (await tab.until("turn_end"))[-1]["awaiting"] == [frames[-1]["token"]]
    return frames[-1]


async def test_the_assistant_offers_and_calls_the_apps_tools(demo: ParleyServer) -> None:
    tab = await demo.tab()
    try:
        frames = await tab.ask("what's our cash balance?", "m-cash")
    finally:
        await tab.close()
    (call,) = of_type(frames, "tool_call")
    assert (call["name"], call.get("source")) == ("erp__cash_balance", "erp")
    (result,) = of_type(frames, "tool_result")
    assert result["ok"] is True
    cash = books(demo)["cash"]
    # The app named the tool line (parley_summary), as the pack does in process.
    assert result["summary"].endswith(f"total USD {Decimal(cash):,.2f}"), result["summary"]
    assert "bank account" in result["summary"]
    (response,) = of_type(frames, "response")
    # The same figure the app's books give the demo page.
    assert f"You have **${Decimal(cash):,.2f}** in cash" in response["text"]
    assert frames[-1]["status"] == "completed"


async def test_an_approved_po_is_approved_in_the_apps_books_after_a_reload(
    demo: ParleyServer,
) -> None:
    assert status_of(demo, "PO-1001") == "awaiting_approval"
    tab = await demo.tab()
    try:
        card = await ask_for_approval(tab, "approve PO-1001", "m-approve")
        assert (card["action"], card.get("source")) == ("erp__approve_purchase_order", "erp")
        # The app's preview gave the card its line, with what only the books know.
        assert card["summary"].startswith("Approve purchase order PO-1001 from Acme Supplies")
        # Nothing changes in the app before the user decides.
        assert status_of(demo, "PO-1001") == "awaiting_approval"
        await tab.send({"type": "confirm", "token": card["token"], "decision": "approve"})
        done = await tab.until("turn_end")
    finally:
        await tab.close()
    (executed,) = of_type(done, "action_executed")
    assert executed["ok"] is True
    assert executed["result"]["status"] == "approved"
    assert status_of(demo, "PO-1001") == "approved"

    # A reload: a new socket, and the page reading the books again.
    reloaded = await demo.tab()
    try:
        ready = reloaded.frames[0]
        assert ready["type"] == "ready"
        assert ready["pending_confirmations"] == []
        listed = await reloaded.ask("show approved purchase orders", "m-listed")
    finally:
        await reloaded.close()
    assert status_of(demo, "PO-1001") == "approved"
    (answer,) = of_type(listed, "response")
    assert "PO-1001" in answer["text"]


async def test_an_action_the_books_refuse_gets_no_card(demo: ParleyServer) -> None:
    tab = await demo.tab()
    try:
        frames = await tab.ask("approve PO-1006", "m-approved-already")
    finally:
        await tab.close()
    assert of_type(frames, "confirm_request") == []
    (result,) = of_type(frames, "tool_result")
    assert result["ok"] is False
    assert "not awaiting approval" in result["summary"]
    assert frames[-1]["status"] == "completed"
    assert status_of(demo, "PO-1006") == "approved"


@pytest.mark.parametrize(
    ("prompt", "tool"),
    [
        ("show overdue purchase orders", "erp__list_purchase_orders"),
        ("reject PO-1003", "erp__reject_purchase_order"),
        ("create a sales order for Acme: 100 units of Widget at 50", "erp__create_sales_order"),
    ],
)
async def test_every_readme_prompt_reaches_the_app(
    demo: ParleyServer, prompt: str, tool: str
) -> None:
    tab = await demo.tab()
    try:
        await tab.send({"type": "user_message", "client_msg_id": f"m-{tool}", "text": prompt})
        frames = await tab.until(lambda f: f["type"] in ("confirm_request", "turn_end"))
        names = [frame.get("name") or frame.get("action") for frame in frames]
        assert tool in names, frames
        if frames[-1]["type"] == "confirm_request":
            await tab.until("turn_end")
            await tab.send({"type": "confirm", "token": frames[-1]["token"], "decision": "approve"})
            frames = await tab.until("turn_end")
            (executed,) = of_type(frames, "action_executed")
            assert executed["ok"] is True, executed
    finally:
        await tab.close()
    assert frames[-1]["status"] == "completed"


async def test_the_apps_answers_carry_their_views_and_csv(demo: ParleyServer) -> None:
    # The app adds parley_view / parley_export to its JSON; Parley shows and exports them.
    tab = await demo.tab()
    try:
        frames = await tab.ask("show AR aging", "m-aging")
        card = await ask_for_approval(
            tab, "create a sales order for Acme: 2 units of Widget at 50", "m-card"
        )
        await tab.send({"type": "confirm", "token": card["token"], "decision": "reject"})
        await tab.until("turn_end")
    finally:
        await tab.close()
    (result,) = of_type(frames, "tool_result")
    assert result["name"] == "erp__ar_aging"
    view = result["view"]
    assert (view["kind"], view["chart"], view["x"]) == ("chart", "bar", "bucket")
    async with httpx.AsyncClient(base_url=demo.url, timeout=30) as client:
        reply = await client.get(
            result["export"], headers={"Authorization": f"Bearer {demo.token()}"}
        )
        other = await client.get(
            result["export"], headers={"Authorization": f"Bearer {demo.token('bob-host')}"}
        )
    assert reply.status_code == 200, reply.text
    assert other.status_code == 404
    header, *documents = list(csv.reader(io.StringIO(reply.text)))
    assert header == ["Invoice", "Customer", "Due", "Days past due", "Bucket", "Open amount"]
    # Every open invoice: together they are what the chart's buckets add up to.
    assert documents
    assert sum(Decimal(row[5]) for row in documents) == sum(
        Decimal(row["amount"]) for row in view["rows"]
    )
    (response,) = of_type(frames, "response")
    assert f"on {len(documents)} open invoices" in response["text"]
    # The app's OpenAPI document carries x-parley-type, so the card shows the lines as a table.
    lines = next(field for field in card["fields"] if field["key"] == "lines")
    assert lines["type"] == "list"
    assert lines["columns"][2] == {
        "key": "unit_price",
        "label": "Unit price",
        "type": "money",
        "currency": "USD",
    }


def test_parleys_database_holds_no_books(demo: ParleyServer) -> None:
    # The books live in the app's own database; Parley keeps only its transcripts and audit.
    parley_db = demo.tmp / "parley.db"
    with sqlite3.connect(parley_db) as connection:
        tables = {row[0] for row in connection.execute("select name from sqlite_master")}
    assert "purchaseorder" not in {table.lower() for table in tables}
    assert (demo.tmp / "erp-demo.db").exists()


def test_the_pack_setting_keeps_the_demo_in_process(tmp_path: Path) -> None:
    config = ServerConfig(database_url=f"sqlite+aiosqlite:///{tmp_path / 'parley.db'}")
    server = ParleyServer(tmp_path, config, process=True)  # the harness's PARLEY_DEMO_ERP=pack
    try:
        page = httpx.get(f"{server.url}/", follow_redirects=False, timeout=10)
        assert page.status_code == 200
    finally:
        server.stop()
    assert not (tmp_path / "erp-demo.db").exists()


def test_a_demo_app_that_cannot_start_stops_parley_with_a_way_out(tmp_path: Path) -> None:
    env = base_env()
    env.update(
        {
            "PARLEY_DEV": "1",
            "PORT": "0",
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'parley.db'}",
            "PARLEY_DEV_SECRET_FILE": str(tmp_path / "dev-secret"),
            # The app refuses a database URL it cannot use, and exits.
            "PARLEY_DEMO_ERP_DATABASE_URL": "nosuchdriver://nowhere",
        }
    )
    done = subprocess.run(
        [sys.executable, "-m", "server.cli", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "the demo ERP app exited while starting" in done.stderr
    assert "PARLEY_DEMO_ERP=pack" in done.stderr


def demo_apps_of(server_pid: int) -> set[int]:
    """The demo ERP app processes whose parent is ``server_pid``."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue  # exited while we looked
        if parent == server_pid and b"examples.erp" in command:
            found.add(int(entry.name))
    return found


def any_running(pids: set[int]) -> bool:
    return any(Path(f"/proc/{pid}").exists() for pid in pids)


async def until_gone(pids: set[int]) -> None:
    deadline = time.monotonic() + 30
    while any_running(pids):
        assert time.monotonic() < deadline, f"demo ERP app {pids} outlived the server"
        await asyncio.sleep(0.2)


async def test_several_workers_share_one_demo_app_which_dies_with_the_server(
    real_backend: Backend, tmp_path: Path
) -> None:
    config = real_backend.config(
        PARLEY_DEMO_ERP="host",
        PARLEY_DEMO_ERP_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'erp.db'}",
        PARLEY_DEV_SIGNING_KEY_FILE=str(tmp_path / "dev-signing-key.pem"),
    )
    config.tools = None  # the default: the demo ERP pack, which the app replaces
    config.serve_args = ["--workers", "2"]
    server = ParleyServer(tmp_path, config, process=True)
    try:
        apps = demo_apps_of(server.pid)
        assert len(apps) == 1, apps
        # Each worker reaches the one app: a few tabs land on both.
        for number in range(4):
            tab = await server.tab()
            try:
                frames = await tab.ask("what's our cash balance?", f"m-{number}")
            finally:
                await tab.close()
            assert [f["name"] for f in of_type(frames, "tool_result") if f["ok"]] == [
                "erp__cash_balance"
            ]
        # Killed outright, the server cannot stop the app itself: the app goes anyway.
        server.kill()
        await until_gone(apps)
    finally:
        server.stop()


def test_the_demo_source_follows_the_operators_own(tmp_path: Path) -> None:
    own = tmp_path / "sources.toml"
    own.write_text('[[source]]\nname = "crm"\nkind = "openapi"\nurl = "http://crm/openapi.json"\n')
    combined = tmp_path / "combined.toml"
    combined.write_text(demo_erp._sources_file("http://127.0.0.1:9", str(own)))
    sources = load_sources_file(str(combined), {demo_erp.SECRET_ENV: "s" * 43})
    assert [(source.name, source.url) for source in sources] == [
        ("crm", "http://crm/openapi.json"),
        ("erp", "http://127.0.0.1:9/openapi.json"),
    ]
    assert sources[1].secret == "s" * 43
    with pytest.raises(demo_erp.DemoErpError, match="PARLEY_TOOL_SOURCES: cannot read"):
        demo_erp._sources_file("http://127.0.0.1:9", str(tmp_path / "missing.toml"))


async def policies_loaded(server: ParleyServer, timeout_s: float = 60.0) -> None:
    """Wait until the demo's policies are searchable: they load while the server starts."""
    headers = {"Authorization": f"Bearer {server.token()}"}
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(base_url=f"{server.url}/api/v1", headers=headers) as client:
        while True:
            listed = await client.get("/knowledge/policies/documents", timeout=10)
            if listed.status_code == 200 and len(listed.json()["items"]) == 2:
                return
            assert time.monotonic() < deadline, listed.text
            await asyncio.sleep(0.2)


async def test_the_approval_limit_is_answered_from_the_policies_with_a_citation(
    demo: ParleyServer,
) -> None:
    await policies_loaded(demo)
    tab = await demo.tab()
    try:
        frames = await tab.ask("what is our approval limit for purchase orders?", "m-limit")
    finally:
        await tab.close()
    (call,) = of_type(frames, "tool_call")
    assert call["name"] == "search_knowledge"
    (response,) = of_type(frames, "response")
    assert response["text"].startswith(
        "From the documents: Our approval limit for purchase orders is 25,000 USD."
    )
    assert "[1]" in response["text"]
    first = response["citations"][0]
    assert first["n"] == 1
    assert first["document_id"] == "approval-limits.md"
    assert first["title"] == "Approval limits"
    assert "25,000 USD" in first["snippet"]
