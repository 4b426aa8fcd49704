"""Aging of open receivables and payables: how far past its due date each open amount is."""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from examples.erp.models import ZERO
from examples.erp.money import amount_text

__all__ = ["BUCKETS", "AgingReport", "OpenItem", "bucket_for"]

# "current" holds what is not yet due; the others count days past the due date.
BUCKETS: tuple[str, ...] = ("current", "0-30", "31-60", "61-90", "90+")


def bucket_for(days_past_due: int) -> str:
    """The aging bucket of an amount `days_past_due` days after its due date (negative: not due)."""
    if days_past_due < 0:
        return "current"
    if days_past_due <= 30:
        return "0-30"
    if days_past_due <= 60:
        return "31-60"
    if days_past_due <= 90:
        return "61-90"
    return "90+"


@dataclass(frozen=True, slots=True)
class OpenItem:
    """An invoice or bill with an open balance."""

    number: str
    party: str
    due_date: date
    open_amount: Decimal


@dataclass(slots=True)
class AgingReport:
    """Open amounts summed per bucket, overall and per party, as of one day."""

    as_of: date
    totals: dict[str, Decimal] = field(default_factory=lambda: dict.fromkeys(BUCKETS, ZERO))
    by_party: dict[str, dict[str, Decimal]] = field(default_factory=dict)
    items: list[tuple[OpenItem, int]] = field(default_factory=list)

    @classmethod
    def build(cls, as_of: date, open_items: Iterable[OpenItem]) -> "AgingReport":
        """Age every item against `as_of`."""
        report = cls(as_of)
        for item in open_items:
            days = (as_of - item.due_date).days
            bucket = bucket_for(days)
            report.totals[bucket] += item.open_amount
            party = report.by_party.setdefault(item.party, dict.fromkeys(BUCKETS, ZERO))
            party[bucket] += item.open_amount
            report.items.append((item, days))
        return report

    @property
    def total(self) -> Decimal:
        """Everything open."""
        return sum(self.totals.values(), ZERO)

    @property
    def overdue(self) -> Decimal:
        """Everything open and past its due date."""
        return self.total - self.totals["current"]

    def as_result(self, currency: str, party_key: str) -> dict[str, Any]:
        """The report as JSON for the model; parties ordered by what is open, largest first."""
        parties = sorted(
            self.by_party.items(), key=lambda entry: (-sum(entry[1].values(), ZERO), entry[0])
        )
        return {
            "as_of": self.as_of.isoformat(),
            "currency": currency,
            "total": amount_text(self.total),
            "overdue": amount_text(self.overdue),
            "buckets": {bucket: amount_text(value) for bucket, value in self.totals.items()},
            party_key: [
                {
                    "name": name,
                    "total": amount_text(sum(buckets.values(), ZERO)),
                    "buckets": {bucket: amount_text(value) for bucket, value in buckets.items()},
                }
                for name, buckets in parties
            ],
            "open_documents": [
                {
                    "number": item.number,
                    "name": item.party,
                    "due_date": item.due_date.isoformat(),
                    "days_past_due": max(days, 0),
                    "bucket": bucket_for(days),
                    "open_amount": amount_text(item.open_amount),
                }
                for item, days in sorted(self.items, key=lambda entry: -entry[1])
            ],
        }
