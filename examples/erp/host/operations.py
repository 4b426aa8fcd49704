"""Which HTTP operation serves which tool of the ERP pack.

Every tool of the pack is one operation, named by its ``operationId`` after the tool. Queries
are ``GET`` with their arguments as query parameters; actions are ``POST`` with a JSON object
body. An argument that names the document an operation acts on is a path parameter instead
(``POST /purchase-orders/{po_number}/approve``), as a REST API would have it.

An action also carries the summary template Parley shows on the confirmation card, written
from the action's arguments, and a preview path (the action's path plus ``/preview``): Parley
sends the action's request there before it asks the user, and the pack's own summary answers,
looking the document up for a richer line ("... from Contoso for USD 12,000.00") or refusing an
action that cannot run. The template is what the card says when the preview names no line.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from typing import Literal

from server.tools.registry import ToolPack

__all__ = ["OPERATIONS", "Operation", "check_operations"]

_PATH_PARAMETER = re.compile(r"{([a-z_]+)}")


@dataclass(frozen=True, slots=True)
class Operation:
    """One tool as an HTTP operation.

    Attributes:
        tool: the pack's tool name, and the operation's ``operationId``.
        method: ``GET`` for a query, ``POST`` for an action.
        path: the path below the API root (``/api``), with ``{argument}`` path parameters.
        tag: the OpenAPI tag grouping it (``purchasing``, ``sales``, ``finance``).
        status: the status of a successful answer: 201 when the call creates a document.
        summary: for actions, the confirmation card's line as a ``str.format`` template over
            the arguments.
    """

    tool: str
    method: Literal["GET", "POST"]
    path: str
    tag: str
    status: int = 200
    summary: str | None = None

    @property
    def preview_path(self) -> str | None:
        """Where an action is previewed: its own path plus ``/preview``; None for a query."""
        return self.path + "/preview" if self.method == "POST" else None

    @property
    def path_parameters(self) -> tuple[str, ...]:
        """The arguments taken from the path, in order."""
        return tuple(_PATH_PARAMETER.findall(self.path))


OPERATIONS: tuple[Operation, ...] = (
    Operation("cash_balance", "GET", "/cash-balance", "finance"),
    Operation("ar_aging", "GET", "/receivables/aging", "finance"),
    Operation("ap_aging", "GET", "/payables/aging", "finance"),
    Operation("list_purchase_orders", "GET", "/purchase-orders", "purchasing"),
    Operation("pending_approvals", "GET", "/approvals/purchase-orders", "purchasing"),
    Operation("stock_levels", "GET", "/stock", "purchasing"),
    Operation("dashboard_summary", "GET", "/dashboard", "finance"),
    Operation("purchase_orders_by_status", "GET", "/purchase-orders/by-status", "purchasing"),
    Operation(
        "approve_purchase_order",
        "POST",
        "/purchase-orders/{po_number}/approve",
        "purchasing",
        summary="Approve purchase order {po_number}",
    ),
    Operation(
        "reject_purchase_order",
        "POST",
        "/purchase-orders/{po_number}/reject",
        "purchasing",
        summary='Reject purchase order {po_number}: "{reason}"',
    ),
    Operation(
        "create_customer",
        "POST",
        "/customers",
        "sales",
        status=201,
        summary="Create customer {name}",
    ),
    Operation(
        "create_sales_order",
        "POST",
        "/sales-orders",
        "sales",
        status=201,
        summary="Create a sales order for {customer}",
    ),
    Operation(
        "post_ar_invoice",
        "POST",
        "/sales-orders/{sales_order_number}/invoice",
        "sales",
        status=201,
        summary="Post an invoice for sales order {sales_order_number}",
    ),
    Operation(
        "record_customer_receipt",
        "POST",
        "/receipts",
        "finance",
        status=201,
        summary="Record a receipt of {amount} from {customer}",
    ),
    Operation(
        "record_supplier_payment",
        "POST",
        "/payments",
        "finance",
        status=201,
        summary="Pay {amount} to {supplier}",
    ),
)


def check_operations(pack: ToolPack, operations: tuple[Operation, ...] = OPERATIONS) -> None:
    """Check that `operations` serve every tool of `pack` exactly once, and fit the tools.

    Raises:
        RuntimeError: a tool has no operation or two; an operation names no tool, has the
            wrong method for the tool's kind, or a path parameter or summary field that is not
            a required argument (path) or an argument (summary); an action lacks a summary.
    """
    seen: set[str] = set()
    for operation in operations:
        spec = pack.tools.get(operation.tool)
        if spec is None:
            raise RuntimeError(f"operation {operation.tool!r} names no tool of the pack")
        if operation.tool in seen:
            raise RuntimeError(f"tool {operation.tool!r} has two operations")
        seen.add(operation.tool)
        if (spec.kind == "query") != (operation.method == "GET"):
            raise RuntimeError(f"operation {operation.tool!r}: a {spec.kind} needs another method")
        required = set(spec.parameters.get("required", ()))
        for name in operation.path_parameters:
            if name not in required:
                raise RuntimeError(
                    f"operation {operation.tool!r}: path parameter {name!r} is not a required "
                    "argument"
                )
        if spec.kind == "action" and operation.summary is None:
            raise RuntimeError(f"action {operation.tool!r} needs a summary template")
        if operation.summary is not None:
            used = {field for _, field, _, _ in string.Formatter().parse(operation.summary)}
            arguments = spec.parameters["properties"]
            unknown = sorted(name for name in used if name and name not in arguments)
            if unknown:
                raise RuntimeError(
                    f"operation {operation.tool!r}: summary uses unknown argument {unknown[0]!r}"
                )
    missing = sorted(set(pack.tools) - seen)
    if missing:
        raise RuntimeError(f"tool {missing[0]!r} has no operation")
