"""Short answers built from tool results, in Markdown.

After the turn engine runs the tools a reply asked for, the dev model sees their results and has
to say something a person can read. It knows the shape of the demo ERP's reports
(``report_answers``: a sentence for the total, a table for the list, money in the tenant's
locale); a list of flat objects becomes a table; anything else is described compactly: a list
of items by their names and main figures, an object by its keys and values. An
``{"error": ...}`` result is answered by saying what went wrong.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from server.devllm.knowledge_answers import SEARCH_TOOL, answer_knowledge
from server.devllm.report_answers import REPORTS, flat_table

# Bounds that keep an answer readable (and the stream short) whatever a tool returns.
MAX_ITEMS = 8
MAX_FIELDS = 8
MAX_ITEM_DETAILS = 3
MAX_ANSWER_CHARS = 900
MAX_DEPTH = 2

# Keys that name an item, most telling first; the first one present labels the item.
LABEL_KEYS = (
    "name",
    "po_number",
    "number",
    "invoice_number",
    "bill_number",
    "sales_order_number",
    "order_number",
    "account",
    "account_name",
    "item",
    "sku",
    "customer",
    "supplier",
    "title",
    "bucket",
    "id",
)
# Keys holding an item's main figure, most telling first.
FIGURE_KEYS = ("balance", "amount", "total", "outstanding", "value", "quantity_on_hand")
INTROS = {
    "cash_balance": "Cash balance",
    "ar_aging": "Receivables aging",
    "ap_aging": "Payables aging",
    "list_purchase_orders": "Purchase orders",
    "purchase_orders_by_status": "Purchase orders by status",
    "pending_approvals": "Purchase orders awaiting your approval",
    "stock_levels": "Stock levels",
    "dashboard_summary": "Dashboard summary",
}
ACTION_PREFIXES = ("approve_", "reject_", "create_", "post_", "record_", "update_", "delete_")


@dataclass(frozen=True, slots=True)
class ToolResult:
    """One tool result message: the tool's name (when known) and the content sent back."""

    name: str | None
    content: str


def answer_tool_results(results: Sequence[ToolResult]) -> str:
    """A short answer covering every result, one paragraph (or table) each."""
    return "\n\n".join(_answer_one(result) for result in results)


def _answer_one(result: ToolResult) -> str:
    # A tool source's tool answers like the pack tool it serves: "erp__cash_balance" reads as
    # "cash_balance".
    if result.name is not None:
        result = ToolResult(name=result.name.rpartition("__")[2], content=result.content)
    try:
        data = json.loads(result.content, parse_float=Decimal)
    except ValueError:
        # Not JSON: pass the text on, it is all there is.
        text = result.content.strip() or "nothing"
        return _shorten(f"{_intro(result.name)}: {text}")
    if isinstance(data, Mapping) and "error" in data:
        return _shorten(_answer_error(result.name, data["error"]))
    if result.name == SEARCH_TOOL:
        answer = answer_knowledge(data)
        if answer is not None:
            return answer
    report = REPORTS.get(result.name or "")
    if report is not None and isinstance(data, Mapping):
        answer = report(data)
        if answer is not None:
            return answer
    if isinstance(data, list):
        answer = flat_table(_intro(result.name), data)
        if answer is not None:
            return answer
    return _shorten(f"{_intro(result.name)}: {_describe(data, 0)}.")


def _intro(name: str | None) -> str:
    if name is None:
        return "Here is the result"
    if name in INTROS:
        return INTROS[name]
    if name.startswith(ACTION_PREFIXES):
        return f"Done ({_humanize(name)})"
    return _humanize(name).capitalize()


def _answer_error(name: str | None, error: Any) -> str:
    if isinstance(error, Mapping):
        error = error.get("message", _describe(error, 0))
    message = str(error).strip().rstrip(".") or "no reason given"
    what = f"{_humanize(name)} didn't go through" if name else "that didn't work"
    return f"Sorry, {what}: {message}."


def _describe(value: Any, depth: int) -> str:
    """A compact description of any JSON value."""
    if _is_scalar(value):
        return _scalar(value)
    if isinstance(value, list):
        return _describe_list(value)
    if isinstance(value, Mapping):
        if depth >= MAX_DEPTH:
            return f"{len(value)} fields"
        present = [(str(key), item) for key, item in value.items() if item is not None]
        lists = [key for key, item in present if isinstance(item, list)]
        # An object around one list (``{"orders": [...], "count": 3}``) is mostly that list,
        # so the list leads, without its key.
        if len(lists) == 1:
            present.sort(key=lambda pair: pair[0] != lists[0])
        parts = [
            _describe(item, depth + 1)
            if len(lists) == 1 and key == lists[0]
            else f"{_humanize(key)}: {_describe(item, depth + 1)}"
            for key, item in present
        ]
        if len(parts) > MAX_FIELDS:
            parts = [*parts[:MAX_FIELDS], f"and {len(parts) - MAX_FIELDS} more fields"]
        return ("; " if depth == 0 else ", ").join(parts) if parts else "nothing"
    return str(value)


def _describe_list(items: list[Any]) -> str:
    if not items:
        return "none found"
    described = ", ".join(_describe_item(item) for item in items[:MAX_ITEMS])
    if len(items) > MAX_ITEMS:
        described += f" and {len(items) - MAX_ITEMS} more"
    count = f"{len(items)} item{'s' if len(items) != 1 else ''}"
    return f"{count}: {described}"


def _describe_item(item: Any, *, brief: bool = False) -> str:
    """An item of a list: its label and a few of its other figures (brief: the main one)."""
    if not isinstance(item, Mapping):
        return _describe(item, MAX_DEPTH)
    if _is_money(item):
        return _scalar(item)
    label_key = next((key for key in LABEL_KEYS if _is_scalar(item.get(key))), None)
    currency = item.get("currency") if isinstance(item.get("currency"), str) else None
    details = [
        f"{_humanize(str(key))} {_figure(value, currency if key in FIGURE_KEYS else None)}"
        for key, value in item.items()
        if key not in (label_key, "currency") and value is not None and _is_scalar(value)
    ][:MAX_ITEM_DETAILS]
    if label_key is None:
        return ", ".join(details) or "an item"
    label = _scalar(item[label_key])
    if brief:
        figure_key = next((key for key in FIGURE_KEYS if _is_scalar(item.get(key))), None)
        return f"{label} {_figure(item[figure_key], currency)}" if figure_key else label
    return f"{label} ({', '.join(details)})" if details else label


def _figure(value: Any, currency: str | None) -> str:
    """An amount with its currency in front, unless the amount already names it."""
    text = _scalar(value)
    return f"{currency} {text}" if currency and currency not in text else text


def _is_money(value: Any) -> bool:
    return isinstance(value, Mapping) and set(value) == {"amount", "currency"}


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | Decimal | bool) or _is_money(value)


def _scalar(value: Any) -> str:
    if _is_money(value):
        return f"{value['currency']} {value['amount']}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _humanize(key: str) -> str:
    return key.replace("_", " ").strip()


def _shorten(text: str) -> str:
    if len(text) <= MAX_ANSWER_CHARS:
        return text
    return text[: MAX_ANSWER_CHARS - 1].rstrip() + "…"
