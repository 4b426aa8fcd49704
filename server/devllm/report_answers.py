"""Answers in Markdown for the demo ERP's reports: a sentence for the total, a table for a list.

Each answerer takes a tool's JSON result and returns the answer, or None when the result is not
the shape it knows (a host app of another kind), so the generic answer takes over. Money and
dates are written for the tenant's locale, which the results carry beside their currency.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from server.devllm.markdown import Formats, table

__all__ = ["MAX_TABLE_ROWS", "REPORTS", "flat_table"]

MAX_TABLE_ROWS = 10
"""Rows of a table in an answer; the view beside it and its CSV have all of them."""

Answerer = Callable[[Mapping[str, Any]], str | None]


def _formats(data: Mapping[str, Any]) -> Formats:
    return Formats(data.get("locale"), data.get("currency"))


def _more(total: int, shown: int, where: str = "the table above has them all") -> str:
    return f"\n\n…and {total - shown} more; {where}." if total > shown else ""


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def cash_balance(data: Mapping[str, Any]) -> str | None:
    accounts = data.get("accounts")
    if not isinstance(accounts, list) or "total" not in data:
        return None
    f = _formats(data)
    lead = (
        f"You have **{f.money(data['total'])}** in cash across "
        f"{_plural(len(accounts), 'bank account')}."
    )
    rows = [
        [str(a.get("name", "")), str(a.get("bank", "")), f.money(a.get("balance"))]
        for a in accounts[:MAX_TABLE_ROWS]
        if isinstance(a, Mapping)
    ]
    return f"{lead}\n\n{table(['Account', 'Bank', 'Balance'], rows, right=[2])}" + _more(
        len(accounts), len(rows), "the chart has them all"
    )


def _aging(data: Mapping[str, Any], owed: str, party: str, document: str) -> str | None:
    documents = data.get("open_documents")
    if not isinstance(documents, list) or "total" not in data or "overdue" not in data:
        return None
    f = _formats(data)
    lead = (
        f"{owed} **{f.money(data['total'])}**, of which **{f.money(data['overdue'])}** is "
        f"overdue, on {_plural(len(documents), 'open ' + document.lower())}."
    )
    if not documents:
        return lead
    rows = [
        [
            str(d.get("number", "")),
            str(d.get("name", "")),
            f.date(d.get("due_date")),
            f.number(d.get("days_past_due", 0)),
            f.money(d.get("open_amount")),
        ]
        for d in documents[:MAX_TABLE_ROWS]
        if isinstance(d, Mapping)
    ]
    headers = [document, party, "Due", "Days past due", "Open"]
    return f"{lead} The most overdue first:\n\n{table(headers, rows, right=[3, 4])}" + _more(
        len(documents), len(rows), "the CSV of the chart has every one"
    )


def ar_aging(data: Mapping[str, Any]) -> str | None:
    return _aging(data, "Customers owe you", "Customer", "Invoice")


def ap_aging(data: Mapping[str, Any]) -> str | None:
    return _aging(data, "You owe suppliers", "Supplier", "Bill")


def _orders(data: Mapping[str, Any], what: str) -> str | None:
    orders = data.get("purchase_orders")
    if not isinstance(orders, list) or "total" not in data:
        return None
    f = _formats(data)
    count = data.get("count", len(orders))
    count = count if isinstance(count, int) else len(orders)
    if not orders:
        return f"There are no {what} right now."
    lead = f"{_plural(count, what.removesuffix('s'))}, **{f.money(data['total'])}** in all."
    rows = [
        [
            str(o.get("number", "")),
            str(o.get("supplier", "")),
            str(o.get("status", "")).replace("_", " "),
            f.date(o.get("expected_date")),
            f.money(o.get("total")),
        ]
        for o in orders[:MAX_TABLE_ROWS]
        if isinstance(o, Mapping)
    ]
    headers = ["Order", "Supplier", "Status", "Expected", "Total"]
    return f"{lead}\n\n{table(headers, rows, right=[4])}" + _more(count, len(rows))


def list_purchase_orders(data: Mapping[str, Any]) -> str | None:
    return _orders(data, "purchase orders")


def pending_approvals(data: Mapping[str, Any]) -> str | None:
    return _orders(data, "purchase orders awaiting your approval")


def purchase_orders_by_status(data: Mapping[str, Any]) -> str | None:
    statuses = data.get("statuses")
    period = data.get("period")
    if not isinstance(statuses, list) or not isinstance(period, Mapping) or "total" not in data:
        return None
    f = _formats(data)
    count = data.get("count", 0)
    lead = (
        f"This {period.get('name', 'period')} ({f.date(period.get('from'))} to "
        f"{f.date(period.get('to'))}) you placed {_plural(int(count), 'purchase order')} worth "
        f"**{f.money(data['total'])}**."
    )
    rows = [
        [
            str(s.get("status", "")).replace("_", " "),
            f.number(s.get("count")),
            f.money(s.get("total")),
        ]
        for s in statuses
        if isinstance(s, Mapping)
    ]
    return f"{lead}\n\n{table(['Status', 'Orders', 'Total'], rows, right=[1, 2])}"


def dashboard_summary(data: Mapping[str, Any]) -> str | None:
    try:
        receivables, payables = data["receivables"], data["payables"]
        awaiting, sales = data["purchase_orders_awaiting_approval"], data["open_sales_orders"]
        revenue = data["revenue_last_30_days"]
        f = _formats(data)
        return (
            f"Here is where things stand on {f.date(data['as_of'])}:\n\n"
            f"- **Cash:** {f.money(data['cash'])}\n"
            f"- **Receivables:** {f.money(receivables['total'])} "
            f"({f.money(receivables['overdue'])} overdue)\n"
            f"- **Payables:** {f.money(payables['total'])} "
            f"({f.money(payables['overdue'])} overdue)\n"
            f"- **Revenue, last 30 days:** {f.money(revenue['total'])}\n"
            f"- **Purchase orders awaiting approval:** {awaiting['count']} "
            f"({f.money(awaiting['total'])})\n"
            f"- **Open sales orders:** {sales['count']} ({f.money(sales['total'])})\n"
            f"- **Items below reorder level:** {data['items_below_reorder']}"
        )
    except (KeyError, TypeError):
        return None


def stock_levels(data: Mapping[str, Any]) -> str | None:
    items = data.get("items")
    if not isinstance(items, list):
        return None
    f = _formats(data)
    low = sum(1 for item in items if isinstance(item, Mapping) and item.get("below_reorder"))
    lead = f"{_plural(len(items), 'item')}, {low} at or below the reorder level."
    if not items:
        return lead
    rows = [
        [
            str(i.get("sku", "")),
            str(i.get("name", "")),
            f.number(i.get("on_hand")),
            f.number(i.get("reorder_level")),
            f.number(i.get("on_order")),
        ]
        for i in items[:MAX_TABLE_ROWS]
        if isinstance(i, Mapping)
    ]
    headers = ["SKU", "Item", "On hand", "Reorder level", "On order"]
    return f"{lead}\n\n{table(headers, rows, right=[2, 3, 4])}" + _more(len(items), len(rows))


def flat_table(intro: str, items: list[Any]) -> str | None:
    """A list of flat objects as a table under ``intro``; None when it is not one."""
    if not items or not all(isinstance(item, Mapping) for item in items):
        return None
    keys: dict[str, None] = {}
    for item in items:
        if not all(_is_cell(value) for value in item.values()):
            return None
        keys.update(dict.fromkeys(str(key) for key in item))
    columns = list(keys)[:8]
    rows = [[_text(item.get(key)) for key in columns] for item in items[:MAX_TABLE_ROWS]]
    headers = [key.replace("_", " ").capitalize() for key in columns]
    lead = f"{intro}: {_plural(len(items), 'result')}."
    return f"{lead}\n\n{table(headers, rows)}" + _more(len(items), len(rows))


def _is_cell(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


REPORTS: dict[str, Answerer] = {
    "cash_balance": cash_balance,
    "ar_aging": ar_aging,
    "ap_aging": ap_aging,
    "list_purchase_orders": list_purchase_orders,
    "pending_approvals": pending_approvals,
    "purchase_orders_by_status": purchase_orders_by_status,
    "dashboard_summary": dashboard_summary,
    "stock_levels": stock_levels,
}
"""The reports the dev model knows by name (a source's ``erp__x`` reads as ``x``)."""
