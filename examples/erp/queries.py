"""Read-only tools: cash, receivables and payables aging, purchase orders, stock, a dashboard.

Every figure is read from the tenant's own rows; balances come from the general ledger, so what
the assistant reports is what the books say.
"""

from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from examples.erp.aging import AgingReport, OpenItem
from examples.erp.approvals import approval_refusal, required_roles, roles_text
from examples.erp.companies import Ledger, Today, profile
from examples.erp.ledger import account_balances
from examples.erp.lookup import find_supplier
from examples.erp.models import (
    ZERO,
    BankAccount,
    Bill,
    Customer,
    DocumentStatus,
    Invoice,
    Item,
    PurchaseOrder,
    PurchaseOrderLine,
    PurchaseOrderStatus,
    SalesOrder,
    SalesOrderStatus,
    Supplier,
)
from examples.erp.money import amount_text, format_money, quantity_text, require_amount
from examples.erp.views import (
    aging_documents_table,
    aging_view,
    cash_view,
    dashboard_view,
    purchase_orders_table,
)
from server.tools.context import ToolContext
from server.tools.errors import ToolError
from server.tools.registry import ToolPack, ToolReturn

__all__ = ["QUERY_ROLES", "payables_aging", "receivables_aging", "register_queries"]

# Who may run each query; the pack docstring lists the same table for people.
QUERY_ROLES: dict[str, frozenset[str]] = {
    "cash_balance": frozenset({"admin", "finance", "viewer"}),
    "ar_aging": frozenset({"admin", "finance", "sales", "viewer"}),
    "ap_aging": frozenset({"admin", "finance", "purchasing", "viewer"}),
    "list_purchase_orders": frozenset(
        {"admin", "finance", "purchasing", "purchasing_manager", "viewer"}
    ),
    "pending_approvals": frozenset({"admin", "finance", "purchasing_manager"}),
    "stock_levels": frozenset(
        {"admin", "finance", "purchasing", "purchasing_manager", "sales", "viewer"}
    ),
    "dashboard_summary": frozenset({"admin", "finance", "viewer"}),
}

_OPEN = (DocumentStatus.OPEN, DocumentStatus.PARTIALLY_PAID)
_STATUS_ALIASES = {"pending": "awaiting_approval", "awaiting": "awaiting_approval"}
_LISTED_ORDERS = 50


# -- shared readers ---------------------------------------------------------------------------


async def receivables_aging(session: AsyncSession, tenant: str, today: date) -> AgingReport:
    """Aging of the tenant's open invoices as of `today`."""
    rows = await session.exec(
        select(Invoice, Customer.name)
        .join(Customer, col(Customer.id) == col(Invoice.customer_id))
        .where(Invoice.tenant == tenant, col(Invoice.status).in_(_OPEN))
    )
    return AgingReport.build(
        today,
        (
            OpenItem(inv.number, name, inv.due_date, inv.total - inv.amount_paid)
            for inv, name in rows
        ),
    )


async def payables_aging(session: AsyncSession, tenant: str, today: date) -> AgingReport:
    """Aging of the tenant's open bills as of `today`."""
    rows = await session.exec(
        select(Bill, Supplier.name)
        .join(Supplier, col(Supplier.id) == col(Bill.supplier_id))
        .where(Bill.tenant == tenant, col(Bill.status).in_(_OPEN))
    )
    return AgingReport.build(
        today,
        (
            OpenItem(bill.number, name, bill.due_date, bill.total - bill.amount_paid)
            for bill, name in rows
        ),
    )


async def _bank_balances(session: AsyncSession, tenant: str) -> list[tuple[BankAccount, Decimal]]:
    banks = (
        await session.exec(
            select(BankAccount).where(BankAccount.tenant == tenant).order_by(col(BankAccount.id))
        )
    ).all()
    balances = await account_balances(session, tenant, {b.account_code for b in banks})
    return [(bank, balances.get(bank.account_code, ZERO)) for bank in banks]


def _is_overdue(order: PurchaseOrder, today: date) -> bool:
    # Approved but not received by the expected date: the supplier is late.
    return order.status == PurchaseOrderStatus.APPROVED and order.expected_date < today


def _normalise_status(status: str) -> PurchaseOrderStatus:
    key = "_".join(status.strip().lower().replace("-", " ").split())
    key = _STATUS_ALIASES.get(key, key)
    try:
        return PurchaseOrderStatus(key)
    except ValueError:
        known = ", ".join(s.value for s in PurchaseOrderStatus)
        raise ToolError(f"unknown purchase order status {status!r}; use one of {known}") from None


