"""Exact amounts: rounding to cents, checking inputs, and showing amounts to people."""

from decimal import ROUND_HALF_UP, Decimal

from server.tools.errors import ToolError

__all__ = [
    "CENT",
    "MAX_AMOUNT",
    "MAX_QUANTITY",
    "amount_text",
    "cents",
    "format_money",
    "quantity_text",
    "require_amount",
    "require_quantity",
]

CENT = Decimal("0.01")
_MILLI = Decimal("0.001")
# The largest values the books' columns hold: Numeric(14, 2) amounts, Numeric(12, 3) quantities.
# Checked before rounding, which fails outright on numbers far beyond them (1e30).
MAX_AMOUNT = Decimal("999999999999.99")
MAX_QUANTITY = Decimal("999999999.999")

# Thousands and decimal separators by language; anything else reads like en-US.
_SEPARATORS: dict[str, tuple[str, str]] = {
    "de": (".", ","),
    "es": (".", ","),
    "it": (".", ","),
    "nl": (".", ","),
    "fr": ("\u202f", ","),
}


def cents(value: Decimal | int | str) -> Decimal:
    """`value` rounded half-up to cents."""
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def amount_text(value: Decimal) -> str:
    """The machine form of an amount in results: ``"12400.00"``."""
    return f"{cents(value):f}"


def quantity_text(value: Decimal) -> str:
    """A quantity without trailing zeros: ``"420"``, ``"2.5"``."""
    text = f"{Decimal(value).normalize():f}"
    return text if text != "-0" else "0"


def format_money(value: Decimal, currency: str, locale: str) -> str:
    """An amount for people: ``"USD 12,400.00"`` in en-US, ``"EUR 12.400,00"`` in de-DE."""
    thousands, decimal_mark = _SEPARATORS.get(locale.split("-")[0].lower(), (",", "."))
    text = f"{abs(cents(value)):,.2f}"
    text = text.replace(",", "\0").replace(".", decimal_mark).replace("\0", thousands)
    sign = "-" if value < 0 else ""
    return f"{currency} {sign}{text}"


def require_amount(value: Decimal, what: str, *, allow_zero: bool = False) -> Decimal:
    """Check that an amount from the model is a finite, positive number of cents.

    Raises:
        ToolError: it is negative (or zero when not allowed), too large for the books, or has
            fractions of a cent.
    """
    if not value.is_finite():
        raise ToolError(f"{what} must be a number")
    if value < 0 or (value == 0 and not allow_zero):
        raise ToolError(f"{what} must be {'zero or ' if allow_zero else ''}positive")
    if value > MAX_AMOUNT:
        raise ToolError(f"{what} is larger than {MAX_AMOUNT:,}")
    if value != value.quantize(CENT):
        raise ToolError(f"{what} has more than two decimal places")
    return cents(value)


def require_quantity(value: Decimal, what: str) -> Decimal:
    """Check that a quantity is finite, positive and has at most three decimal places.

    Raises:
        ToolError: it is not.
    """
    if not value.is_finite() or value <= 0:
        raise ToolError(f"{what} must be positive")
    if value > MAX_QUANTITY:
        raise ToolError(f"{what} is larger than {MAX_QUANTITY:,}")
    if value != value.quantize(_MILLI):
        raise ToolError(f"{what} has more than three decimal places")
    return value.quantize(_MILLI)
