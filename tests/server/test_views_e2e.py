"""Views on tool results over a real socket, with the demo ERP pack and the scripted model:
what the tab is shown (a chart, a table cut to the view limit, metric cards), the CSV behind
it over real HTTP, readable confirmation fields, and who may download what."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import date
from typing import Any

import httpx
import pytest

from examples.erp.analytics import period_bounds
from tests.server.conftest import BOTH_BACKENDS, _backend
from tests.server.db import rows
from tests.server.harness import DevModel, ParleyServer, frames_of, make_token

pytestmark = pytest.mark.timeout(300)

VIEW_MAX_ROWS = 4  # fewer than the demo's purchase orders and aging buckets
DECIMAL = re.compile(r"^-?\d+\.\d{2}$")


@pytest.fixture(scope="module", params=BOTH_BACKENDS)
def shared_erp(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, dev_model: DevModel
) -> Iterator[ParleyServer]:
    """One server per backend with the demo ERP pack, views cut at four rows. The tests only
    read its books (the sales order stays a card), so they share them, each as its own user."""
    backend = _backend(request.param, tmp_path_factory.mktemp("erp"), request)
    config = backend.config(dev_model)
    config.tools = None
    config.extra["PARLEY_VIEW_MAX_ROWS"] = str(VIEW_MAX_ROWS)
    parley = ParleyServer(tmp_path_factory.mktemp("erp"), config)
    yield parley
    parley.stop()


@pytest.fixture
def erp(shared_erp: ParleyServer, model: DevModel) -> ParleyServer:
    return shared_erp.for_new_user()


def token(server: ParleyServer, user: str | None = None, tenant: str = "acme") -> str:
    return make_token(user or server.user, tenant, ("admin",))


async def ask(server: ParleyServer, text: str, msg_id: str) -> list[dict[str, Any]]:
    tab = await server.tab(token(server))
    try:
        return await tab.ask(text, msg_id)
    finally:
        await tab.close()


async def download(server: ParleyServer, path: str, bearer: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        return await client.get(path, headers=headers)


def read_csv(response: httpx.Response) -> list[list[str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"].startswith("attachment; filename=")
    return list(csv.reader(io.StringIO(response.text)))


async def test_ar_aging_shows_a_chart_and_exports_every_open_document(erp: ParleyServer) -> None:
    frames = await ask(erp, "show AR aging", "v-aging")
    (result,) = frames_of(frames, "tool_result")
    view = result["view"]
    assert (view["kind"], view["chart"], view["x"]) == ("chart", "bar", "bucket")
    assert view["series"] == [
        {"key": "amount", "label": "Open amount", "type": "money", "currency": "USD"}
    ]
    # Five buckets, cut to the view limit: the tab says "showing 4 of 5".
    assert [row["bucket"] for row in view["rows"]] == [
        "Not yet due",
        "1-30 days",
        "31-60 days",
        "61-90 days",
    ]
    assert view["total_rows"] == 5
    assert result["export"] == f"/api/v1/exports/{result['call_id']}.csv"
    response = frames_of(frames, "response")[0]["text"]
    assert response.startswith("Customers owe you **$")
    assert "| Invoice | Customer | Due | Days past due | Open |" in response

    table = read_csv(await download(erp, result["export"], token(erp)))
    assert table[0] == ["Invoice", "Customer", "Due", "Days past due", "Bucket", "Open amount"]
    open_invoices = await rows(
        erp.config.database_url,
        "SELECT number, total - amount_paid FROM erp_invoice "
        "WHERE tenant = 'acme' AND status IN ('open', 'partially_paid')",
    )
    assert open_invoices
    # Every open document, not only the ones in the answer; amounts unformatted, exact.
    assert sorted(row[0] for row in table[1:]) == sorted(number for number, _ in open_invoices)
    by_number = {row[0]: row for row in table[1:]}
    for number, amount in open_invoices:
        assert DECIMAL.match(by_number[number][5]), by_number[number]
        assert by_number[number][5] == f"{amount:.2f}"
        assert re.match(r"^\d{4}-\d{2}-\d{2}$", by_number[number][2])

    # Only its owner gets it: another user of the tenant, the same name in another tenant,
    # and nobody at all are refused, the first two as if it did not exist.
    for other in (token(erp, user=f"{erp.user}-bob"), token(erp, tenant="globex")):
        refused = await download(erp, result["export"], other)
        assert refused.status_code == 404
        assert refused.json()["error"]["code"] == "export_not_found"
    assert (await download(erp, result["export"], None)).status_code == 401


async def test_a_list_is_a_table_cut_to_the_limit_with_every_row_in_its_csv(
    erp: ParleyServer,
) -> None:
    frames = await ask(erp, "show purchase orders", "v-orders")
    (result,) = frames_of(frames, "tool_result")
    view = result["view"]
    assert view["kind"] == "table"
    assert [column["key"] for column in view["columns"]] == [
        "number",
        "supplier",
        "status",
        "order_date",
        "expected_date",
        "total",
    ]
    assert view["columns"][5] == {
        "key": "total",
        "label": "Total",
        "type": "money",
        "currency": "USD",
    }
    (count,) = (
        await rows(
            erp.config.database_url,
            "SELECT count(*) FROM erp_purchase_order WHERE tenant = 'acme'",
        )
    )[0]
    assert count > VIEW_MAX_ROWS
    assert len(view["rows"]) == VIEW_MAX_ROWS
    assert view["total_rows"] == count
    table = read_csv(await download(erp, result["export"], token(erp)))
    assert len(table) == 1 + count
    assert table[0] == ["Order", "Supplier", "Status", "Ordered", "Expected", "Total"]


async def test_orders_by_status_this_quarter_is_a_chart_a_table_and_a_csv(
    erp: ParleyServer,
) -> None:
    frames = await ask(erp, "purchase orders by status this quarter", "v-status")
    (call,) = frames_of(frames, "tool_call")
    assert (call["name"], call["arguments"]) == ("purchase_orders_by_status", {"period": "quarter"})
    (result,) = frames_of(frames, "tool_result")
    view = result["view"]
    assert (view["kind"], view["chart"], view["x"]) == ("chart", "bar", "status")
    answer = frames_of(frames, "response")[0]["text"]
    assert answer.startswith("This quarter (")
    assert "| Status | Orders | Total |" in answer
    table = read_csv(await download(erp, result["export"], token(erp)))
    assert table[0] == ["Order", "Supplier", "Status", "Ordered", "Expected", "Total"]
    first, last = period_bounds(date.today(), "quarter")
    placed = await rows(
        erp.config.database_url,
        "SELECT number FROM erp_purchase_order WHERE tenant = 'acme' "
        "AND order_date >= :first AND order_date <= :last",
        first=first,
        last=last,
    )
    # The chart counts statuses; the CSV has the orders themselves, each with its exact total.
    assert sorted(row[0] for row in table[1:]) == sorted(number for (number,) in placed)
    for row in table[1:]:
        assert DECIMAL.match(row[5])


async def test_a_german_company_hears_its_money_in_german(erp: ParleyServer) -> None:
    tab = await erp.tab(token(erp, tenant="globex"))
    try:
        frames = await tab.ask("what's our cash balance?", "v-globex")
    finally:
        await tab.close()
    (result,) = frames_of(frames, "tool_result")
    assert result["view"]["series"][0]["currency"] == "EUR"
    answer = frames_of(frames, "response")[0]["text"]
    # German separators and the euro sign after the amount, as Babel writes de-DE.
    assert re.match(r"^You have \*\*\d{1,3}(\.\d{3})*,\d{2}\xa0€\*\* in cash across", answer)


async def test_the_dashboard_is_metric_cards_without_a_csv(erp: ParleyServer) -> None:
    frames = await ask(erp, "dashboard", "v-dash")
    (result,) = frames_of(frames, "tool_result")
    view = result["view"]
    assert view["kind"] == "metrics"
    labels = [item["label"] for item in view["items"]]
    assert labels[:3] == ["Cash", "Receivables", "Payables"]
    assert view["items"][0]["type"] == "money"
    assert DECIMAL.match(view["items"][0]["value"])
    assert "export" not in result


async def test_the_sales_order_card_gets_its_lines_as_a_list_with_columns(
    erp: ParleyServer,
) -> None:
    tab = await erp.tab(token(erp))
    try:
        await tab.send(
            {
                "type": "user_message",
                "client_msg_id": "v-so",
                "text": "create a sales order for Acme: 100 units of Widget at 50",
            }
        )
        request = (await tab.until("confirm_request"))[-1]
    finally:
        await tab.close()
    assert request["params"]["lines"] == [{"item": "Widget", "quantity": "100", "unit_price": "50"}]
    fields = {field["key"]: field for field in request["fields"]}
    assert fields["customer"] == {"key": "customer", "label": "Customer", "type": "text"}
    assert fields["lines"] == {
        "key": "lines",
        "label": "Lines",
        "type": "list",
        "columns": [
            {"key": "item", "label": "Item", "type": "text"},
            {"key": "quantity", "label": "Quantity", "type": "number"},
            {"key": "unit_price", "label": "Unit price", "type": "money", "currency": "USD"},
        ],
    }
    assert fields["tax_rate"]["type"] == "percent"
    # A tab opened later gets the same card from its snapshot.
    fresh = await erp.tab(token(erp))
    try:
        ready = fresh.frames[0]
    finally:
        await fresh.close()
    assert ready["type"] == "ready"
    (pending,) = [
        card for card in ready["pending_confirmations"] if card["token"] == request["token"]
    ]
    assert pending["fields"] == request["fields"]


async def test_a_tab_that_rebuilds_gets_the_tool_lines_and_views_of_the_answers(
    erp: ParleyServer,
) -> None:
    tab = await erp.tab(token(erp))
    try:
        aging = await tab.ask("show AR aging", "v-snap-aging")
        conversation_id = frames_of(aging, "message")[0]["conversation_id"]
        stock = await tab.ask(
            "stock below reorder", "v-snap-stock", conversation_id=conversation_id
        )
    finally:
        await tab.close()
    shown = [frames_of(frames, "tool_result")[0] for frames in (aging, stock)]
    assert {"view", "export"} <= shown[0].keys()
    assert "view" not in shown[1]  # a query without a view still has its line

    # A new tab, no resume point: it rebuilds from the snapshot alone.
    fresh = await erp.tab(token(erp))
    await fresh.close()
    assert fresh.ready["resumed"] is False
    answers = {
        message["turn_id"]: message
        for message in fresh.ready["messages"]
        if message["role"] == "assistant"
    }
    for result in shown:
        assert answers[result["turn_id"]]["tools"] == [
            {
                key: result[key]
                for key in ("call_id", "name", "ok", "summary", "view", "export")
                if key in result
            }
        ]
    # The user's messages carry no tool lines.
    assert all("tools" not in m for m in fresh.ready["messages"] if m["role"] == "user")

    # The REST history, from which a tab loads a conversation the snapshot left out, has the
    # same lines, under tool_lines (its `tools` names the tools called).
    history = await download(erp, f"/api/v1/conversations/{conversation_id}/messages", token(erp))
    assert history.status_code == 200
    replies = {m["turn_id"]: m for m in history.json()["items"] if m["role"] == "assistant"}
    for result in shown:
        assert replies[result["turn_id"]]["tool_lines"] == answers[result["turn_id"]]["tools"]
    assert all("tool_lines" not in m for m in history.json()["items"] if m["role"] == "user")
