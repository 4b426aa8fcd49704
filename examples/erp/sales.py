"""Actions of the sales cycle: create a customer, take a sales order, invoice it.

Each action's summary runs the same checks as the action itself (without locks), so the user
is never asked to confirm something that would be refused; the action checks again under lock
because the books may have changed while the user was deciding.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, Field
from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from examples.erp.companies import Today, profile
from examples.erp.documents import record_invoice
from examples.erp.guards import guarded_update
from examples.erp.ledger import next_number
from examples.erp.lookup import document_number, find_customer, find_item
from examples.erp.models import (
    ZERO,
    Company,
    Customer,
    DocumentStatus,
    Invoice,
    Item,
    SalesOrder,
    SalesOrderLine,
    SalesOrderStatus,
)
from examples.erp.money import (
    amount_text,
    cents,
    format_money,
    quantity_text,
    require_amount,
    require_quantity,
)
from server.tools.context import ToolContext
from server.tools.errors import ToolError
from server.tools.registry import ToolPack, ToolReturn

__all__ = ["SALES_ROLES", "SalesOrderLineInput", "register_sales"]

SALES_ROLES = frozenset({"admin", "sales"})
INVOICING_ROLES = frozenset({"admin", "finance"})
_MAX_LINES = 50
# The widths of the customer's name and email columns.
_MAX_NAME_CHARS = 200
_MAX_EMAIL_CHARS = 254
_RATE_STEP = Decimal("0.0001")
# A fraction (0.19) that the confirmation card shows as a percentage (19 %).
_PERCENT: dict[str, Any] = {"x-parley-type": "percent"}


class SalesOrderLineInput(BaseModel):
    """One line of a sales order."""

    item: str = Field(description="item name, the start of it, or its SKU")
    quantity: Decimal = Field(description="how many units")
    unit_price: Decimal | None = Field(
        default=None,
        description="price per unit; the item's list price when left out",
        # Shown as money in the company currency on the confirmation card.
        json_schema_extra={"x-parley-type": "money"},
    )


@dataclass(frozen=True, slots=True)
class _PricedLine:
    item: Item
    quantity: Decimal
    unit_price: Decimal

    @property
    def amount(self) -> Decimal:
        return cents(self.quantity * self.unit_price)


@dataclass(frozen=True, slots=True)
class _PricedOrder:
    customer: Customer
    lines: list[_PricedLine]
    tax_rate: Decimal
    subtotal: Decimal
    tax: Decimal
    total: Decimal


def _money(ctx: ToolContext, value: Decimal) -> str:
    return format_money(value, ctx.currency, ctx.locale)


# -- customers --------------------------------------------------------------------------------


def _check_new_customer(name: str, email: str | None, credit_limit: Decimal | None) -> None:
    if not name.strip():
        raise ToolError("a customer needs a name")
    if len(" ".join(name.split())) > _MAX_NAME_CHARS:
        raise ToolError(f"a customer name has at most {_MAX_NAME_CHARS} characters")
    if email is not None and len(email.strip()) > _MAX_EMAIL_CHARS:
        raise ToolError(f"an email address has at most {_MAX_EMAIL_CHARS} characters")
    if email is not None and (email.count("@") != 1 or " " in email.strip()):
        raise ToolError(f"{email!r} is not an email address")
    if credit_limit is not None:
        require_amount(credit_limit, "credit_limit", allow_zero=True)


async def _refuse_duplicate(session: AsyncSession, tenant: str, name: str) -> None:
    names = (await session.exec(select(Customer.name).where(Customer.tenant == tenant))).all()
    wanted = " ".join(name.split()).casefold()
    for existing in names:
        if existing.casefold() == wanted:
            raise ToolError(f"customer {existing!r} already exists", code="duplicate")


# -- sales orders -----------------------------------------------------------------------------


async def _price_order(
    session: AsyncSession,
    ctx: ToolContext,
    customer_name: str,
    lines: list[SalesOrderLineInput],
    tax_rate: Decimal | None,
) -> _PricedOrder:
    """Resolve names, price the lines and check stock and credit: everything but writing."""
    if not lines:
        raise ToolError("a sales order needs at least one line")
    if len(lines) > _MAX_LINES:
        raise ToolError(f"a sales order has at most {_MAX_LINES} lines")
    company = profile(ctx.tenant)
    rate = company.tax_rate if tax_rate is None else tax_rate
    if not rate.is_finite() or rate < 0 or rate >= 1:
        raise ToolError("tax_rate is a fraction between 0 and 1, e.g. 0.19 for 19 %")
    if rate != rate.quantize(_RATE_STEP):
        raise ToolError("tax_rate has more than four decimal places")
    customer = await find_customer(session, ctx.tenant, customer_name)
    priced: list[_PricedLine] = []
    for number, line in enumerate(lines, start=1):
        item = await find_item(session, ctx.tenant, line.item)
        quantity = require_quantity(line.quantity, f"quantity of line {number}")
        price = (
            item.unit_price
            if line.unit_price is None
            else require_amount(line.unit_price, f"unit_price of line {number}", allow_zero=True)
        )
        priced.append(_PricedLine(item, quantity, price))
    _check_stock(priced)
    subtotal = sum((line.amount for line in priced), ZERO)
    tax = cents(subtotal * rate)
    order = _PricedOrder(customer, priced, rate, subtotal, tax, subtotal + tax)
    await _check_credit(session, ctx, order)
    return order


def _check_stock(lines: list[_PricedLine]) -> None:
    wanted: dict[int, Decimal] = defaultdict(lambda: ZERO)
    items: dict[int, Item] = {}
    for line in lines:
        assert line.item.id is not None
        wanted[line.item.id] += line.quantity
        items[line.item.id] = line.item
    for item_id, quantity in wanted.items():
        item = items[item_id]
        if quantity > item.on_hand:
            raise ToolError(
                f"not enough stock of {item.name} ({item.sku}): "
                f"{quantity_text(item.on_hand)} {item.unit} on hand, "
                f"{quantity_text(quantity)} ordered",
                code="insufficient_stock",
            )


async def _check_credit(session: AsyncSession, ctx: ToolContext, order: _PricedOrder) -> None:
    # Exposure is what the customer owes on open invoices plus orders not invoiced yet.
    customer = order.customer
    owed = (
        await session.exec(
            select(func.sum(col(Invoice.total) - col(Invoice.amount_paid))).where(
                Invoice.tenant == ctx.tenant,
                Invoice.customer_id == customer.id,
                col(Invoice.status).in_((DocumentStatus.OPEN, DocumentStatus.PARTIALLY_PAID)),
            )
        )
    ).one()
    ordered = (
        await session.exec(
            select(func.sum(SalesOrder.total)).where(
                SalesOrder.tenant == ctx.tenant,
                SalesOrder.customer_id == customer.id,
                SalesOrder.status == SalesOrderStatus.OPEN,
            )
        )
    ).one()
    exposure = cents(owed or ZERO) + cents(ordered or ZERO) + order.total
    if exposure > customer.credit_limit:
        raise ToolError(
            f"an order of {_money(ctx, order.total)} would take {customer.name} to "
            f"{_money(ctx, exposure)} owed and on order, above its credit limit of "
            f"{_money(ctx, customer.credit_limit)}",
            code="credit_limit",
        )


def _order_summary(ctx: ToolContext, order: _PricedOrder) -> str:
    lines = ", ".join(
        f"{quantity_text(line.quantity)} x {line.item.name} at {_money(ctx, line.unit_price)}"
        for line in order.lines
    )
    return (
        f"Create a sales order for {order.customer.name}: {lines}; total "
        f"{_money(ctx, order.total)} including {_money(ctx, order.tax)} tax"
    )


# -- invoicing --------------------------------------------------------------------------------


async def _load_sales_order(
    session: AsyncSession, tenant: str, number_text: str, *, lock: bool = False
) -> tuple[SalesOrder, Customer, list[tuple[SalesOrderLine, Item]]]:
    number = document_number(number_text, "SO")
    query = select(SalesOrder).where(SalesOrder.tenant == tenant, SalesOrder.number == number)
    if lock:
        query = query.with_for_update()  # Invoice an order once, however many approve it.
    order = (await session.exec(query)).one_or_none()
    if order is None:
        raise ToolError(f"no sales order {number}", code="not_found")
    if order.status != SalesOrderStatus.OPEN:
        invoice = (
            await session.exec(
                select(Invoice.number).where(
                    Invoice.tenant == tenant, Invoice.sales_order_id == order.id
                )
            )
        ).first()
        raise ToolError(
            f"sales order {number} is already invoiced ({invoice})", code="already_invoiced"
        )
    customer = await session.get(Customer, order.customer_id)
    assert customer is not None
    line_query = (
        select(SalesOrderLine, Item)
        .join(Item, col(Item.id) == col(SalesOrderLine.item_id))
        .where(SalesOrderLine.tenant == tenant, SalesOrderLine.sales_order_id == order.id)
        .order_by(col(Item.id))
    )
    if lock:
        # The stock leaves the warehouse with the invoice: lock the items it comes from.
        line_query = line_query.with_for_update(of=Item)
    lines = list((await session.exec(line_query)).all())
    _check_stock([_PricedLine(item, line.quantity, line.unit_price) for line, item in lines])
    return order, customer, lines


def register_sales(pack: ToolPack, today: Today) -> None:
    """Declare the customer, sales-order and invoicing actions on `pack`."""

    async def customer_summary(ctx: ToolContext, params: dict[str, Any]) -> str:
        limit_param = params.get("credit_limit")
        credit_limit = Decimal(limit_param) if limit_param is not None else None
        _check_new_customer(params["name"], params.get("email"), credit_limit)
        async with ctx.db() as session:
            await _refuse_duplicate(session, ctx.tenant, params["name"])
        limit = profile(ctx.tenant).credit_limit if credit_limit is None else credit_limit
        email = f" ({params['email']})" if params.get("email") else ""
        return (
            f"Create customer {' '.join(params['name'].split())}{email} "
            f"with a credit limit of {_money(ctx, limit)}"
        )

    @pack.action(summary=customer_summary, roles=SALES_ROLES)
    async def create_customer(
        ctx: ToolContext,
        name: str,
        email: str | None = None,
        credit_limit: Decimal | None = None,
    ) -> ToolReturn:
        """Create a customer.

        Args:
            name: the customer's name; it must not exist yet.
            email: where invoices go.
            credit_limit: most the customer may owe and have on order; the company default
                when left out.
        """
        _check_new_customer(name, email, credit_limit)
        clean_name = " ".join(name.split())
        async with ctx.db() as session:
            # Lock the company row so two people creating the same customer at once queue up
            # and the second one sees the first one's customer.
            await session.exec(
                select(Company).where(Company.tenant == ctx.tenant).with_for_update()
            )
            await _refuse_duplicate(session, ctx.tenant, clean_name)
            customer = Customer(
                tenant=ctx.tenant,
                name=clean_name,
                email=email.strip() if email else None,
                credit_limit=(
                    profile(ctx.tenant).credit_limit if credit_limit is None else credit_limit
                ),
                payment_terms_days=30,
            )
            session.add(customer)
            await session.flush()
            result = {
                "id": customer.id,
                "name": customer.name,
                "email": customer.email,
                "credit_limit": amount_text(customer.credit_limit),
                "currency": ctx.currency,
                "payment_terms_days": customer.payment_terms_days,
            }
            await session.commit()
        return ToolReturn(result, f"customer {clean_name} created")

    async def sales_order_summary(ctx: ToolContext, params: dict[str, Any]) -> str:
        lines = [SalesOrderLineInput.model_validate(line) for line in params["lines"]]
        rate = Decimal(params["tax_rate"]) if "tax_rate" in params else None
        async with ctx.db() as session:
            order = await _price_order(session, ctx, params["customer"], lines, rate)
        return _order_summary(ctx, order)

    @pack.action(summary=sales_order_summary, roles=SALES_ROLES)
    async def create_sales_order(
        ctx: ToolContext,
        customer: str,
        lines: list[SalesOrderLineInput],
        tax_rate: Annotated[Decimal | None, Field(json_schema_extra=_PERCENT)] = None,
    ) -> ToolReturn:
        """Create a sales order for a customer; it is invoiced later with post_ar_invoice.

        Refused when an item lacks the stock or the order would take the customer above
        their credit limit.

        Args:
            customer: customer name or the start of it.
            lines: the items ordered.
            tax_rate: sales tax / VAT as a fraction (0.19 for 19 %); the company's default
                rate when left out.
        """
        async with ctx.db() as session:
            order = await _price_order(session, ctx, customer, lines, tax_rate)
            assert order.customer.id is not None
            sales_order = SalesOrder(
                tenant=ctx.tenant,
                number=await next_number(session, ctx.tenant, "SO"),
                customer_id=order.customer.id,
                status=SalesOrderStatus.OPEN,
                order_date=today(),
                tax_rate=order.tax_rate,
                subtotal=order.subtotal,
                tax=order.tax,
                total=order.total,
                created_by=ctx.user,
            )
            session.add(sales_order)
            await session.flush()
            assert sales_order.id is not None
            session.add_all(
                SalesOrderLine(
                    tenant=ctx.tenant,
                    sales_order_id=sales_order.id,
                    item_id=line.item.id,
                    quantity=line.quantity,
                    unit_price=line.unit_price,
                    amount=line.amount,
                )
                for line in order.lines
                if line.item.id is not None
            )
            result = {
                "number": sales_order.number,
                "customer": order.customer.name,
                "status": sales_order.status,
                "currency": ctx.currency,
                "lines": [
                    {
                        "sku": line.item.sku,
                        "item": line.item.name,
                        "quantity": quantity_text(line.quantity),
                        "unit_price": amount_text(line.unit_price),
                        "amount": amount_text(line.amount),
                    }
                    for line in order.lines
                ],
                "subtotal": amount_text(order.subtotal),
                "tax_rate": f"{order.tax_rate.normalize():f}",
                "tax": amount_text(order.tax),
                "total": amount_text(order.total),
            }
            summary = f"{sales_order.number} for {order.customer.name}, {_money(ctx, order.total)}"
            await session.commit()
        return ToolReturn(result, summary)

    async def invoice_summary(ctx: ToolContext, params: dict[str, Any]) -> str:
        async with ctx.db() as session:
            order, customer, _ = await _load_sales_order(
                session, ctx.tenant, params["sales_order_number"]
            )
        due = today() + timedelta(days=customer.payment_terms_days)
        return (
            f"Post an invoice for sales order {order.number} to {customer.name}: "
            f"{_money(ctx, order.total)} including {_money(ctx, order.tax)} tax, "
            f"due {due.isoformat()}"
        )

    @pack.action(summary=invoice_summary, roles=INVOICING_ROLES)
    async def post_ar_invoice(ctx: ToolContext, sales_order_number: str) -> ToolReturn:
        """Invoice an open sales order: book the receivable, revenue and tax, ship the stock.

        The journal voucher debits accounts receivable with the total and credits revenue
        and sales tax; the cost of the goods moves from inventory to cost of goods sold.

        Args:
            sales_order_number: the order number, e.g. SO-2001.
        """
        day = today()
        async with ctx.db() as session:
            order, customer, lines = await _load_sales_order(
                session, ctx.tenant, sales_order_number, lock=True
            )
            cost = ZERO
            for line, item in lines:
                # Take the stock only if it is still there: another invoice may have shipped it.
                await guarded_update(
                    session,
                    Item,
                    item.id,
                    col(Item.on_hand) >= line.quantity,
                    values={"on_hand": col(Item.on_hand) - line.quantity},
                    what=f"the stock of {item.name}",
                )
                cost += cents(line.quantity * item.unit_cost)
            invoice = await record_invoice(
                session,
                customer,
                issue_date=day,
                due_date=day + timedelta(days=customer.payment_terms_days),
                subtotal=order.subtotal,
                tax=order.tax,
                cost_of_sales=cost,
                sales_order_id=order.id,
            )
            await guarded_update(
                session,
                SalesOrder,
                order.id,
                SalesOrder.status == SalesOrderStatus.OPEN,
                values={"status": SalesOrderStatus.INVOICED},
                what=f"sales order {order.number}",
            )
            result = {
                "invoice_number": invoice.number,
                "sales_order_number": order.number,
                "customer": customer.name,
                "issue_date": invoice.issue_date.isoformat(),
                "due_date": invoice.due_date.isoformat(),
                "currency": ctx.currency,
                "subtotal": amount_text(invoice.subtotal),
                "tax": amount_text(invoice.tax),
                "total": amount_text(invoice.total),
                "cost_of_sales": amount_text(cost),
            }
            summary = f"{invoice.number} to {customer.name}, {_money(ctx, invoice.total)}"
            await session.commit()
        return ToolReturn(result, summary)
