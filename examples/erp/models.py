"""The demo ERP's tables: general ledger, parties, stock, purchasing, sales, receivables, payables.

They live in their own SQLAlchemy registry (`ErpBase.metadata`), not in `SQLModel.metadata`: the
host app owns them, so they must never appear in Parley's own migrations. Every table carries
`tenant`, and every query filters on it. Table names start with ``erp_`` so they can share a
database with Parley's tables in the embedded setup.

Amounts are `Decimal` in ``Numeric(14, 2)`` columns, quantities ``Numeric(12, 3)``; statuses are
plain strings holding the values of the `StrEnum`s below (a database enum type would tie the
schema to one dialect).
"""

from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import UniqueConstraint
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

__all__ = [
    "Account",
    "AccountKind",
    "BankAccount",
    "Bill",
    "Company",
    "Customer",
    "DocumentCounter",
    "DocumentStatus",
    "ErpBase",
    "Invoice",
    "Item",
    "JournalLine",
    "JournalVoucher",
    "Payment",
    "PaymentAllocation",
    "PurchaseOrder",
    "PurchaseOrderLine",
    "PurchaseOrderStatus",
    "Receipt",
    "ReceiptAllocation",
    "SalesOrder",
    "SalesOrderLine",
    "SalesOrderStatus",
    "Supplier",
]

ZERO = Decimal("0.00")


class ErpBase(SQLModel, registry=registry()):
    """Base of the ERP tables, with a metadata of its own."""


def money_field(**kwargs: Any) -> Any:
    """A ``Numeric(14, 2)`` amount column."""
    return Field(max_digits=14, decimal_places=2, **kwargs)


def quantity_field(**kwargs: Any) -> Any:
    """A ``Numeric(12, 3)`` quantity column."""
    return Field(max_digits=12, decimal_places=3, **kwargs)


def tenant_field() -> Any:
    """The tenant column every table has."""
    return Field(max_length=64, index=True)


class AccountKind(StrEnum):
    """Where an account sits in the balance sheet or the income statement."""

    ASSET = "asset"
    LIABILITY = "liability"
    EQUITY = "equity"
    REVENUE = "revenue"
    EXPENSE = "expense"


class PurchaseOrderStatus(StrEnum):
    """Life of a purchase order: drafted, submitted for approval, decided, goods received."""

    DRAFT = "draft"
    AWAITING_APPROVAL = "awaiting_approval"
    APPROVED = "approved"
    REJECTED = "rejected"
    RECEIVED = "received"


class SalesOrderStatus(StrEnum):
    """A sales order is open until it is invoiced."""

    OPEN = "open"
    INVOICED = "invoiced"


class DocumentStatus(StrEnum):
    """Settlement state of an AR invoice or an AP bill."""

    OPEN = "open"
    PARTIALLY_PAID = "partially_paid"
    PAID = "paid"
    CANCELLED = "cancelled"


# -- company and general ledger -------------------------------------------------------------


class Company(ErpBase, table=True):
    """One tenant's company; its row also marks the tenant as seeded."""

    __tablename__ = "erp_company"

    tenant: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    currency: str = Field(max_length=3)


