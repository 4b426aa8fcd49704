"""Finding customers, suppliers, items, bank accounts and documents from what the model wrote.

Names are matched case-insensitively, first exactly, then as a unique prefix ("contoso" finds
"Contoso Retail"); more than one candidate is refused with the candidates named, so the model
asks the user instead of guessing. Matching happens in Python because SQLite's ``lower()`` only
folds ASCII and the demo's German names need full case folding; the tables are small.
"""

import re
from collections.abc import Callable, Sequence
from typing import TypeVar

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from examples.erp.models import BankAccount, Customer, Item, Supplier
from server.tools.errors import ToolError

__all__ = [
    "document_number",
    "find_bank_account",
    "find_customer",
    "find_item",
    "find_supplier",
    "match_name",
]

T = TypeVar("T")
_MAX_LISTED = 5


def match_name(candidates: Sequence[T], name: str, key: Callable[[T], str], what: str) -> T:
    """The one candidate whose name is `name`, or starts with it, ignoring case.

    Raises:
        ToolError: nothing matches, or several candidates match equally well.
    """
    wanted = " ".join(name.split()).casefold()
    if not wanted:
        raise ToolError(f"{what} name is empty")
    exact = [c for c in candidates if key(c).casefold() == wanted]
    if len(exact) == 1:
        return exact[0]
    prefixed = exact or [c for c in candidates if key(c).casefold().startswith(wanted)]
    if len(prefixed) == 1:
        return prefixed[0]
    if not prefixed:
        raise ToolError(f"no {what} named {name!r}", code="not_found")
    names = sorted(key(c) for c in prefixed)
    listed = ", ".join(names[:_MAX_LISTED]) + (", …" if len(names) > _MAX_LISTED else "")
    raise ToolError(f"{what} name {name!r} is ambiguous: {listed}", code="ambiguous")


async def find_customer(session: AsyncSession, tenant: str, name: str) -> Customer:
    """The tenant's customer called `name` (exact or unique prefix)."""
    rows = (await session.exec(select(Customer).where(Customer.tenant == tenant))).all()
    return match_name(rows, name, lambda c: c.name, "customer")


async def find_supplier(session: AsyncSession, tenant: str, name: str) -> Supplier:
    """The tenant's supplier called `name` (exact or unique prefix)."""
    rows = (await session.exec(select(Supplier).where(Supplier.tenant == tenant))).all()
    return match_name(rows, name, lambda s: s.name, "supplier")


async def find_item(session: AsyncSession, tenant: str, name: str) -> Item:
    """The tenant's item with SKU `name`, or called `name` (exact or unique prefix)."""
    rows = (await session.exec(select(Item).where(Item.tenant == tenant))).all()
    by_sku = [item for item in rows if item.sku.casefold() == name.strip().casefold()]
    if len(by_sku) == 1:
        return by_sku[0]
    return match_name(rows, name, lambda i: i.name, "item")


async def find_bank_account(session: AsyncSession, tenant: str, name: str | None) -> BankAccount:
    """The tenant's bank account called `name`, or its first (operating) account when None.

    Raises:
        ToolError: no such account, or the tenant has no bank account at all.
    """
    query = select(BankAccount).where(BankAccount.tenant == tenant).order_by(col(BankAccount.id))
    rows = (await session.exec(query)).all()
    if not rows:
        raise ToolError("the company has no bank account")
    if name is None:
        return rows[0]
    return match_name(rows, name, lambda b: b.name, "bank account")


def document_number(text: str, series: str) -> str:
    """Normalise what the model wrote to a document number: ``"po 1001"`` → ``"PO-1001"``.

    Raises:
        ToolError: the text is not a number of that series.
    """
    cleaned = text.strip().upper()
    found = re.fullmatch(rf"(?:{series})?[\s_#-]*(\d+)", cleaned)
    if found is None:
        raise ToolError(f"{text!r} is not a {series} number like {series}-1001")
    return f"{series}-{int(found.group(1))}"
