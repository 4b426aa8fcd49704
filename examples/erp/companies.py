"""The demo companies (one per tenant), their policies, the roles and the chart of accounts."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from examples.erp.models import AccountKind

__all__ = [
    "APPROVER_ROLES",
    "CHART_OF_ACCOUNTS",
    "COMPANIES",
    "LARGE_PO_APPROVER_ROLES",
    "CompanyProfile",
    "Ledger",
    "Today",
    "profile",
]

# Where the pack reads "today" from; tests pass a fixed day so aging is reproducible.
Today = Callable[[], date]


@dataclass(frozen=True, slots=True)
class CompanyProfile:
    """A tenant's company and its policies.

    Attributes:
        approval_limit: purchase orders above this total need a finance or admin approver;
            a purchasing manager approves up to it.
        tax_rate: default sales tax / VAT rate of sales orders, as a fraction.
        credit_limit: credit limit of a new customer when none is given.
    """

    name: str
    currency: str
    locale: str
    approval_limit: Decimal
    tax_rate: Decimal
    credit_limit: Decimal


COMPANIES: dict[str, CompanyProfile] = {
    "acme": CompanyProfile(
        name="Acme Corporation",
        currency="USD",
        locale="en-US",
        approval_limit=Decimal("25000.00"),
        tax_rate=Decimal("0.08"),
        credit_limit=Decimal("10000.00"),
    ),
    "globex": CompanyProfile(
        name="Globex GmbH",
        currency="EUR",
        locale="de-DE",
        approval_limit=Decimal("20000.00"),
        tax_rate=Decimal("0.19"),
        credit_limit=Decimal("15000.00"),
    ),
}

# A tenant the demo does not know still gets sensible policies (and empty books).
_FALLBACK = CompanyProfile(
    name="Company",
    currency="USD",
    locale="en-US",
    approval_limit=Decimal("25000.00"),
    tax_rate=Decimal("0.00"),
    credit_limit=Decimal("10000.00"),
)


def profile(tenant: str) -> CompanyProfile:
    """The company profile of `tenant`."""
    return COMPANIES.get(tenant, _FALLBACK)


# Roles that may decide purchase orders, and the smaller set that may decide large ones.
APPROVER_ROLES = frozenset({"admin", "purchasing_manager", "finance"})
LARGE_PO_APPROVER_ROLES = frozenset({"admin", "finance"})


class Ledger:
    """Codes of the accounts the pack posts to."""

    AR = "1100"
    INVENTORY = "1200"
    AP = "2000"
    SALES_TAX = "2100"
    EQUITY = "3000"
    REVENUE = "4000"
    COST_OF_SALES = "5000"
    OFFICE = "6000"
    FREIGHT = "6100"


CHART_OF_ACCOUNTS: tuple[tuple[str, str, AccountKind], ...] = (
    ("1010", "Bank - operating", AccountKind.ASSET),
    ("1020", "Bank - payroll", AccountKind.ASSET),
    ("1030", "Bank - reserve", AccountKind.ASSET),
    (Ledger.AR, "Accounts receivable", AccountKind.ASSET),
    (Ledger.INVENTORY, "Inventory", AccountKind.ASSET),
    (Ledger.AP, "Accounts payable", AccountKind.LIABILITY),
    (Ledger.SALES_TAX, "Sales tax payable", AccountKind.LIABILITY),
    (Ledger.EQUITY, "Owner's equity", AccountKind.EQUITY),
    (Ledger.REVENUE, "Sales revenue", AccountKind.REVENUE),
    (Ledger.COST_OF_SALES, "Cost of goods sold", AccountKind.EXPENSE),
    (Ledger.OFFICE, "Office expenses", AccountKind.EXPENSE),
    (Ledger.FREIGHT, "Freight and logistics", AccountKind.EXPENSE),
)
