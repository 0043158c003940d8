"""Money arithmetic never creates or loses a minor unit, in any currency exponent."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.errors import ValidationFailed
from app.money import MAX_MINOR, Money, allocate, allocate_bps, format_minor, parse_major

CURRENCIES = st.sampled_from(["EGP", "USD", "JPY", "KWD"])
AMOUNTS = st.integers(min_value=-MAX_MINOR, max_value=MAX_MINOR)
BPS = st.integers(min_value=0, max_value=10_000)


@given(amount=AMOUNTS, bps=BPS)
def test_allocate_bps_share_plus_remainder_is_the_amount(amount: int, bps: int) -> None:
    share, remainder = allocate_bps(amount, bps)
    assert share + remainder == amount
    # The share never exceeds the exact value in magnitude and is off by less than one unit.
    exact = abs(amount) * bps
    assert abs(share) * 10_000 <= exact < (abs(share) + 1) * 10_000
    assert share == 0 or (share > 0) == (amount > 0)


@given(
    amount=AMOUNTS, weights=st.lists(st.integers(0, 10_000), min_size=1, max_size=8), data=st.data()
)
def test_allocate_parts_sum_to_the_amount(
    amount: int, weights: list[int], data: st.DataObject
) -> None:
    if sum(weights) == 0:
        weights = [*weights[:-1], 1]
    remainder_to = data.draw(st.integers(0, len(weights) - 1))
    parts = allocate(amount, weights, remainder_to=remainder_to)
    assert sum(parts) == amount
    total = sum(weights)
    for index, (part, weight) in enumerate(zip(parts, weights, strict=True)):
        if index != remainder_to:
            # Every other part is its exact share rounded toward zero.
            assert abs(part) == abs(amount) * weight // total
    # The remainder part absorbs less than one unit per other part.
    exact_scaled = abs(amount) * weights[remainder_to]
    assert abs(abs(parts[remainder_to]) * total - exact_scaled) < len(weights) * total


@given(currency=CURRENCIES, amount=AMOUNTS)
def test_format_then_parse_round_trips_by_exponent(currency: str, amount: int) -> None:
    text = format_minor(amount, currency)
    assert parse_major(text, currency) == amount
    assert Money(amount, currency).format() == text


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [
        (12_345, "EGP", "123.45"),
        (5, "USD", "0.05"),
        (-5, "USD", "-0.05"),
        (12_345, "JPY", "12345"),
        (12_345, "KWD", "12.345"),
        (1, "KWD", "0.001"),
        (0, "EGP", "0.00"),
    ],
)
def test_format_uses_the_currency_exponent(amount: int, currency: str, text: str) -> None:
    assert format_minor(amount, currency) == text


@pytest.mark.parametrize(
    ("text", "currency"),
    [("1.5", "JPY"), ("1.001", "USD"), ("1.0001", "KWD"), ("abc", "EGP"), ("NaN", "EGP")],
)
def test_parse_refuses_precision_the_currency_does_not_have(text: str, currency: str) -> None:
    with pytest.raises(ValidationFailed):
        parse_major(text, currency)


def test_commission_split_of_an_odd_amount_keeps_every_unit() -> None:
    # 3 staff share 1000 piastres evenly; the business (part 0) takes the leftover unit.
    assert allocate(1_000, [0, 1, 1, 1], remainder_to=0) == [1, 333, 333, 333]
    assert allocate_bps(999, 1_500) == (149, 850)
    assert allocate_bps(-999, 1_500) == (-149, -850)
