"""Pure money rules of a booking: refunds by cancellation tier, no-show fees, commission.

Every split goes through app.money.allocate_bps, so refund + retained always equals the
amount captured: no minor unit is created or lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.money import allocate_bps

FULL = 10_000


@dataclass(frozen=True, slots=True)
class Split:
    refund_minor: int
    retained_minor: int


def cancellation_refund_bps(policy: dict[str, Any], starts_at: datetime, now: datetime) -> int:
    """The refund rate for cancelling at `now`.

    No tiers: a full refund. Otherwise the tier with the largest `hours_before` that the
    cancellation still meets applies; cancelling later than every tier refunds nothing.
    After the start nothing is refunded.
    """
    tiers = sorted(policy.get("tiers") or [], key=lambda t: int(t["hours_before"]), reverse=True)
    if not tiers:
        return FULL if now < starts_at else 0
    hours_left = (starts_at - now).total_seconds() / 3600
    for tier in tiers:
        if hours_left >= int(tier["hours_before"]):
            return int(tier["refund_bps"])
    return 0


def split_refund(refundable_minor: int, refund_bps: int) -> Split:
    refund, retained = allocate_bps(refundable_minor, refund_bps)
    return Split(refund_minor=refund, retained_minor=retained)


def no_show_split(refundable_minor: int, policy: dict[str, Any]) -> Split:
    """A no-show keeps `no_show_fee_bps` of the payment (default: all of it)."""
    fee_bps = int(policy.get("no_show_fee_bps", FULL))
    fee, refund = allocate_bps(refundable_minor, fee_bps)
    return Split(refund_minor=refund, retained_minor=fee)


def commission_minor(
    recognised_minor: int,
    *,
    fixed_minor: int | None,
    service_bps: int | None,
    resource_bps: int | None,
) -> int:
    """Commission on recognised revenue: a fixed amount per service, else the service's rate,
    else the staff member's rate. Never more than the revenue itself."""
    if recognised_minor <= 0:
        return 0
    if fixed_minor is not None:
        return min(fixed_minor, recognised_minor)
    bps = service_bps if service_bps is not None else resource_bps
    if not bps:
        return 0
    return allocate_bps(recognised_minor, bps)[0]
