"""Actions that move cash against open documents: customer receipts and supplier payments.

A receipt or payment names the invoices or bills it settles and how much goes to each. The
allocations must add up to the amount, and none may exceed what is still open on its document;
paid and cancelled documents are refused. The documents are locked (``SELECT … FOR UPDATE``)
before they are checked, so two people settling the same invoice at once cannot together pay
more than it is worth.
"""

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from examples.erp.companies import Today
from examples.erp.documents import record_payment, record_receipt
from examples.erp.ledger import account_balances
from examples.erp.lookup import (
    document_number,
    find_bank_account,
    find_customer,
    find_supplier,
)
from examples.erp.models import (
    ZERO,
    BankAccount,
    Bill,
    Customer,
    DocumentStatus,
    Invoice,
    JournalVoucher,
    Supplier,
)
from examples.erp.money import amount_text, format_money, require_amount
from server.tools.context import ToolContext
from server.tools.errors import ToolError
from server.tools.registry import ToolPack, ToolReturn

__all__ = ["SETTLEMENT_ROLES", "BillAllocation", "InvoiceAllocation", "register_settlements"]

SETTLEMENT_ROLES = frozenset({"admin", "finance"})

Document = TypeVar("Document", Invoice, Bill)


class InvoiceAllocation(BaseModel):
    """The part of a customer receipt applied to one invoice."""

    invoice_number: str = Field(description="the invoice, e.g. INV-3001")
    amount: Decimal = Field(description="how much of the receipt goes to this invoice")


class BillAllocation(BaseModel):
    """The part of a supplier payment applied to one bill."""

    bill_number: str = Field(description="the bill, e.g. BILL-4001")
    amount: Decimal = Field(description="how much of the payment goes to this bill")


@dataclass(frozen=True, slots=True)
class _Settlement(Generic[Document]):
    bank: BankAccount
    amount: Decimal
    allocations: list[tuple[Document, Decimal]]


def _money(ctx: ToolContext, value: Decimal) -> str:
    return format_money(value, ctx.currency, ctx.locale)


async def _allocate(
    session: AsyncSession,
    ctx: ToolContext,
    model: type[Document],
    party: Customer | Supplier,
    amount: Decimal,
    wanted: list[tuple[str, Decimal]],
    *,
    lock: bool,
) -> list[tuple[Document, Decimal]]:
    """Check the allocations against the documents and return them paired.

    Raises:
        ToolError: the allocations are empty, repeat a document, do not add up to `amount`,
            name an unknown document or one of another party, a paid or cancelled document,
            or more than a document's open balance.
    """
    label, series = ("invoice", "INV") if model is Invoice else ("bill", "BILL")
    amount = require_amount(amount, "amount")
    if not wanted:
        raise ToolError(f"allocations must name at least one {label}")
    numbers: list[str] = []
    parts: list[Decimal] = []
    for text, part in wanted:
        number = document_number(text, series)
        if number in numbers:
            raise ToolError(f"{label} {number} appears twice in the allocations")
        parts.append(require_amount(part, f"the allocation to {number}"))
        numbers.append(number)
    allocated = sum(parts, ZERO)
    if allocated != amount:
        raise ToolError(
            f"the allocations add up to {_money(ctx, allocated)} "
            f"but the amount is {_money(ctx, amount)}",
            code="allocation_mismatch",
        )
    query = (
        select(model)
        .where(model.tenant == ctx.tenant, col(model.number).in_(numbers))
        .order_by(col(model.id))  # One lock order for everyone: no deadlocks between payers.
    )
    if lock:
        query = query.with_for_update()
    documents = {doc.number: doc for doc in (await session.exec(query)).all()}
    paired: list[tuple[Document, Decimal]] = []
    for number, part in zip(numbers, parts, strict=True):
        doc = documents.get(number)
        if doc is None:
            raise ToolError(f"no {label} {number}", code="not_found")
        owner = doc.customer_id if isinstance(doc, Invoice) else doc.supplier_id
        if owner != party.id:
            raise ToolError(f"{label} {number} is not {party.name}'s", code="wrong_party")
        if doc.status == DocumentStatus.CANCELLED:
            raise ToolError(f"{label} {number} is cancelled", code="cancelled")
        if doc.status == DocumentStatus.PAID:
            raise ToolError(f"{label} {number} is already paid", code="already_paid")
        open_balance = doc.total - doc.amount_paid
        if part > open_balance:
            raise ToolError(
                f"the allocation of {_money(ctx, part)} to {label} {number} exceeds its open "
                f"balance of {_money(ctx, open_balance)}",
                code="over_allocation",
            )
        paired.append((doc, part))
    return paired


