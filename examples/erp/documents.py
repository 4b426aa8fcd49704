"""Recording invoices, bills, receipts and payments together with their journal vouchers.

These functions do the bookkeeping and nothing else: the tools check the user's input and lock
the rows first, and the seed uses the same functions, so demo data and live data are booked
the same way. Callers commit.
"""

from collections.abc import Sequence
from datetime import date
from decimal import Decimal

from sqlmodel.ext.asyncio.session import AsyncSession

from examples.erp.companies import Ledger
from examples.erp.guards import guarded_update
from examples.erp.ledger import Posting, next_number, post_voucher
from examples.erp.models import (
    ZERO,
    BankAccount,
    Bill,
    Customer,
    DocumentStatus,
    Invoice,
    Payment,
    PaymentAllocation,
    Receipt,
    ReceiptAllocation,
    Supplier,
)

__all__ = [
    "apply_settlement",
    "cancel_invoice",
    "record_bill",
    "record_invoice",
    "record_payment",
    "record_receipt",
]


async def apply_settlement(
    session: AsyncSession, document: Invoice | Bill, amount: Decimal
) -> None:
    """Add `amount` to what was paid on `document` and update its status.

    Raises:
        RuntimeError: the amount would overpay the document (callers check this first).
        ToolError: the document was settled by someone else since it was read.
    """
    paid = document.amount_paid + amount
    if amount <= 0 or paid > document.total:
        raise RuntimeError(f"{document.number}: cannot apply {amount}")
    status = DocumentStatus.PAID if paid == document.total else DocumentStatus.PARTIALLY_PAID
    model = type(document)
    await guarded_update(
        session,
        model,
        document.id,
        model.amount_paid == document.amount_paid,
        values={"amount_paid": paid, "status": status},
        what=f"{'invoice' if model is Invoice else 'bill'} {document.number}",
    )


async def record_invoice(
    session: AsyncSession,
    customer: Customer,
    *,
    issue_date: date,
    due_date: date,
    subtotal: Decimal,
    tax: Decimal,
    cost_of_sales: Decimal = ZERO,
    sales_order_id: int | None = None,
) -> Invoice:
    """Issue an invoice: debit receivables, credit revenue and sales tax; book the cost of the
    goods shipped (debit cost of sales, credit inventory) when there is one."""
    tenant = customer.tenant
    assert customer.id is not None
    number = await next_number(session, tenant, "INV")
    total = subtotal + tax
    voucher = await post_voucher(
        session,
        tenant,
        entry_date=issue_date,
        memo=f"Invoice {number} to {customer.name}",
        source="invoice",
        reference=number,
        postings=[
            Posting(Ledger.AR, debit=total),
            Posting(Ledger.REVENUE, credit=subtotal),
            Posting(Ledger.SALES_TAX, credit=tax),
            Posting(Ledger.COST_OF_SALES, debit=cost_of_sales),
            Posting(Ledger.INVENTORY, credit=cost_of_sales),
        ],
    )
    assert voucher.id is not None
    invoice = Invoice(
        tenant=tenant,
        number=number,
        customer_id=customer.id,
        sales_order_id=sales_order_id,
        issue_date=issue_date,
        due_date=due_date,
        subtotal=subtotal,
        tax=tax,
        total=total,
        status=DocumentStatus.OPEN,
        voucher_id=voucher.id,
    )
    session.add(invoice)
    await session.flush()
    return invoice


async def cancel_invoice(session: AsyncSession, invoice: Invoice, *, on: date) -> None:
    """Cancel an unpaid invoice by reversing its receivable, revenue and tax."""
    if invoice.amount_paid:
        raise RuntimeError(f"{invoice.number}: a paid invoice cannot be cancelled")
    await post_voucher(
        session,
        invoice.tenant,
        entry_date=on,
        memo=f"Cancellation of invoice {invoice.number}",
        source="invoice_cancel",
        reference=invoice.number,
        postings=[
            Posting(Ledger.AR, credit=invoice.total),
            Posting(Ledger.REVENUE, debit=invoice.subtotal),
            Posting(Ledger.SALES_TAX, debit=invoice.tax),
        ],
    )
    invoice.status = DocumentStatus.CANCELLED


