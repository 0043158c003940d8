"""Pure integer arithmetic of invoices: tax contained in tax-inclusive prices, and lines that
sum exactly to the money taken."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from app.errors import ValidationFailed

BPS = 10_000
ADJUSTMENT = "Adjustment"


@dataclass(frozen=True, slots=True)
class TaxSplit:
    net_minor: int
    tax_minor: int
    gross_minor: int


@dataclass(frozen=True, slots=True)
class Line:
    description: str
    quantity: int
    unit_price_minor: int
    amount_minor: int
    booking_id: uuid.UUID | None = None
    product_id: uuid.UUID | None = None


def check_rate(rate_bps: int) -> int:
    if isinstance(rate_bps, bool) or not 0 <= rate_bps <= BPS:
        raise ValidationFailed(
            "tax_rate_bps must be between 0 and 10000",
            errors=[{"field": "tax_rate_bps", "message": "must be between 0 and 10000"}],
        )
    return rate_bps


def included_tax(gross_minor: int, rate_bps: int) -> int:
    """The tax inside a tax-inclusive amount, gross * rate / (10000 + rate), rounded half to
    even with integers only, so no float ever touches money."""
    check_rate(rate_bps)
    if gross_minor < 0:
        return -included_tax(-gross_minor, rate_bps)
    denominator = BPS + rate_bps
    quotient, remainder = divmod(gross_minor * rate_bps, denominator)
    if 2 * remainder > denominator or (2 * remainder == denominator and quotient % 2 == 1):
        quotient += 1
    return quotient


def split_invoice(gross_minor: int, rate_bps: int) -> TaxSplit:
    tax = included_tax(gross_minor, rate_bps)
    return TaxSplit(gross_minor - tax, tax, gross_minor)


def split_credit(
    amount_minor: int, credited_minor: int, credited_tax_minor: int, rate_bps: int
) -> TaxSplit:
    """The tax of a credit note, taken cumulatively over the invoice's credit notes.

    Rounding each partial refund on its own could leave the credit notes' taxes a few minor
    units away from the invoice's tax after a full refund; the cumulative difference makes a
    fully credited invoice give back exactly the tax it charged, and a single refund is split
    exactly as an invoice of the same amount would be.
    """
    tax = included_tax(credited_minor + amount_minor, rate_bps) - credited_tax_minor
    tax = max(0, min(tax, amount_minor))
    return TaxSplit(amount_minor - tax, tax, amount_minor)


def balance_lines(lines: Sequence[Line], total_minor: int) -> list[Line]:
    """The lines, plus one adjustment line when they do not add up to what was paid: the
    document always states the money actually taken. A negative difference (the lines claim
    more than was paid) is taken off the last lines instead, since amounts stay >= 0."""
    result = list(lines)
    difference = total_minor - sum(line.amount_minor for line in result)
    if difference > 0:
        result.append(Line(ADJUSTMENT, 1, difference, difference))
        difference = 0
    index = len(result) - 1
    while difference < 0 and index >= 0:
        line = result[index]
        cut = min(line.amount_minor, -difference)
        if cut:
            result[index] = Line(
                line.description,
                1,
                line.amount_minor - cut,
                line.amount_minor - cut,
                line.booking_id,
                line.product_id,
            )
            difference += cut
        index -= 1
    if difference != 0:
        raise ValidationFailed("an invoice total cannot be negative", total_minor=total_minor)
    return result