async def _receipt_plan(
    session: AsyncSession,
    ctx: ToolContext,
    customer_name: str,
    amount: Decimal,
    allocations: list[InvoiceAllocation],
    bank_account: str | None,
    *,
    lock: bool,
) -> tuple[Customer, _Settlement[Invoice]]:
    customer = await find_customer(session, ctx.tenant, customer_name)
    bank = await find_bank_account(session, ctx.tenant, bank_account)
    wanted = [(a.invoice_number, a.amount) for a in allocations]
    paired = await _allocate(session, ctx, Invoice, customer, amount, wanted, lock=lock)
    return customer, _Settlement(bank, sum((p for _, p in paired), ZERO), paired)


async def _payment_plan(
    session: AsyncSession,
    ctx: ToolContext,
    supplier_name: str,
    amount: Decimal,
    allocations: list[BillAllocation],
    bank_account: str | None,
    *,
    lock: bool,
) -> tuple[Supplier, _Settlement[Bill]]:
    supplier = await find_supplier(session, ctx.tenant, supplier_name)
    bank = await find_bank_account(session, ctx.tenant, bank_account)
    if lock:
        # Payments out of one account queue up, so two of them cannot both pass the
        # funds check against the same balance.
        await session.exec(select(BankAccount).where(BankAccount.id == bank.id).with_for_update())
    wanted = [(a.bill_number, a.amount) for a in allocations]
    paired = await _allocate(session, ctx, Bill, supplier, amount, wanted, lock=lock)
    total = sum((p for _, p in paired), ZERO)
    balance = (await account_balances(session, ctx.tenant, [bank.account_code])).get(
        bank.account_code, ZERO
    )
    if total > balance:
        raise ToolError(
            f"insufficient funds in {bank.name}: the balance is {_money(ctx, balance)}, "
            f"the payment {_money(ctx, total)}",
            code="insufficient_funds",
        )
    return supplier, _Settlement(bank, total, paired)


def _applied(ctx: ToolContext, allocations: list[tuple[Document, Decimal]]) -> str:
    return ", ".join(f"{doc.number} ({_money(ctx, part)})" for doc, part in allocations)


def _allocation_results(
    key: str, allocations: list[tuple[Document, Decimal]]
) -> list[dict[str, str]]:
    return [
        {
            key: doc.number,
            "amount": amount_text(part),
            "open_balance": amount_text(doc.total - doc.amount_paid),
            "status": doc.status,
        }
        for doc, part in allocations
    ]