async def _order_lines(
    session: AsyncSession, tenant: str, order_ids: list[int]
) -> dict[int, list[dict[str, str]]]:
    if not order_ids:
        return {}
    rows = await session.exec(
        select(PurchaseOrderLine, Item)
        .join(Item, col(Item.id) == col(PurchaseOrderLine.item_id))
        .where(
            PurchaseOrderLine.tenant == tenant,
            col(PurchaseOrderLine.purchase_order_id).in_(order_ids),
        )
        .order_by(col(PurchaseOrderLine.id))
    )
    lines: dict[int, list[dict[str, str]]] = defaultdict(list)
    for line, item in rows:
        lines[line.purchase_order_id].append(
            {
                "sku": item.sku,
                "item": item.name,
                "quantity": quantity_text(line.quantity),
                "unit_price": amount_text(line.unit_price),
                "amount": amount_text(line.amount),
            }
        )
    return lines


def _order_result(
    order: PurchaseOrder, supplier: str, today: date, lines: list[dict[str, str]]
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "number": order.number,
        "supplier": supplier,
        "status": order.status,
        "order_date": order.order_date.isoformat(),
        "expected_date": order.expected_date.isoformat(),
        "total": amount_text(order.total),
        "overdue": _is_overdue(order, today),
        "requested_by": order.requested_by,
        "lines": lines,
    }
    if order.decided_by is not None:
        result["decided_by"] = order.decided_by
    if order.decision_note:
        result["decision_note"] = order.decision_note
    return result


