"""Money as integer minor units with ISO-4217 currency exponents. Never floats."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from app.errors import ValidationFailed

EXPONENTS: dict[str, int] = {
    "EGP": 2,
    "USD": 2,
    "EUR": 2,
    "GBP": 2,
    "SAR": 2,
    "AED": 2,
    "CAD": 2,
    "AUD": 2,
    "CHF": 2,
    "INR": 2,
    "MAD": 2,
    "QAR": 2,
    "TRY": 2,
    "JPY": 0,
    "KRW": 0,
    "VND": 0,
    "CLP": 0,
    "ISK": 0,
    "XOF": 0,
    "KWD": 3,
    "BHD": 3,
    "OMR": 3,
    "JOD": 3,
    "TND": 3,
    "LYD": 3,
    "IQD": 3,
}
MAX_MINOR = 10**15


def currency_exponent(currency: str) -> int:
    try:
        return EXPONENTS[currency]
    except KeyError:
        raise ValidationFailed(f"Unsupported currency {currency!r}", field="currency") from None


def check_currency(currency: str) -> str:
    currency_exponent(currency)
    return currency


@dataclass(frozen=True, slots=True)
class Money:
    amount_minor: int
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.amount_minor, bool) or not isinstance(self.amount_minor, int):
            raise ValidationFailed("amount_minor must be an integer", field="amount_minor")
        if abs(self.amount_minor) > MAX_MINOR:
            raise ValidationFailed("amount_minor is out of range", field="amount_minor")
        check_currency(self.currency)

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount_minor + other.amount_minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount_minor - other.amount_minor, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount_minor, self.currency)

    def times(self, quantity: int) -> Money:
        return Money(self.amount_minor * quantity, self.currency)

    def _same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise ValidationFailed(f"Cannot combine {self.currency} with {other.currency}")

    def format(self) -> str:
        return format_minor(self.amount_minor, self.currency)

    def to_json(self) -> dict[str, int | str]:
        return {"amount_minor": self.amount_minor, "currency": self.currency}


def allocate_bps(amount_minor: int, bps: int) -> tuple[int, int]:
    """Split `amount_minor` into (share, remainder) for a basis-point rate.

    The share is rounded half-down toward zero so it never exceeds the exact value; the
    remainder is the rest, so share + remainder == amount_minor always: no minor unit is
    created or lost.
    """
    if not 0 <= bps <= 10_000:
        raise ValidationFailed("basis points must be between 0 and 10000", field="bps")
    sign = -1 if amount_minor < 0 else 1
    share = sign * ((abs(amount_minor) * bps) // 10_000)
    return share, amount_minor - share


def allocate(amount_minor: int, weights: Sequence[int], *, remainder_to: int = 0) -> list[int]:
    """Split `amount_minor` in proportion to non-negative integer `weights`.

    Every part is rounded toward zero, and whatever rounding leaves over goes to the part
    at index `remainder_to` (e.g. the business's own revenue account), so the parts always
    sum to `amount_minor` exactly.
    """
    if not weights or any(weight < 0 for weight in weights) or sum(weights) == 0:
        raise ValidationFailed(
            "weights must be non-negative with a positive total", field="weights"
        )
    if not 0 <= remainder_to < len(weights):
        raise ValidationFailed("remainder_to must index one of the parts", field="remainder_to")
    total = sum(weights)
    sign = -1 if amount_minor < 0 else 1
    parts = [sign * ((abs(amount_minor) * weight) // total) for weight in weights]
    parts[remainder_to] += amount_minor - sum(parts)
    return parts


def format_minor(amount_minor: int, currency: str) -> str:
    """Plain decimal text by the currency's exponent: EGP 1234 -> "12.34", JPY -> "1234",
    KWD 1234 -> "1.234". No grouping or symbol, so it round-trips through CSV and spreadsheets."""
    exponent = currency_exponent(currency)
    sign = "-" if amount_minor < 0 else ""
    digits = str(abs(amount_minor))
    if exponent == 0:
        return sign + digits
    digits = digits.rjust(exponent + 1, "0")
    return f"{sign}{digits[:-exponent]}.{digits[-exponent:]}"


def parse_major(text: str, currency: str) -> int:
    """Decimal text in major units -> minor units; refuses more decimals than the exponent."""
    exponent = currency_exponent(currency)
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ValidationFailed(f"{text!r} is not a decimal amount", field="amount") from None
    scaled = value.scaleb(exponent)
    if not value.is_finite() or scaled != scaled.to_integral_value():
        raise ValidationFailed(
            f"{currency} allows at most {exponent} decimal places", field="amount"
        )
    return int(scaled)
