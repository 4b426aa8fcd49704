"""Posting to the general ledger and reading it back, plus document numbering.

Every change to money goes through `post_voucher`, which refuses an unbalanced entry: the books
stay balanced by construction, not by care at each call site.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from examples.erp.models import (
    ZERO,
    Account,
    DocumentCounter,
    JournalLine,
    JournalVoucher,
)
from examples.erp.money import cents

__all__ = ["Posting", "account_balances", "next_number", "post_voucher"]

# First number and width of each document series.
_SERIES_START: dict[str, int] = {
    "PO": 1001,
    "SO": 2001,
    "INV": 3001,
    "BILL": 4001,
    "RC": 5001,
    "PAY": 6001,
    "JV": 1,
}
_COUNTER_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class Posting:
    """One line of a voucher to be posted: an account and a debit or a credit."""

    account_code: str
    debit: Decimal = ZERO
    credit: Decimal = ZERO


async def next_number(session: AsyncSession, tenant: str, series: str) -> str:
    """Take the next number of a document series, e.g. ``"INV-3013"``.

    The counter row is locked (``SELECT … FOR UPDATE``) so concurrent transactions on
    PostgreSQL queue up; the increment is also conditional on the value read, and retried if
    another writer moved the counter in between (SQLite reads outside the write transaction).
    """
    for _ in range(_COUNTER_ATTEMPTS):
        value = (
            await session.exec(
                select(DocumentCounter.next_value)
                .where(DocumentCounter.tenant == tenant, DocumentCounter.series == series)
                .with_for_update()
            )
        ).one_or_none()
        if value is None:
            session.add(
                DocumentCounter(tenant=tenant, series=series, next_value=_SERIES_START[series] + 1)
            )
            await session.flush()
            value = _SERIES_START[series]
            break
        moved = await session.exec(
            update(DocumentCounter)
            .where(
                col(DocumentCounter.tenant) == tenant,
                col(DocumentCounter.series) == series,
                col(DocumentCounter.next_value) == value,
            )
            .values(next_value=value + 1)
        )
        if moved.rowcount == 1:
            break
    else:
        raise RuntimeError(f"could not take a {series} number for {tenant!r}")
    return f"JV-{value:06d}" if series == "JV" else f"{series}-{value}"


async def post_voucher(
    session: AsyncSession,
    tenant: str,
    *,
    entry_date: date,
    memo: str,
    source: str,
    reference: str,
    postings: Sequence[Posting],
) -> JournalVoucher:
    """Post a journal voucher and return it (flushed, so its `id` is set).

    Raises:
        RuntimeError: the postings do not balance, a line has both or neither side, or an
            account is not in the tenant's chart; these are bugs of the caller, not user errors.
    """
    lines = [Posting(p.account_code, cents(p.debit), cents(p.credit)) for p in postings]
    lines = [p for p in lines if p.debit or p.credit]
    if len(lines) < 2:
        raise RuntimeError(f"voucher {reference!r} needs at least two lines")
    for line in lines:
        if line.debit < 0 or line.credit < 0 or (line.debit and line.credit):
            raise RuntimeError(f"voucher {reference!r}: bad line {line}")
    debits = sum((p.debit for p in lines), ZERO)
    credits = sum((p.credit for p in lines), ZERO)
    if debits != credits:
        raise RuntimeError(f"voucher {reference!r} is unbalanced: {debits} != {credits}")
    codes = {p.account_code for p in lines}
    known = set(
        (
            await session.exec(
                select(Account.code).where(Account.tenant == tenant, col(Account.code).in_(codes))
            )
        ).all()
    )
    if codes - known:
        raise RuntimeError(f"voucher {reference!r}: unknown accounts {sorted(codes - known)}")
    voucher = JournalVoucher(
        tenant=tenant,
        number=await next_number(session, tenant, "JV"),
        entry_date=entry_date,
        memo=memo,
        source=source,
        reference=reference,
    )
    session.add(voucher)
    await session.flush()
    assert voucher.id is not None
    session.add_all(
        JournalLine(
            tenant=tenant,
            voucher_id=voucher.id,
            account_code=p.account_code,
            debit=p.debit,
            credit=p.credit,
        )
        for p in lines
    )
    await session.flush()
    return voucher


async def account_balances(
    session: AsyncSession,
    tenant: str,
    codes: Iterable[str] | None = None,
    *,
    since: date | None = None,
) -> dict[str, Decimal]:
    """Debit-minus-credit balance per account code (accounts without lines are left out).

    Args:
        codes: only these accounts; all when None.
        since: only vouchers dated on or after this day (for period figures like revenue).
    """
    query = (
        select(
            JournalLine.account_code,
            func.sum(JournalLine.debit),
            func.sum(JournalLine.credit),
        )
        .where(JournalLine.tenant == tenant)
        .group_by(col(JournalLine.account_code))
    )
    if codes is not None:
        query = query.where(col(JournalLine.account_code).in_(list(codes)))
    if since is not None:
        query = query.join(JournalVoucher, col(JournalVoucher.id) == col(JournalLine.voucher_id))
        query = query.where(JournalVoucher.entry_date >= since)
    rows = (await session.exec(query)).all()
    return {code: cents(debit or ZERO) - cents(credit or ZERO) for code, debit, credit in rows}
