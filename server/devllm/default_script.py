"""The default script: small talk, honesty about being scripted, and the demo ERP pack's tools.

Rule order matters. Test rules first (``[say] text``, ``[call tool] arguments``), then actions
(approve, reject, create: one per message), then the ERP queries, which combine ("dashboard and
cash balance" calls both), then help and greetings, so "hi, what's our cash balance?" still
looks up the balance.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from server.devllm.note_answers import (
    OUTCOME_NOTE,
    WHICH_ONE_NOTE,
    answer_outcome,
    answer_which_one,
)
from server.devllm.script import CallTemplate, Rule, Script

CONFIGURE_REAL_MODEL = (
    "To use a real model, point Parley at any OpenAI-compatible endpoint: set OPENAI_BASE_URL, "
    "OPENAI_API_KEY and PARLEY_MODEL, then restart Parley."
)
EXAMPLE_PROMPTS = (
    "what's our cash balance?",
    "show overdue purchase orders",
    "show purchase orders from <supplier>",
    "purchase orders by status this quarter",
    "pending approvals",
    "ar aging / ap aging",
    "stock below reorder",
    "dashboard",
    "approve PO-1001",
    "reject PO-1003 because the price is too high",
    "create a sales order for Acme: 100 units of Widget at 50",
    "create customer <name>",
)
_EXAMPLES = "; ".join(f"“{prompt}”" for prompt in EXAMPLE_PROMPTS)

GREETING = (
    "Hello! I'm Parley's scripted development model. Ask me about cash, purchase orders, "
    "approvals, receivables, payables, stock or the dashboard, or say “help” for examples."
)
HELP = (
    "I'm a scripted development model: I recognise a few phrases and call the demo ERP tools "
    f"for them. Try: {_EXAMPLES}. {CONFIGURE_REAL_MODEL}"
)
ABOUT = (
    "I'm Parley's scripted development model, not a real language model: I follow a fixed "
    f"script so Parley can run and be tested without one. {CONFIGURE_REAL_MODEL}"
)
FALLBACK = (
    "I'm Parley's scripted development model, so I only understand a few phrases. "
    f"Try: {_EXAMPLES}. {CONFIGURE_REAL_MODEL}"
)

# A purchase order number as people type it: "PO-1001", "po 1001", "PO1001", "#1001".
_PO = r"(?:the\s+)?(?:purchase\s+order\s+)?(?:po)?[\s#-]*(?P<po>\d+)\b"
_NUMBER = r"\d+(?:\.\d+)?"
_ORDER_LINE = re.compile(
    rf"(?P<quantity>{_NUMBER})\s*(?:x\s+|units?\s+of\s+|pcs\s+of\s+|pieces\s+of\s+|of\s+)?"
    rf"(?P<item>[^,;:]+?)\s+(?:at|@)\s*\$?(?P<price>{_NUMBER})",
    re.IGNORECASE,
)
# Where a supplier name in "purchase orders from <supplier> ..." ends.
_SUPPLIER = re.compile(
    r"\b(?:from|for|by)\s+(?:supplier\s+)?(?P<supplier>[\w&.' -]+?)"
    r"(?=\s+(?:that|which|with|over|above|under|below|and|please)\b|[?.!,;]|$)",
    re.IGNORECASE,
)
_STATUS = re.compile(r"\b(draft|approved|rejected|received)\b", re.IGNORECASE)
_MIN_AMOUNT = re.compile(rf"\b(?:over|above|more\s+than)\s+\$?(?P<amount>{_NUMBER})", re.I)
_MAX_AMOUNT = re.compile(rf"\b(?:under|below|less\s+than)\s+\$?(?P<amount>{_NUMBER})", re.I)
_EMAIL = re.compile(r"\s*,?\s*(?:with\s+)?(?:e-?mail\s+)?(?P<email>[\w.+-]+@[\w-]+\.[\w.-]+)", re.I)
_CREDIT_LIMIT = re.compile(
    rf"\s*,?\s*(?:and\s+)?(?:with\s+)?(?:a\s+)?credit\s+limit\s+(?:of\s+)?\$?(?P<limit>{_NUMBER})",
    re.IGNORECASE,
)


def _po_number(match: re.Match[str]) -> str:
    return f"PO-{match.group('po')}"


def _approve_arguments(match: re.Match[str]) -> Mapping[str, Any]:
    return {"po_number": _po_number(match)}


def _reject_arguments(match: re.Match[str]) -> Mapping[str, Any]:
    reason = (match.group("reason") or "").strip().rstrip(".!") or "No reason given"
    return {"po_number": _po_number(match), "reason": reason}


def _purchase_order_filters(match: re.Match[str]) -> Mapping[str, Any]:
    """Filters for ``list_purchase_orders`` read from the whole message."""
    text = match.string
    filters: dict[str, Any] = {}
    if re.search(r"\b(?:overdue|late|past\s+due)\b", text, re.IGNORECASE):
        filters["overdue"] = True
    if supplier := _SUPPLIER.search(text):
        filters["supplier"] = supplier.group("supplier").strip()
    if status := _STATUS.search(text):
        filters["status"] = status.group(1).lower()
    if minimum := _MIN_AMOUNT.search(text):
        filters["min_amount"] = minimum.group("amount")
    if maximum := _MAX_AMOUNT.search(text):
        filters["max_amount"] = maximum.group("amount")
    return filters


def _period_arguments(match: re.Match[str]) -> Mapping[str, Any]:
    period = re.search(r"\bthis\s+(month|quarter|year)\b", match.string, re.IGNORECASE)
    return {"period": period.group(1).lower()} if period else {}


def _stock_filters(match: re.Match[str]) -> Mapping[str, Any]:
    below = re.search(
        r"\b(?:below|under|need(?:s|ing)?\s+(?:to\s+)?)\s*reorder|\breorder|\blow\s+stock|"
        r"\brunning\s+low",
        match.string,
        re.IGNORECASE,
    )
    return {"below_reorder": True} if below else {}


def _sales_order_arguments(match: re.Match[str]) -> Mapping[str, Any]:
    lines = [
        {
            "item": line.group("item").strip(),
            "quantity": line.group("quantity"),
            "unit_price": line.group("price"),
        }
        for line in _ORDER_LINE.finditer(match.group("lines"))
    ]
    return {"customer": match.group("customer").strip(), "lines": lines}


def _customer_arguments(match: re.Match[str]) -> Mapping[str, Any]:
    rest = match.group("rest")
    arguments: dict[str, Any] = {}
    if email := _EMAIL.search(rest):
        arguments["email"] = email.group("email").rstrip(".")
        rest = rest[: email.start()] + rest[email.end() :]
    if limit := _CREDIT_LIMIT.search(rest):
        arguments["credit_limit"] = limit.group("limit")
        rest = rest[: limit.start()] + rest[limit.end() :]
    name = rest.strip().strip(".!,").strip().strip("\"'“”")
    return {"name": name, **arguments}


# The demo page's table filters, as people name them.
_PAGE_FILTERS = {
    "overdue": "overdue",
    "late": "overdue",
    "approved": "approved",
    "awaiting": "awaiting_approval",
    "pending": "awaiting_approval",
    "all": "all",
}


def _open_record_arguments(match: re.Match[str]) -> Mapping[str, Any]:
    return {"id": f"PO-{match.group('po')}"}


def _set_filter_arguments(match: re.Match[str]) -> Mapping[str, Any]:
    return {"status": _PAGE_FILTERS[match.group("status").lower()]}


def _query(pattern: str, tool: str, purpose: str, arguments: Any = None) -> Rule:
    """An ERP query rule: calls ``tool`` and combines with other queries in the message."""
    call = CallTemplate(tool, arguments if arguments is not None else {}, purpose=purpose)
    return Rule(pattern, calls=(call,), combine=True)


def default_script() -> Script:
    """The script the dev model follows unless given another."""
    rules = [
        # Test rules: say exactly this, or call exactly this (offered or not, valid JSON or not).
        Rule(re.compile(r"^\[say\] (.*)$", re.DOTALL), text=r"\1"),
        Rule(
            re.compile(r"^\[call (\w+)\] (.*)$", re.DOTALL),
            calls=(CallTemplate(r"\1", raw_arguments=r"\2"),),
            ignore_offered_tools=True,
        ),
        # The server's notes about approvals: report an outcome; ask which one a yes means.
        Rule(OUTCOME_NOTE, text=answer_outcome, on="note"),
        Rule(WHICH_ONE_NOTE, text=answer_which_one, on="note"),
        # Hand-off to another profile: "hand me over to ops", "transfer this to sales".
        Rule(
            r"\b(?:hand|pass|transfer|switch)\s+(?:me|this|the\s+conversation|us)?\s*"
            r"(?:over|off)?\s*to\s+(?:the\s+)?(?P<profile>[A-Za-z0-9][\w-]*)",
            calls=(
                CallTemplate(
                    "handoff",
                    {"profile": r"\g<profile>", "reason": r"the user asked for \g<profile>"},
                    purpose=r"hand this conversation over to \g<profile>",
                ),
            ),
        ),
        # The host page's own functions (page tools), only when the page offers them: "open
        # PO-1003" selects its row, "show only overdue orders" sets the table's filter.
        Rule(
            rf"\b(?:open|go\s+to|jump\s+to|select)\s+{_PO}",
            calls=(CallTemplate("page__open_record", _open_record_arguments),),
            only_if_offered=True,
        ),
        Rule(
            r"\bshow\s+(?:me\s+)?only\s+(?:the\s+)?(?P<status>overdue|late|approved|awaiting|"
            r"pending|all)\b",
            calls=(CallTemplate("page__set_filter", _set_filter_arguments),),
            only_if_offered=True,
        ),
        # Actions: one per message.
        Rule(
            rf"\b(?:approve)\s+{_PO}",
            calls=(
                CallTemplate(
                    "approve_purchase_order",
                    _approve_arguments,
                    purpose=r"approve purchase order PO-\g<po>",
                ),
            ),
        ),
        Rule(
            rf"\b(?:reject|decline)\s+{_PO}"
            r"(?:[\s,:;-]+(?:because|since|as|due\s+to|reason:?)?\s*(?P<reason>\S.*))?",
            calls=(
                CallTemplate(
                    "reject_purchase_order",
                    _reject_arguments,
                    purpose=r"reject purchase order PO-\g<po>",
                ),
            ),
        ),
        Rule(
            r"\b(?:create|add|make|new)\s+(?:a\s+|an\s+)?(?:new\s+)?sales\s+order\s+for\s+"
            r"(?P<customer>[^:,]+?)\s*[:,]\s*(?P<lines>.*\d.*)$",
            calls=(
                CallTemplate(
                    "create_sales_order",
                    _sales_order_arguments,
                    purpose=r"create a sales order for \g<customer>",
                ),
            ),
        ),
        Rule(
            r"\b(?:create|add|make|new)\s+(?:a\s+|an\s+)?(?:new\s+)?sales\s+order\b",
            text=(
                "Tell me the customer and the lines, for example: create a sales order for "
                "Acme: 100 units of Widget at 50, 20 units of Gadget at 12.50."
            ),
        ),
        Rule(
            r"\b(?:create|add)\s+(?:a\s+)?(?:new\s+)?customer\s+(?:called\s+|named\s+)?"
            r"(?P<rest>\S.*)$",
            calls=(
                CallTemplate(
                    "create_customer",
                    _customer_arguments,
                    purpose=r"create the customer \g<rest>",
                ),
            ),
        ),
        # Questions about the company's rules go to its documents when there are any to
        # search (before the queries: "approval limit for purchase orders" is not a list).
        Rule(
            r"\b(?:polic(?:y|ies)|limits?|rules?|guidelines?|procedures?|handbook|allowed|"
            r"permitted|may\s+(?:i|we)|how\s+(?:do|should|can)\s+(?:i|we))\b",
            calls=(CallTemplate("search_knowledge", lambda match: {"query": match.string}),),
            only_if_offered=True,
        ),
        # Queries: every one that matches is called.
        _query(
            r"\bcash\b|\bbank\s+balances?\b",
            "cash_balance",
            "look up the cash balance",
        ),
        _query(
            r"\bpending\s+approvals?\b|\bawaiting\s+(?:my\s+)?approval\b|"
            r"\bneeds?\s+(?:my\s+)?approval\b|\bto\s+approve\b",
            "pending_approvals",
            "list the approvals waiting for you",
        ),
        _query(
            r"\b(?:purchase\s+orders?|POs)\s+(?:by|per)\s+status\b",
            "purchase_orders_by_status",
            "count purchase orders by status",
            _period_arguments,
        ),
        _query(
            r"\bpurchase\s+orders?\b(?!.*\b(?:pending|awaiting|needs?|by\s+status|per\s+status)\b)"
            r"|\bPOs\b(?!\s+(?:by|per)\s+status)",
            "list_purchase_orders",
            "list purchase orders",
            _purchase_order_filters,
        ),
        _query(
            r"\ba/?r\s+aging\b|\breceivables?\b|\baccounts\s+receivable\b|\bwho\s+owes\s+us\b",
            "ar_aging",
            "show the receivables aging",
        ),
        _query(
            r"\ba/?p\s+aging\b|\bpayables?\b|\baccounts\s+payable\b|\bwhat\s+do\s+we\s+owe\b",
            "ap_aging",
            "show the payables aging",
        ),
        _query(
            r"\bstock\b|\binventory\b|\breorder\b",
            "stock_levels",
            "check stock levels",
            _stock_filters,
        ),
        _query(
            r"\bdashboard\b|\bsummary\b|\boverview\b|\bhow\s+are\s+we\s+doing\b|\bkpis?\b",
            "dashboard_summary",
            "show the dashboard summary",
        ),
        # Conversation.
        Rule(
            r"\b(?:are\s+you\s+(?:real|human|an?\s+(?:ai|bot|llm|model))|which\s+model|"
            r"what\s+model|real\s+model|who\s+are\s+you|what\s+are\s+you|scripted|llm|openai)\b",
            text=ABOUT,
        ),
        Rule(
            r"\b(?:help|what\s+can\s+you\s+do|what\s+do\s+you\s+do|examples?|"
            r"how\s+does\s+this\s+work)\b",
            text=HELP,
        ),
        Rule(r"^\W*(?:hello|hi|hey|good\s+(?:morning|afternoon|evening))\b", text=GREETING),
    ]
    return Script(rules, fallback=FALLBACK, fallback_search="search_knowledge")
