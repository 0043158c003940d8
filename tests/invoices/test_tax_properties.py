"""Tax arithmetic never creates or loses a minor unit: property tests over amounts, rates and
currency exponents 0, 2 and 3, against a Decimal oracle, plus issued documents in the DB."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.errors import ValidationFailed
from app.invoices.amounts import Line, balance_lines, included_tax, split_credit, split_invoice
from app.invoices.render import percent
from app.money import MAX_MINOR, format_minor, parse_major
from tests.invoices.setup import (
    credit,
    invoice,
    make_paid,
    make_refund,
    make_shop,
    make_tenant,
    set_rate,
)

CURRENCIES = ["JPY", "EGP", "KWD"]  # exponents 0, 2, 3
amounts = st.integers(min_value=0, max_value=MAX_MINOR)
rates = st.integers(min_value=0, max_value=10_000)


def oracle_tax(gross: int, rate: int) -> int:
    exact = Decimal(gross) * rate / Decimal(10_000 + rate)
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


@given(gross=amounts, rate=rates)
def test_included_tax_is_the_half_even_rounding_of_the_exact_share(gross: int, rate: int) -> None:
    tax = included_tax(gross, rate)
    assert tax == oracle_tax(gross, rate)
    # The exact share is gross*rate/(10000+rate); the rounded tax is within half a unit.
    assert abs(2 * (tax * (10_000 + rate) - gross * rate)) <= 10_000 + rate


@given(gross=amounts, rate=rates, currency=st.sampled_from(CURRENCIES))
def test_net_and_tax_add_up_to_gross_in_every_exponent(
    gross: int, rate: int, currency: str
) -> None:
    split = split_invoice(gross, rate)
    assert split.net_minor + split.tax_minor == split.gross_minor == gross
    assert 0 <= split.tax_minor <= split.gross_minor
    shown = [format_minor(x, currency) for x in (split.net_minor, split.tax_minor, gross)]
    assert Decimal(shown[0]) + Decimal(shown[1]) == Decimal(shown[2])
    assert [parse_major(text, currency) for text in shown] == [
        split.net_minor,
        split.tax_minor,
        gross,
    ]
    # Tax on the net at the stated rate is off by at most one minor unit.
    assert abs(split.tax_minor * 10_000 - split.net_minor * rate) <= 10_000


@given(
    gross=st.integers(min_value=1, max_value=10**9),
    rate=rates,
    cuts=st.lists(st.integers(min_value=1, max_value=10**9), max_size=8),
)
def test_credit_notes_of_a_full_refund_give_back_exactly_the_invoice_tax(
    gross: int, rate: int, cuts: list[int]
) -> None:
    boundaries = sorted({cut % gross for cut in cuts} - {0})
    parts = [b - a for a, b in zip([0, *boundaries], [*boundaries, gross], strict=True)]
    credited = credited_tax = 0
    for part in parts:
        note = split_credit(part, credited, credited_tax, rate)
        assert note.net_minor + note.tax_minor == note.gross_minor == part
        assert 0 <= note.tax_minor <= part
        credited, credited_tax = credited + part, credited_tax + note.tax_minor
    assert credited == gross
    assert credited_tax == split_invoice(gross, rate).tax_minor


@given(
    amounts=st.lists(st.integers(min_value=0, max_value=10**12), min_size=0, max_size=10),
    total=st.integers(min_value=0, max_value=10**13),
)
def test_balanced_lines_sum_exactly_to_the_money_taken(amounts: list[int], total: int) -> None:
    lines = [Line(f"item {i}", 1, a, a) for i, a in enumerate(amounts)]
    balanced = balance_lines(lines, total)
    assert sum(line.amount_minor for line in balanced) == total
    assert all(line.amount_minor >= 0 for line in balanced)
    assert all(line.quantity * line.unit_price_minor == line.amount_minor for line in balanced)


def test_rates_outside_zero_to_one_hundred_percent_are_refused() -> None:
    for rate in (-1, 10_001):
        with pytest.raises(ValidationFailed):
            included_tax(100, rate)


@pytest.mark.parametrize(("bps", "text"), [(0, "0"), (1400, "14"), (1250, "12.5"), (5, "0.05")])
def test_percent_is_printed_without_floats(bps: int, text: str) -> None:
    assert percent(bps) == text


@settings(max_examples=25, deadline=None)
@given(
    currency=st.sampled_from(CURRENCIES),
    unit=st.integers(min_value=1, max_value=10**9),
    party=st.integers(min_value=1, max_value=5),
    products=st.integers(min_value=0, max_value=3),
    rate=rates,
    refund_bps=st.integers(min_value=1, max_value=10_000),
)
async def test_issued_documents_sum_exactly_in_the_database(
    owner_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    currency: str,
    unit: int,
    party: int,
    products: int,
    rate: int,
    refund_bps: int,
) -> None:
    tenant_id = await make_tenant(owner_engine, currency=currency)
    shop = await make_shop(owner_engine, tenant_id, currency=currency)
    await set_rate(owner_engine, tenant_id, rate)
    paid = await make_paid(
        owner_engine, shop, unit_price_minor=unit, party_size=party, products=products, series=2
    )
    issued = await invoice(sessions, tenant_id, paid.payment_id)
    refund = max(1, paid.amount_minor * refund_bps // 10_000)
    note = await credit(sessions, tenant_id, await make_refund(owner_engine, shop, paid, refund))

    assert issued.total.amount_minor == paid.amount_minor
    assert sum(line.amount.amount_minor for line in issued.lines) == paid.amount_minor
    assert issued.tax.amount_minor == oracle_tax(paid.amount_minor, rate)
    assert issued.subtotal.amount_minor + issued.tax.amount_minor == paid.amount_minor
    assert note.total.amount_minor == refund == sum(x.amount.amount_minor for x in note.lines)
    assert note.tax.amount_minor == oracle_tax(refund, rate)
    assert {issued.total.currency, note.total.currency} == {currency}