def register_settlements(pack: ToolPack, today: Today) -> None:
    """Declare the receipt and payment actions on `pack`."""

    async def receipt_summary(ctx: ToolContext, params: dict[str, Any]) -> str:
        allocations = [InvoiceAllocation.model_validate(a) for a in params["allocations"]]
        async with ctx.db() as session:
            customer, plan = await _receipt_plan(
                session,
                ctx,
                params["customer"],
                Decimal(params["amount"]),
                allocations,
                params.get("bank_account"),
                lock=False,
            )
        return (
            f"Record a receipt of {_money(ctx, plan.amount)} from {customer.name} into "
            f"{plan.bank.name}, applied to {_applied(ctx, plan.allocations)}"
        )

    @pack.action(summary=receipt_summary, roles=SETTLEMENT_ROLES)
    async def record_customer_receipt(
        ctx: ToolContext,
        customer: str,
        amount: Decimal,
        allocations: list[InvoiceAllocation],
        bank_account: str | None = None,
    ) -> ToolReturn:
        """Record money received from a customer and apply it to their open invoices.

        The allocations must add up to the amount and may not exceed any invoice's open
        balance. Books a voucher debiting the bank and crediting accounts receivable.

        Args:
            customer: customer name or the start of it.
            amount: the amount received.
            allocations: which invoices the money pays, and how much of each.
            bank_account: the bank account the money went into; the operating account when
                left out.
        """
        async with ctx.db() as session:
            party, plan = await _receipt_plan(
                session, ctx, customer, amount, allocations, bank_account, lock=True
            )
            receipt = await record_receipt(
                session,
                party,
                plan.bank,
                on=today(),
                allocations=plan.allocations,
                recorded_by=ctx.user,
            )
            voucher = await session.get(JournalVoucher, receipt.voucher_id)
            result = {
                "receipt_number": receipt.number,
                "customer": party.name,
                "bank_account": plan.bank.name,
                "date": receipt.receipt_date.isoformat(),
                "currency": ctx.currency,
                "amount": amount_text(receipt.amount),
                "allocations": _allocation_results("invoice_number", plan.allocations),
                "voucher_number": voucher.number if voucher else None,
            }
            summary = f"{receipt.number} from {party.name}, {_money(ctx, receipt.amount)}"
            await session.commit()
        return ToolReturn(result, summary)

    async def payment_summary(ctx: ToolContext, params: dict[str, Any]) -> str:
        allocations = [BillAllocation.model_validate(a) for a in params["allocations"]]
        async with ctx.db() as session:
            supplier, plan = await _payment_plan(
                session,
                ctx,
                params["supplier"],
                Decimal(params["amount"]),
                allocations,
                params.get("bank_account"),
                lock=False,
            )
        return (
            f"Pay {_money(ctx, plan.amount)} to {supplier.name} from {plan.bank.name}, "
            f"applied to {_applied(ctx, plan.allocations)}"
        )

    @pack.action(summary=payment_summary, roles=SETTLEMENT_ROLES)
    async def record_supplier_payment(
        ctx: ToolContext,
        supplier: str,
        amount: Decimal,
        allocations: list[BillAllocation],
        bank_account: str | None = None,
    ) -> ToolReturn:
        """Record a payment to a supplier and apply it to their open bills.

        The allocations must add up to the amount and may not exceed any bill's open balance;
        the bank account must hold the amount. Books a voucher debiting accounts payable and
        crediting the bank.

        Args:
            supplier: supplier name or the start of it.
            amount: the amount paid.
            allocations: which bills the money pays, and how much of each.
            bank_account: the bank account paid from; the operating account when left out.
        """
        async with ctx.db() as session:
            party, plan = await _payment_plan(
                session, ctx, supplier, amount, allocations, bank_account, lock=True
            )
            payment = await record_payment(
                session,
                party,
                plan.bank,
                on=today(),
                allocations=plan.allocations,
                recorded_by=ctx.user,
            )
            voucher = await session.get(JournalVoucher, payment.voucher_id)
            result = {
                "payment_number": payment.number,
                "supplier": party.name,
                "bank_account": plan.bank.name,
                "date": payment.payment_date.isoformat(),
                "currency": ctx.currency,
                "amount": amount_text(payment.amount),
                "allocations": _allocation_results("bill_number", plan.allocations),
                "voucher_number": voucher.number if voucher else None,
            }
            summary = f"{payment.number} to {party.name}, {_money(ctx, payment.amount)}"
            await session.commit()
        return ToolReturn(result, summary)
