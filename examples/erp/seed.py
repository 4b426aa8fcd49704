"""Create a demo company's books from `seed_data`, dated relative to a given day.

The data is fixed, so two runs on the same day produce identical books; dates move with
"today" so the aging buckets and overdue orders always look the same. Everything is booked
through `documents` and `ledger`, the code the tools use, so the seeded ledger balances and
agrees with the sub-ledgers exactly as live data does.
"""

from datetime import date, timedelta
from decimal import Decimal

from sqlmodel.ext.asyncio.session import AsyncSession

from examples.erp.companies import CHART_OF_ACCOUNTS, Ledger, profile
from examples.erp.documents import (
    cancel_invoice,
    record_bill,
    record_invoice,
    record_payment,
    record_receipt,
)
from examples.erp.ledger import Posting, next_number, post_voucher
from examples.erp.models import (
    ZERO,
    Account,
    BankAccount,
    Company,
    Customer,
    DocumentCounter,
    Item,
    PurchaseOrder,
    PurchaseOrderLine,
    PurchaseOrderStatus,
    SalesOrder,
    SalesOrderLine,
    SalesOrderStatus,
    Supplier,
)
from examples.erp.money import cents
from examples.erp.seed_data import SEEDS, Line, TenantSeed

__all__ = ["SEEDED_TENANTS", "is_seeded", "seed_tenant"]

SEEDED_TENANTS: tuple[str, ...] = tuple(SEEDS)
_BOOKS_OPENED_DAYS_AGO = 365


async def is_seeded(session: AsyncSession, tenant: str) -> bool:
    """Whether `tenant` already has its company row (and so its books)."""
    return (await session.get(Company, tenant)) is not None


async def seed_tenant(session: AsyncSession, tenant: str, today: date) -> None:
    """Create the demo books of `tenant` (``"acme"`` or ``"globex"``) as of `today`.

    The caller commits. The company row is inserted first, so a second worker seeding the same
    tenant at the same moment fails on its primary key instead of doubling the data.

    Raises:
        KeyError: there is no demo data for `tenant`.
    """
    data = SEEDS[tenant]
    company = profile(tenant)
    session.add(Company(tenant=tenant, name=company.name, currency=company.currency))
    await session.flush()
    session.add_all(
        Account(tenant=tenant, code=code, name=name, kind=kind)
        for code, name, kind in CHART_OF_ACCOUNTS
    )
    banks = [
        BankAccount(
            tenant=tenant, name=b.name, bank=b.bank, number=b.number, account_code=b.account_code
        )
        for b in data.banks
    ]
    customers = {
        c.name: Customer(
            tenant=tenant,
            name=c.name,
            email=c.email,
            credit_limit=c.credit_limit,
            payment_terms_days=c.terms_days,
        )
        for c in data.customers
    }
    suppliers = {
        s.name: Supplier(tenant=tenant, name=s.name, email=s.email, payment_terms_days=s.terms_days)
        for s in data.suppliers
    }
    items = {
        i.sku: Item(
            tenant=tenant,
            sku=i.sku,
            name=i.name,
            unit=i.unit,
            on_hand=Decimal(i.on_hand),
            reorder_level=Decimal(i.reorder_level),
            reorder_quantity=Decimal(i.reorder_quantity),
            unit_cost=Decimal(i.unit_cost),
            unit_price=Decimal(i.unit_price),
        )
        for i in data.items
    }
    session.add_all([*banks, *customers.values(), *suppliers.values(), *items.values()])
    await session.flush()

    await _open_books(session, tenant, data, banks, items, today)
    purchase_orders = await _purchase_orders(session, tenant, data, suppliers, items, today)
    await _sales_orders(session, tenant, data, customers, items, today)
    await _invoices(session, data, customers, banks[0], today)
    await _bills(session, data, suppliers, purchase_orders, banks[0], today)
    await session.flush()


async def _open_books(
    session: AsyncSession,
    tenant: str,
    data: TenantSeed,
    banks: list[BankAccount],
    items: dict[str, Item],
    today: date,
) -> None:
    # The stock on hand is what the company holds today. Bills booked to inventory below add
    # to it, so the opening inventory is today's valuation less those bills.
    stock_value = sum((cents(i.on_hand * i.unit_cost) for i in items.values()), ZERO)
    billed_to_stock = sum(
        (b.total for b in data.bills if b.expense_account == Ledger.INVENTORY), ZERO
    )
    opening_stock = stock_value - billed_to_stock
    if opening_stock < 0:
        raise RuntimeError(f"seed data of {tenant!r} bills more stock than it holds")
    openings = [
        Posting(bank.account_code, debit=seed.opening)
        for bank, seed in zip(banks, data.banks, strict=True)
    ]
    equity = sum((s.opening for s in data.banks), ZERO) + opening_stock
    await post_voucher(
        session,
        tenant,
        entry_date=today - timedelta(days=_BOOKS_OPENED_DAYS_AGO),
        memo="Opening balances",
        source="opening",
        reference="OPENING",
        postings=[
            *openings,
            Posting(Ledger.INVENTORY, debit=opening_stock),
            Posting(Ledger.EQUITY, credit=equity),
        ],
    )


