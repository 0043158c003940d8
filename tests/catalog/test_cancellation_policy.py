"""The catalog's view of a cancellation policy and the money path apply one rule
(app.payments.policy.cancellation_refund_bps): no tiers, tiers, and after the start."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.catalog.views import CancellationPolicy, RefundTier
from app.payments.policy import cancellation_refund_bps

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
NO_TIERS = CancellationPolicy()
TIERED = CancellationPolicy((RefundTier(24, 10_000), RefundTier(2, 5_000)), no_show_fee_bps=0)
AT_START = CancellationPolicy((RefundTier(0, 2_500),))


@pytest.mark.parametrize(
    ("policy", "hours_before_start", "expected_bps"),
    [
        (NO_TIERS, 72, 10_000),  # no tiers: a full refund before the start
        (NO_TIERS, 0.25, 10_000),
        (NO_TIERS, 0, 0),  # at the start and after it nothing
        (NO_TIERS, -1, 0),
        (TIERED, 30, 10_000),
        (TIERED, 24, 10_000),
        (TIERED, 23.5, 5_000),
        (TIERED, 2, 5_000),
        (TIERED, 1, 0),  # later than every tier
        (TIERED, -3, 0),  # after the start
        (AT_START, 0, 2_500),
        (AT_START, -0.5, 0),
    ],
)
def test_the_catalog_and_the_money_path_agree(
    policy: CancellationPolicy, hours_before_start: float, expected_bps: int
) -> None:
    starts_at = NOW + timedelta(hours=hours_before_start)
    money_path = cancellation_refund_bps(policy.terms(), starts_at, NOW)
    assert policy.refund_bps(hours_before_start) == money_path == expected_bps


def test_terms_are_the_stored_shape_the_money_path_reads() -> None:
    assert TIERED.terms() == {
        "tiers": [
            {"hours_before": 24, "refund_bps": 10_000},
            {"hours_before": 2, "refund_bps": 5_000},
        ],
        "no_show_fee_bps": 0,
    }
    assert NO_TIERS.terms() == {"tiers": []}