class Account(ErpBase, table=True):
    """An account of the chart of accounts."""

    __tablename__ = "erp_account"
    __table_args__ = (UniqueConstraint("tenant", "code"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = tenant_field()
    code: str = Field(max_length=10)
    name: str = Field(max_length=120)
    kind: str = Field(max_length=16)


class DocumentCounter(ErpBase, table=True):
    """The next number of a document series (``PO``, ``INV``, ``JV`` …) of one tenant."""

    __tablename__ = "erp_document_counter"

    tenant: str = Field(primary_key=True, max_length=64)
    series: str = Field(primary_key=True, max_length=10)
    next_value: int


class JournalVoucher(ErpBase, table=True):
    """A balanced journal entry: the sum of its debits equals the sum of its credits."""

    __tablename__ = "erp_journal_voucher"
    __table_args__ = (UniqueConstraint("tenant", "number"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = tenant_field()
    number: str = Field(max_length=20)
    entry_date: date
    memo: str = Field(max_length=300)
    source: str = Field(max_length=20)
    reference: str = Field(max_length=20)


class JournalLine(ErpBase, table=True):
    """One side of a voucher: exactly one of `debit` and `credit` is non-zero."""

    __tablename__ = "erp_journal_line"

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = tenant_field()
    voucher_id: int = Field(foreign_key="erp_journal_voucher.id", index=True)
    account_code: str = Field(max_length=10, index=True)
    debit: Decimal = money_field(default=ZERO)
    credit: Decimal = money_field(default=ZERO)


class BankAccount(ErpBase, table=True):
    """A bank account; its balance is the balance of its ledger account."""

    __tablename__ = "erp_bank_account"

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = tenant_field()
    name: str = Field(max_length=120)
    bank: str = Field(max_length=120)
    number: str = Field(max_length=34)
    account_code: str = Field(max_length=10)


# -- parties and stock ----------------------------------------------------------------------


class Customer(ErpBase, table=True):
    """Someone the company sells to."""

    __tablename__ = "erp_customer"

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = tenant_field()
    name: str = Field(max_length=200)
    email: str | None = Field(default=None, max_length=254)
    credit_limit: Decimal = money_field()
    payment_terms_days: int = 30


class Supplier(ErpBase, table=True):
    """Someone the company buys from."""

    __tablename__ = "erp_supplier"

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = tenant_field()
    name: str = Field(max_length=200)
    email: str | None = Field(default=None, max_length=254)
    payment_terms_days: int = 30


class Item(ErpBase, table=True):
    """A stock item, valued at `unit_cost`, sold at `unit_price` unless a line says otherwise."""

    __tablename__ = "erp_item"
    __table_args__ = (UniqueConstraint("tenant", "sku"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = tenant_field()
    sku: str = Field(max_length=40)
    name: str = Field(max_length=200)
    unit: str = Field(max_length=10)
    on_hand: Decimal = quantity_field()
    reorder_level: Decimal = quantity_field()
    reorder_quantity: Decimal = quantity_field()
    unit_cost: Decimal = money_field()
    unit_price: Decimal = money_field()


# -- purchasing -----------------------------------------------------------------------------


class PurchaseOrder(ErpBase, table=True):
    """An order to a supplier; above the company's limit only finance or an admin approves."""

    __tablename__ = "erp_purchase_order"
    __table_args__ = (UniqueConstraint("tenant", "number"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = tenant_field()
    number: str = Field(max_length=20)
    supplier_id: int = Field(foreign_key="erp_supplier.id")
    status: str = Field(max_length=20)
    order_date: date
    expected_date: date
    total: Decimal = money_field()
    requested_by: str = Field(max_length=120)
    decided_by: str | None = Field(default=None, max_length=120)
    decided_on: date | None = None
    decision_note: str | None = Field(default=None, max_length=500)


class PurchaseOrderLine(ErpBase, table=True):
    """One item line of a purchase order."""

    __tablename__ = "erp_purchase_order_line"

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = tenant_field()
    purchase_order_id: int = Field(foreign_key="erp_purchase_order.id", index=True)
    item_id: int = Field(foreign_key="erp_item.id")
    quantity: Decimal = quantity_field()
    unit_price: Decimal = money_field()
    amount: Decimal = money_field()


# -- sales and receivables ------------------------------------------------------------------


class SalesOrder(ErpBase, table=True):
    """An order from a customer, invoiced once."""

    __tablename__ = "erp_sales_order"
    __table_args__ = (UniqueConstraint("tenant", "number"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = tenant_field()
    number: str = Field(max_length=20)
    customer_id: int = Field(foreign_key="erp_customer.id")
    status: str = Field(max_length=20)
    order_date: date
    tax_rate: Decimal = Field(max_digits=6, decimal_places=4)
    subtotal: Decimal = money_field()
    tax: Decimal = money_field()
    total: Decimal = money_field()
    created_by: str = Field(max_length=120)


class SalesOrderLine(ErpBase, table=True):
    """One item line of a sales order."""

    __tablename__ = "erp_sales_order_line"

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = tenant_field()
    sales_order_id: int = Field(foreign_key="erp_sales_order.id", index=True)
    item_id: int = Field(foreign_key="erp_item.id")
    quantity: Decimal = quantity_field()
    unit_price: Decimal = money_field()
    amount: Decimal = money_field()


class Invoice(ErpBase, table=True):
    """An accounts-receivable invoice: what a customer owes, and how much of it was paid."""

    __tablename__ = "erp_invoice"
    __table_args__ = (UniqueConstraint("tenant", "number"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = tenant_field()
    number: str = Field(max_length=20)
    customer_id: int = Field(foreign_key="erp_customer.id", index=True)
    sales_order_id: int | None = Field(default=None, foreign_key="erp_sales_order.id")
    issue_date: date
    due_date: date
    subtotal: Decimal = money_field()
    tax: Decimal = money_field()
    total: Decimal = money_field()
    amount_paid: Decimal = money_field(default=ZERO)
    status: str = Field(max_length=20)
    voucher_id: int = Field(foreign_key="erp_journal_voucher.id")


class Receipt(ErpBase, table=True):
    """Money received from a customer into a bank account."""

    __tablename__ = "erp_receipt"
    __table_args__ = (UniqueConstraint("tenant", "number"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = tenant_field()
    number: str = Field(max_length=20)
    customer_id: int = Field(foreign_key="erp_customer.id")
    bank_account_id: int = Field(foreign_key="erp_bank_account.id")
    receipt_date: date
    amount: Decimal = money_field()
    voucher_id: int = Field(foreign_key="erp_journal_voucher.id")
    recorded_by: str = Field(max_length=120)


class ReceiptAllocation(ErpBase, table=True):
    """The part of a receipt applied to one invoice."""

    __tablename__ = "erp_receipt_allocation"

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = tenant_field()
    receipt_id: int = Field(foreign_key="erp_receipt.id", index=True)
    invoice_id: int = Field(foreign_key="erp_invoice.id", index=True)
    amount: Decimal = money_field()


# -- payables -------------------------------------------------------------------------------


class Bill(ErpBase, table=True):
    """An accounts-payable bill: what the company owes a supplier, and how much it paid."""

    __tablename__ = "erp_bill"
    __table_args__ = (UniqueConstraint("tenant", "number"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = tenant_field()
    number: str = Field(max_length=20)
    supplier_id: int = Field(foreign_key="erp_supplier.id", index=True)
    purchase_order_id: int | None = Field(default=None, foreign_key="erp_purchase_order.id")
    description: str = Field(max_length=300)
    issue_date: date
    due_date: date
    total: Decimal = money_field()
    amount_paid: Decimal = money_field(default=ZERO)
    status: str = Field(max_length=20)
    voucher_id: int = Field(foreign_key="erp_journal_voucher.id")


class Payment(ErpBase, table=True):
    """Money paid to a supplier from a bank account."""

    __tablename__ = "erp_payment"
    __table_args__ = (UniqueConstraint("tenant", "number"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = tenant_field()
    number: str = Field(max_length=20)
    supplier_id: int = Field(foreign_key="erp_supplier.id")
    bank_account_id: int = Field(foreign_key="erp_bank_account.id")
    payment_date: date
    amount: Decimal = money_field()
    voucher_id: int = Field(foreign_key="erp_journal_voucher.id")
    recorded_by: str = Field(max_length=120)


class PaymentAllocation(ErpBase, table=True):
    """The part of a payment applied to one bill."""

    __tablename__ = "erp_payment_allocation"

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = tenant_field()
    payment_id: int = Field(foreign_key="erp_payment.id", index=True)
    bill_id: int = Field(foreign_key="erp_bill.id", index=True)
    amount: Decimal = money_field()
