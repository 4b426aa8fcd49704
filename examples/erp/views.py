"""What the demo ERP's queries show the user: tables, charts and metric cards of their results.

Each builder takes a query's JSON result (the very dict the model gets) and returns a view in
Parley's wire shape (``docs/protocol.md``, "Views"), as a plain dict. The pack hands it to
Parley as ``ToolReturn(view=...)``; the host app adds it to its JSON answer under
``parley_view`` (and a chart's detail rows under ``parley_export``), so both ways of running the
demo show the same thing. Amounts stay decimal strings, so money is never rounded on the way.
"""

from __future__ import annotations

from typing import Any

from examples.erp.aging import BUCKETS

__all__ = [
    "aging_documents_table",
    "aging_view",
    "cash_view",
    "dashboard_view",
    "orders_by_status_view",
    "purchase_orders_table",
]

_BUCKET_LABELS = {
    "current": "Not yet due",
    "0-30": "1-30 days",
    "31-60": "31-60 days",
    "61-90": "61-90 days",
    "90+": "Over 90 days",
}


def _money(key: str, label: str, currency: str) -> dict[str, Any]:
    return {"key": key, "label": label, "type": "money", "currency": currency}


def _column(key: str, label: str, kind: str = "text") -> dict[str, Any]:
    return {"key": key, "label": label, "type": kind}


def cash_view(result: dict[str, Any]) -> dict[str, Any]:
    """Cash by bank account as a bar chart (the total is in the answer and the CSV)."""
    currency = result["currency"]
    return {
        "kind": "chart",
        "chart": "bar",
        "title": "Cash by account",
        "x": "account",
        "series": [_money("balance", "Balance", currency)],
        "rows": [
            {"account": account["name"], "bank": account["bank"], "balance": account["balance"]}
            for account in result["accounts"]
        ],
    }


def aging_view(result: dict[str, Any], what: str) -> dict[str, Any]:
    """Open amounts by aging bucket as a bar chart; ``what`` is "Receivables" or "Payables"."""
    currency = result["currency"]
    return {
        "kind": "chart",
        "chart": "bar",
        "title": f"{what} by age",
        "x": "bucket",
        "series": [_money("amount", "Open amount", currency)],
        "rows": [
            {"bucket": _BUCKET_LABELS[bucket], "amount": result["buckets"][bucket]}
            for bucket in BUCKETS
        ],
    }


def aging_documents_table(result: dict[str, Any], party: str, document: str) -> dict[str, Any]:
    """Every open invoice or bill behind an aging chart, most overdue first (its CSV)."""
    currency = result["currency"]
    return {
        "kind": "table",
        "title": f"Open {document.lower()}s",
        "columns": [
            _column("number", document),
            _column("name", party),
            _column("due_date", "Due", "date"),
            _column("days_past_due", "Days past due", "number"),
            _column("bucket", "Bucket"),
            _money("open_amount", "Open amount", currency),
        ],
        "rows": [
            {**item, "bucket": _BUCKET_LABELS[item["bucket"]]} for item in result["open_documents"]
        ],
    }


def purchase_orders_table(result: dict[str, Any], title: str) -> dict[str, Any]:
    """Purchase orders as a table, one row per order (lines are in the model's result)."""
    currency = result["currency"]
    return {
        "kind": "table",
        "title": title,
        "columns": [
            _column("number", "Order"),
            _column("supplier", "Supplier"),
            _column("status", "Status"),
            _column("order_date", "Ordered", "date"),
            _column("expected_date", "Expected", "date"),
            _money("total", "Total", currency),
        ],
        "rows": [{key: order[key] for key in _ORDER_KEYS} for order in result["purchase_orders"]],
    }


_ORDER_KEYS = ("number", "supplier", "status", "order_date", "expected_date", "total")


def orders_by_status_view(result: dict[str, Any]) -> dict[str, Any]:
    """Purchase orders of a period per status: a bar chart of their totals."""
    currency = result["currency"]
    period = result["period"]
    return {
        "kind": "chart",
        "chart": "bar",
        "title": f"Purchase orders by status, {period['from']} to {period['to']}",
        "x": "status",
        "series": [_money("total", "Total", currency)],
        "rows": [
            {"status": entry["status"], "count": entry["count"], "total": entry["total"]}
            for entry in result["statuses"]
        ],
    }


def dashboard_view(result: dict[str, Any]) -> dict[str, Any]:
    """The dashboard's key figures as metric cards."""
    currency = result["currency"]

    def money(label: str, value: str, hint: str | None = None) -> dict[str, Any]:
        item = {"label": label, "value": value, "type": "money", "currency": currency}
        return item if hint is None else {**item, "hint": hint}

    awaiting = result["purchase_orders_awaiting_approval"]
    sales = result["open_sales_orders"]
    return {
        "kind": "metrics",
        "title": f"Dashboard, {result['as_of']}",
        "items": [
            money("Cash", result["cash"]),
            money(
                "Receivables",
                result["receivables"]["total"],
                f"overdue {result['receivables']['overdue']}",
            ),
            money(
                "Payables", result["payables"]["total"], f"overdue {result['payables']['overdue']}"
            ),
            money("Revenue, last 30 days", result["revenue_last_30_days"]["total"]),
            {
                "label": "POs awaiting approval",
                "value": awaiting["count"],
                "type": "number",
                "hint": f"total {awaiting['total']} {currency}",
            },
            {
                "label": "Open sales orders",
                "value": sales["count"],
                "type": "number",
                "hint": f"total {sales['total']} {currency}",
            },
            {
                "label": "Items below reorder",
                "value": result["items_below_reorder"],
                "type": "number",
            },
        ],
    }