def _priced(lines: tuple[Line, ...], items: dict[str, Item]) -> list[tuple[Item, Decimal, Decimal]]:
    return [(items[sku], Decimal(qty), Decimal(price)) for sku, qty, price in lines]


async def _purchase_orders(
    session: AsyncSession,
    tenant: str,
    data: TenantSeed,
    suppliers: dict[str, Supplier],
    items: dict[str, Item],
    today: date,
) -> dict[str, PurchaseOrder]:
    orders: dict[str, PurchaseOrder] = {}
    for seed in data.purchase_orders:
        supplier = suppliers[seed.supplier]
        assert supplier.id is not None
        lines = _priced(seed.lines, items)
        ordered = today - timedelta(days=seed.ordered_days_ago)
        decided = seed.status not in (
            PurchaseOrderStatus.DRAFT,
            PurchaseOrderStatus.AWAITING_APPROVAL,
        )
        order = PurchaseOrder(
            tenant=tenant,
            number=seed.number,
            supplier_id=supplier.id,
            status=seed.status,
            order_date=ordered,
            expected_date=today + timedelta(days=seed.expected_in_days),
            total=sum((cents(qty * price) for _, qty, price in lines), ZERO),
            requested_by=seed.requested_by,
            decided_by=seed.decided_by,
            decided_on=min(ordered + timedelta(days=1), today) if decided else None,
            decision_note=seed.note,
        )
        session.add(order)
        await session.flush()
        assert order.id is not None
        session.add_all(
            PurchaseOrderLine(
                tenant=tenant,
                purchase_order_id=order.id,
                item_id=item.id,
                quantity=qty,
                unit_price=price,
                amount=cents(qty * price),
            )
            for item, qty, price in lines
            if item.id is not None
        )
        orders[seed.number] = order
    # New orders continue after the highest seeded number.
    last = max(int(number.split("-")[1]) for number in orders)
    session.add(DocumentCounter(tenant=tenant, series="PO", next_value=last + 1))
    return orders


async def _sales_orders(
    session: AsyncSession,
    tenant: str,
    data: TenantSeed,
    customers: dict[str, Customer],
    items: dict[str, Item],
    today: date,
) -> None:
    rate = profile(tenant).tax_rate
    for seed in data.sales_orders:
        customer = customers[seed.customer]
        assert customer.id is not None
        lines = _priced(seed.lines, items)
        subtotal = sum((cents(qty * price) for _, qty, price in lines), ZERO)
        tax = cents(subtotal * rate)
        order = SalesOrder(
            tenant=tenant,
            number=await next_number(session, tenant, "SO"),
            customer_id=customer.id,
            status=SalesOrderStatus.OPEN,
            order_date=today - timedelta(days=seed.ordered_days_ago),
            tax_rate=rate,
            subtotal=subtotal,
            tax=tax,
            total=subtotal + tax,
            created_by="demo",
        )
        session.add(order)
        await session.flush()
        assert order.id is not None
        session.add_all(
            SalesOrderLine(
                tenant=tenant,
                sales_order_id=order.id,
                item_id=item.id,
                quantity=qty,
                unit_price=price,
                amount=cents(qty * price),
            )
            for item, qty, price in lines
            if item.id is not None
        )


async def _invoices(
    session: AsyncSession,
    data: TenantSeed,
    customers: dict[str, Customer],
    bank: BankAccount,
    today: date,
) -> None:
    for seed in data.invoices:
        customer = customers[seed.customer]
        issued = today - timedelta(days=seed.issued_days_ago)
        tax = cents(seed.subtotal * profile(customer.tenant).tax_rate)
        invoice = await record_invoice(
            session,
            customer,
            issue_date=issued,
            due_date=issued + timedelta(days=seed.terms_days),
            subtotal=seed.subtotal,
            tax=tax,
        )
        if seed.cancelled:
            await cancel_invoice(session, invoice, on=issued + timedelta(days=3))
        elif seed.paid:
            await record_receipt(
                session,
                customer,
                bank,
                on=issued + timedelta(days=seed.issued_days_ago // 2),
                allocations=[(invoice, seed.paid)],
                recorded_by="demo",
            )


async def _bills(
    session: AsyncSession,
    data: TenantSeed,
    suppliers: dict[str, Supplier],
    purchase_orders: dict[str, PurchaseOrder],
    bank: BankAccount,
    today: date,
) -> None:
    for seed in data.bills:
        supplier = suppliers[seed.supplier]
        issued = today - timedelta(days=seed.issued_days_ago)
        order = purchase_orders.get(seed.purchase_order) if seed.purchase_order else None
        bill = await record_bill(
            session,
            supplier,
            description=seed.description,
            expense_account=seed.expense_account,
            issue_date=issued,
            due_date=issued + timedelta(days=seed.terms_days),
            total=seed.total,
            purchase_order_id=order.id if order is not None else None,
        )
        if seed.paid:
            await record_payment(
                session,
                supplier,
                bank,
                on=issued + timedelta(days=seed.issued_days_ago // 2),
                allocations=[(bill, seed.paid)],
                recorded_by="demo",
            )