def register_queries(pack: ToolPack, today: Today) -> None:
    """Declare the read-only tools on `pack`, reading the current day from `today`."""

    @pack.query(roles=QUERY_ROLES["cash_balance"])
    async def cash_balance(ctx: ToolContext) -> ToolReturn:
        """Current balance of each of the company's bank accounts and their total.

        Balances are the general-ledger balances of the bank accounts, in the company currency.
        """
        async with ctx.db() as session:
            balances = await _bank_balances(session, ctx.tenant)
        total = sum((balance for _, balance in balances), ZERO)
        result = {
            "as_of": today().isoformat(),
            "currency": ctx.currency,
            "locale": ctx.locale,
            "accounts": [
                {
                    "name": bank.name,
                    "bank": bank.bank,
                    "number": bank.number,
                    "balance": amount_text(balance),
                }
                for bank, balance in balances
            ],
            "total": amount_text(total),
        }
        count = len(balances)
        summary = (
            f"{count} bank account{'s' if count != 1 else ''}, "
            f"total {format_money(total, ctx.currency, ctx.locale)}"
        )
        return ToolReturn(result, summary, view=cash_view(result))

    @pack.query(roles=QUERY_ROLES["ar_aging"])
    async def ar_aging(ctx: ToolContext) -> ToolReturn:
        """Accounts-receivable aging: what customers owe, by days past the invoice due date.

        Buckets: "current" (not yet due), "0-30", "31-60", "61-90" and "90+" days past due;
        totals overall and per customer, and every open invoice with its open amount.
        """
        async with ctx.db() as session:
            report = await receivables_aging(session, ctx.tenant, today())
        result = {**report.as_result(ctx.currency, "customers"), "locale": ctx.locale}
        return ToolReturn(
            result,
            _aging_summary("AR", report, ctx),
            view=aging_view(result, "Receivables"),
            export=aging_documents_table(result, "Customer", "Invoice"),
        )

    @pack.query(roles=QUERY_ROLES["ap_aging"])
    async def ap_aging(ctx: ToolContext) -> ToolReturn:
        """Accounts-payable aging: what the company owes suppliers, by days past the bill due date.

        Buckets: "current" (not yet due), "0-30", "31-60", "61-90" and "90+" days past due;
        totals overall and per supplier, and every open bill with its open amount.
        """
        async with ctx.db() as session:
            report = await payables_aging(session, ctx.tenant, today())
        result = {**report.as_result(ctx.currency, "suppliers"), "locale": ctx.locale}
        return ToolReturn(
            result,
            _aging_summary("AP", report, ctx),
            view=aging_view(result, "Payables"),
            export=aging_documents_table(result, "Supplier", "Bill"),
        )

    @pack.query(roles=QUERY_ROLES["list_purchase_orders"])
    async def list_purchase_orders(
        ctx: ToolContext,
        status: str | None = None,
        supplier: str | None = None,
        min_amount: Decimal | None = None,
        max_amount: Decimal | None = None,
        overdue: bool | None = None,
    ) -> ToolReturn:
        """List purchase orders with their lines, optionally filtered.

        Args:
            status: one of draft, awaiting_approval, approved, rejected, received.
            supplier: supplier name or the start of it, case-insensitive.
            min_amount: only orders whose total is at least this.
            max_amount: only orders whose total is at most this.
            overdue: true for approved orders past their expected date that have not been
                received; false to leave those out.
        """
        day = today()
        wanted_status = _normalise_status(status) if status is not None else None
        low = (
            None
            if min_amount is None
            else require_amount(min_amount, "min_amount", allow_zero=True)
        )
        high = (
            None
            if max_amount is None
            else require_amount(max_amount, "max_amount", allow_zero=True)
        )
        if low is not None and high is not None and low > high:
            raise ToolError("min_amount is larger than max_amount")
        async with ctx.db() as session:
            query = (
                select(PurchaseOrder, Supplier.name)
                .join(Supplier, col(Supplier.id) == col(PurchaseOrder.supplier_id))
                .where(PurchaseOrder.tenant == ctx.tenant)
                .order_by(col(PurchaseOrder.number))
            )
            if wanted_status is not None:
                query = query.where(PurchaseOrder.status == wanted_status)
            if supplier is not None:
                found = await find_supplier(session, ctx.tenant, supplier)
                query = query.where(PurchaseOrder.supplier_id == found.id)
            if low is not None:
                query = query.where(PurchaseOrder.total >= low)
            if high is not None:
                query = query.where(PurchaseOrder.total <= high)
            rows = [
                (order, name)
                for order, name in (await session.exec(query)).all()
                if overdue is None or _is_overdue(order, day) == overdue
            ]
            shown = rows[:_LISTED_ORDERS]
            lines = await _order_lines(
                session, ctx.tenant, [order.id for order, _ in shown if order.id is not None]
            )
        total = sum((order.total for order, _ in rows), ZERO)
        result = {
            "currency": ctx.currency,
            "locale": ctx.locale,
            "count": len(rows),
            "total": amount_text(total),
            "purchase_orders": [
                _order_result(order, name, day, lines.get(order.id or 0, []))
                for order, name in shown
            ],
        }
        if len(rows) > len(shown):
            result["truncated"] = True
        summary = (
            f"{len(rows)} purchase order{'s' if len(rows) != 1 else ''}, "
            f"total {format_money(total, ctx.currency, ctx.locale)}"
        )
        return ToolReturn(result, summary, view=purchase_orders_table(result, "Purchase orders"))

    @pack.query(roles=QUERY_ROLES["pending_approvals"])
    async def pending_approvals(ctx: ToolContext) -> ToolReturn:
        """Purchase orders awaiting approval that the current user may approve.

        Orders above the company's approval limit need a finance or admin approver; nobody
        approves an order they requested. `awaiting_others` counts the awaiting orders this
        user may not approve.
        """
        limit = profile(ctx.tenant).approval_limit
        day = today()
        async with ctx.db() as session:
            rows = (
                await session.exec(
                    select(PurchaseOrder, Supplier.name)
                    .join(Supplier, col(Supplier.id) == col(PurchaseOrder.supplier_id))
                    .where(
                        PurchaseOrder.tenant == ctx.tenant,
                        PurchaseOrder.status == PurchaseOrderStatus.AWAITING_APPROVAL,
                    )
                    .order_by(col(PurchaseOrder.number))
                )
            ).all()
            mine = [(o, n) for o, n in rows if approval_refusal(o, n, ctx, limit) is None]
            lines = await _order_lines(
                session, ctx.tenant, [order.id for order, _ in mine if order.id is not None]
            )
        total = sum((order.total for order, _ in mine), ZERO)
        orders = []
        for order, name in mine:
            entry = _order_result(order, name, day, lines.get(order.id or 0, []))
            entry["approver_roles"] = roles_text(required_roles(order.total, limit))
            orders.append(entry)
        result = {
            "currency": ctx.currency,
            "locale": ctx.locale,
            "approval_limit": amount_text(limit),
            "count": len(mine),
            "total": amount_text(total),
            "purchase_orders": orders,
            "awaiting_others": len(rows) - len(mine),
        }
        summary = (
            f"{len(mine)} purchase order{'s' if len(mine) != 1 else ''} to approve, "
            f"total {format_money(total, ctx.currency, ctx.locale)}"
        )
        view = purchase_orders_table(result, "Awaiting your approval")
        return ToolReturn(result, summary, view=view)

    @pack.query(roles=QUERY_ROLES["stock_levels"])
    async def stock_levels(ctx: ToolContext, below_reorder: bool | None = None) -> ToolReturn:
        """Stock on hand per item with reorder level, quantity on order and stock value.

        Args:
            below_reorder: true for only the items at or below their reorder level.
        """
        async with ctx.db() as session:
            items = (
                await session.exec(
                    select(Item).where(Item.tenant == ctx.tenant).order_by(col(Item.sku))
                )
            ).all()
            on_order = await _quantities_on_order(session, ctx.tenant)
        entries = []
        value = ZERO
        low_count = 0
        for item in items:
            low = item.on_hand <= item.reorder_level
            low_count += low
            if below_reorder is not None and low != below_reorder:
                continue
            item_value = item.on_hand * item.unit_cost
            value += item_value
            entries.append(
                {
                    "sku": item.sku,
                    "name": item.name,
                    "unit": item.unit,
                    "on_hand": quantity_text(item.on_hand),
                    "reorder_level": quantity_text(item.reorder_level),
                    "reorder_quantity": quantity_text(item.reorder_quantity),
                    "on_order": quantity_text(on_order.get(item.id or 0, ZERO)),
                    "below_reorder": low,
                    "unit_cost": amount_text(item.unit_cost),
                    "value": amount_text(item_value),
                }
            )
        result = {"currency": ctx.currency, "items": entries, "value": amount_text(value)}
        summary = f"{len(entries)} item{'s' if len(entries) != 1 else ''}"
        if below_reorder is None:
            summary += f", {low_count} below reorder level"
        elif below_reorder:
            summary += " below reorder level"
        return ToolReturn(result, summary)

    @pack.query(roles=QUERY_ROLES["dashboard_summary"])
    async def dashboard_summary(ctx: ToolContext) -> ToolReturn:
        """Key figures at a glance: cash, receivables, payables, approvals, orders, stock, revenue.

        Revenue is what the ledger booked in the last 30 days (net of cancellations).
        """
        day = today()
        since = day - timedelta(days=30)
        async with ctx.db() as session:
            cash = sum((b for _, b in await _bank_balances(session, ctx.tenant)), ZERO)
            receivables = await receivables_aging(session, ctx.tenant, day)
            payables = await payables_aging(session, ctx.tenant, day)
            awaiting = (
                await session.exec(
                    select(func.count(), func.sum(PurchaseOrder.total)).where(
                        PurchaseOrder.tenant == ctx.tenant,
                        PurchaseOrder.status == PurchaseOrderStatus.AWAITING_APPROVAL,
                    )
                )
            ).one()
            open_sales = (
                await session.exec(
                    select(func.count(), func.sum(SalesOrder.total)).where(
                        SalesOrder.tenant == ctx.tenant,
                        SalesOrder.status == SalesOrderStatus.OPEN,
                    )
                )
            ).one()
            low_stock = (
                await session.exec(
                    select(func.count()).where(
                        Item.tenant == ctx.tenant,
                        col(Item.on_hand) <= col(Item.reorder_level),
                    )
                )
            ).one()
            revenue = await account_balances(session, ctx.tenant, [Ledger.REVENUE], since=since)
        revenue_30d = -revenue.get(Ledger.REVENUE, ZERO)
        result = {
            "as_of": day.isoformat(),
            "currency": ctx.currency,
            "locale": ctx.locale,
            "cash": amount_text(cash),
            "receivables": {
                "total": amount_text(receivables.total),
                "overdue": amount_text(receivables.overdue),
            },
            "payables": {
                "total": amount_text(payables.total),
                "overdue": amount_text(payables.overdue),
            },
            "purchase_orders_awaiting_approval": {
                "count": awaiting[0],
                "total": amount_text(awaiting[1] or ZERO),
            },
            "open_sales_orders": {
                "count": open_sales[0],
                "total": amount_text(open_sales[1] or ZERO),
            },
            "items_below_reorder": low_stock,
            "revenue_last_30_days": {"since": since.isoformat(), "total": amount_text(revenue_30d)},
        }

        def money(value: Decimal) -> str:
            return format_money(value, ctx.currency, ctx.locale)

        summary = (
            f"cash {money(cash)}, receivables {money(receivables.total)}, "
            f"payables {money(payables.total)}, {awaiting[0]} POs awaiting approval"
        )
        return ToolReturn(result, summary, view=dashboard_view(result))


async def _quantities_on_order(session: AsyncSession, tenant: str) -> dict[int, Decimal]:
    # Approved orders are on their way; drafts and orders awaiting approval are not yet.
    rows = await session.exec(
        select(PurchaseOrderLine.item_id, func.sum(PurchaseOrderLine.quantity))
        .join(PurchaseOrder, col(PurchaseOrder.id) == col(PurchaseOrderLine.purchase_order_id))
        .where(
            PurchaseOrderLine.tenant == tenant,
            PurchaseOrder.status == PurchaseOrderStatus.APPROVED,
        )
        .group_by(col(PurchaseOrderLine.item_id))
    )
    return {item_id: Decimal(quantity) for item_id, quantity in rows}


def _aging_summary(label: str, report: AgingReport, ctx: ToolContext) -> str:
    def money(value: Decimal) -> str:
        return format_money(value, ctx.currency, ctx.locale)

    return (
        f"{label} {money(report.total)} open, {money(report.overdue)} overdue "
        f"(90+ days: {money(report.totals['90+'])})"
    )