async def record_receipt(
    session: AsyncSession,
    customer: Customer,
    bank: BankAccount,
    *,
    on: date,
    allocations: Sequence[tuple[Invoice, Decimal]],
    recorded_by: str,
) -> Receipt:
    """Receive money from a customer: debit the bank, credit receivables, settle the invoices."""
    tenant = customer.tenant
    assert customer.id is not None
    assert bank.id is not None
    amount = sum((part for _, part in allocations), ZERO)
    number = await next_number(session, tenant, "RC")
    voucher = await post_voucher(
        session,
        tenant,
        entry_date=on,
        memo=f"Receipt {number} from {customer.name}",
        source="receipt",
        reference=number,
        postings=[Posting(bank.account_code, debit=amount), Posting(Ledger.AR, credit=amount)],
    )
    assert voucher.id is not None
    receipt = Receipt(
        tenant=tenant,
        number=number,
        customer_id=customer.id,
        bank_account_id=bank.id,
        receipt_date=on,
        amount=amount,
        voucher_id=voucher.id,
        recorded_by=recorded_by,
    )
    session.add(receipt)
    await session.flush()
    assert receipt.id is not None
    for invoice, part in allocations:
        assert invoice.id is not None
        await apply_settlement(session, invoice, part)
        session.add(
            ReceiptAllocation(
                tenant=tenant, receipt_id=receipt.id, invoice_id=invoice.id, amount=part
            )
        )
    await session.flush()
    return receipt


async def record_bill(
    session: AsyncSession,
    supplier: Supplier,
    *,
    description: str,
    expense_account: str,
    issue_date: date,
    due_date: date,
    total: Decimal,
    purchase_order_id: int | None = None,
) -> Bill:
    """Book a supplier's bill: debit inventory or an expense account, credit payables."""
    tenant = supplier.tenant
    assert supplier.id is not None
    number = await next_number(session, tenant, "BILL")
    voucher = await post_voucher(
        session,
        tenant,
        entry_date=issue_date,
        memo=f"Bill {number} from {supplier.name}: {description}",
        source="bill",
        reference=number,
        postings=[Posting(expense_account, debit=total), Posting(Ledger.AP, credit=total)],
    )
    assert voucher.id is not None
    bill = Bill(
        tenant=tenant,
        number=number,
        supplier_id=supplier.id,
        purchase_order_id=purchase_order_id,
        description=description,
        issue_date=issue_date,
        due_date=due_date,
        total=total,
        status=DocumentStatus.OPEN,
        voucher_id=voucher.id,
    )
    session.add(bill)
    await session.flush()
    return bill


async def record_payment(
    session: AsyncSession,
    supplier: Supplier,
    bank: BankAccount,
    *,
    on: date,
    allocations: Sequence[tuple[Bill, Decimal]],
    recorded_by: str,
) -> Payment:
    """Pay a supplier: debit payables, credit the bank, settle the bills."""
    tenant = supplier.tenant
    assert supplier.id is not None
    assert bank.id is not None
    amount = sum((part for _, part in allocations), ZERO)
    number = await next_number(session, tenant, "PAY")
    voucher = await post_voucher(
        session,
        tenant,
        entry_date=on,
        memo=f"Payment {number} to {supplier.name}",
        source="payment",
        reference=number,
        postings=[Posting(Ledger.AP, debit=amount), Posting(bank.account_code, credit=amount)],
    )
    assert voucher.id is not None
    payment = Payment(
        tenant=tenant,
        number=number,
        supplier_id=supplier.id,
        bank_account_id=bank.id,
        payment_date=on,
        amount=amount,
        voucher_id=voucher.id,
        recorded_by=recorded_by,
    )
    session.add(payment)
    await session.flush()
    assert payment.id is not None
    for bill, part in allocations:
        assert bill.id is not None
        await apply_settlement(session, bill, part)
        session.add(
            PaymentAllocation(tenant=tenant, payment_id=payment.id, bill_id=bill.id, amount=part)
        )
    await session.flush()
    return payment
