"""Markdown for the dev model's answers: GFM tables, and money, numbers and dates written for
the tenant's locale.

Formatting uses Babel, the CLDR data every Python i18n stack builds on, rather than a table of
separators by hand: German amounts read ``318.979,20 €``, American ones ``$318,979.20``, and a
locale Babel does not know falls back to en-US instead of failing the answer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from babel.numbers import format_currency, format_decimal

__all__ = ["Formats", "table"]

FALLBACK_LOCALE = "en_US"
_BREAKS = re.compile(r"[\r\n\t\v\f\u2028\u2029]+")


class Formats:
    """Formats values for one locale (``de-DE``) and currency (``EUR``)."""

    def __init__(self, locale: str | None, currency: str | None) -> None:
        self.locale = _locale(locale)
        self.currency = currency if isinstance(currency, str) and len(currency) == 3 else None

    def money(self, value: Any) -> str:
        """An amount in the tenant's currency: ``$1,234.50``, ``1.234,50 €``; a value that is
        not a number is returned as it is."""
        amount = _decimal(value)
        if amount is None:
            return str(value)
        if self.currency is None:
            return format_decimal(amount, format="#,##0.00", locale=self.locale)
        return format_currency(amount, self.currency, locale=self.locale)

    def number(self, value: Any) -> str:
        """A number with the locale's separators: ``1,234`` / ``1.234``."""
        amount = _decimal(value)
        return str(value) if amount is None else format_decimal(amount, locale=self.locale)

    def date(self, value: Any) -> str:
        """An ISO date for people: ``Jun 30, 2026`` / ``30.06.2026``."""
        try:
            day = date.fromisoformat(str(value)[:10])
        except ValueError:
            return str(value)
        return format_date(day, format="medium", locale=self.locale)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> str:
    """A GFM table; the columns at the indexes in ``right`` are right-aligned (figures)."""
    aligned = set(right)
    lines = [
        _row(headers),
        "| " + " | ".join("---:" if i in aligned else "---" for i in range(len(headers))) + " |",
    ]
    lines += [_row(row) for row in rows]
    return "\n".join(lines)


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(_cell(cell) for cell in cells) + " |"


def _cell(text: str) -> str:
    # A pipe would end the cell and a newline the row; neither may come from the data. Other
    # spaces stay as they are: Babel puts a no-break space between an amount and its symbol.
    return _BREAKS.sub(" ", str(text)).replace("|", "\\|")


def _locale(tag: str | None) -> Locale:
    try:
        return Locale.parse((tag or FALLBACK_LOCALE).replace("-", "_"))
    except (ValueError, UnknownLocaleError):
        return Locale.parse(FALLBACK_LOCALE)


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None
