"""Analytics questions over the books: purchase orders of a period, by status."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Literal

from sqlmodel import col, select

from examples.erp.companies import Today
from examples.erp.models import ZERO, PurchaseOrder, PurchaseOrderStatus, Supplier
from examples.erp.money import amount_text, format_money
from examples.erp.queries import QUERY_ROLES
from examples.erp.views import orders_by_status_view, purchase_orders_table
from server.tools.context import ToolContext
from server.tools.registry import ToolPack, ToolReturn

__all__ = ["period_bounds", "register_analytics"]

Period = Literal["month", "quarter", "year"]


def period_bounds(day: date, period: Period) -> tuple[date, date]:
    """The first and last day of the calendar month, quarter or year holding ``day``."""
    if period == "month":
        start = day.replace(day=1)
    elif period == "quarter":
        start = date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    else:
        start = date(day.year, 1, 1)
    months = {"month": 1, "quarter": 3, "year": 12}[period]
    month_index = start.month - 1 + months
    following = date(start.year + month_index // 12, month_index % 12 + 1, 1)
    return start, following - timedelta(days=1)


def register_analytics(pack: ToolPack, today: Today) -> None:
    """Declare the analytics queries on `pack`, reading the current day from `today`."""

    @pack.query(roles=QUERY_ROLES["list_purchase_orders"])
    async def purchase_orders_by_status(ctx: ToolContext, period: Period = "quarter") -> ToolReturn:
        """Purchase orders placed this month, quarter or year, counted and totalled by status.

        Args:
            period: the calendar month, quarter or year of today; the quarter when left out.
        """
        first, last = period_bounds(today(), period)
        async with ctx.db() as session:
            rows = (
                await session.exec(
                    select(PurchaseOrder, Supplier.name)
                    .join(Supplier, col(Supplier.id) == col(PurchaseOrder.supplier_id))
                    .where(
                        PurchaseOrder.tenant == ctx.tenant,
                        col(PurchaseOrder.order_date) >= first,
                        col(PurchaseOrder.order_date) <= last,
                    )
                    .order_by(col(PurchaseOrder.order_date), col(PurchaseOrder.number))
                )
            ).all()
        counts = dict.fromkeys(PurchaseOrderStatus, 0)
        totals: dict[PurchaseOrderStatus, Decimal] = dict.fromkeys(PurchaseOrderStatus, ZERO)
        for order, _ in rows:
            status = PurchaseOrderStatus(order.status)
            counts[status] += 1
            totals[status] += order.total
        total = sum(totals.values(), ZERO)
        result = {
            "currency": ctx.currency,
            "locale": ctx.locale,
            "period": {"name": period, "from": first.isoformat(), "to": last.isoformat()},
            "count": len(rows),
            "total": amount_text(total),
            "statuses": [
                {
                    "status": status.value,
                    "count": counts[status],
                    "total": amount_text(totals[status]),
                }
                for status in PurchaseOrderStatus
            ],
            "purchase_orders": [
                {
                    "number": order.number,
                    "supplier": name,
                    "status": str(order.status),
                    "order_date": order.order_date.isoformat(),
                    "expected_date": order.expected_date.isoformat(),
                    "total": amount_text(order.total),
                }
                for order, name in rows
            ],
        }
        summary = (
            f"{len(rows)} purchase order{'s' if len(rows) != 1 else ''} this {period}, "
            f"total {format_money(total, ctx.currency, ctx.locale)}"
        )
        return ToolReturn(
            result,
            summary,
            view=orders_by_status_view(result),
            export=purchase_orders_table(result, f"Purchase orders this {period}"),
        )
