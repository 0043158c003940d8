"""Read models of the catalog: frozen dataclasses other domains receive, and price_for."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from app.money import Money
from app.payments.policy import cancellation_refund_bps

_REFERENCE = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class BranchView:
    id: uuid.UUID
    name: str
    timezone: str
    active: bool = True
    address: str | None = None


@dataclass(frozen=True, slots=True)
class WeeklyWindow:
    """Local wall-clock working hours of a resource at a branch; weekday 0 = Monday."""

    weekday: int
    start: time
    end: time
    branch_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class OverrideView:
    """A date with an override uses only its own hours, or none when closed."""

    on_date: date
    closed: bool
    start: time | None
    end: time | None


@dataclass(frozen=True, slots=True)
class TimeOffView:
    id: uuid.UUID
    resource_id: uuid.UUID
    start: datetime
    end: datetime
    reason: str | None


@dataclass(frozen=True, slots=True)
class ResourceView:
    id: uuid.UUID
    name: str
    kind: str
    capacity: int
    branch_ids: tuple[uuid.UUID, ...]
    commission_bps: int | None
    active: bool


@dataclass(frozen=True, slots=True)
class ResourceSchedule:
    """What availability needs about one resource: capacity, hours, overrides and time off."""

    resource_id: uuid.UUID
    capacity: int
    weekly: tuple[WeeklyWindow, ...]
    overrides: tuple[OverrideView, ...]
    time_off: tuple[TimeOffView, ...]


@dataclass(frozen=True, slots=True)
class ResourceDetail:
    resource: ResourceView
    schedule: ResourceSchedule


@dataclass(frozen=True, slots=True)
class RefundTier:
    """Cancelling at least `hours_before` the start refunds `refund_bps` of the price."""

    hours_before: int
    refund_bps: int


@dataclass(frozen=True, slots=True)
class CancellationPolicy:
    tiers: tuple[RefundTier, ...] = ()  # sorted by hours_before, largest first
    no_show_fee_bps: int | None = None

    def terms(self) -> dict[str, Any]:
        """The policy as stored on the service and read by the money path."""
        body: dict[str, Any] = {
            "tiers": [
                {"hours_before": t.hours_before, "refund_bps": t.refund_bps} for t in self.tiers
            ]
        }
        if self.no_show_fee_bps is not None:
            body["no_show_fee_bps"] = self.no_show_fee_bps
        return body

    def refund_bps(self, hours_before_start: float) -> int:
        """The refund share for a cancellation this many hours before the start (negative:
        after it), by the one rule the money path applies,
        app.payments.policy.cancellation_refund_bps (no tiers: a full refund before the start)."""
        starts_at = _REFERENCE + timedelta(hours=hours_before_start)
        return cancellation_refund_bps(self.terms(), starts_at, _REFERENCE)


@dataclass(frozen=True, slots=True)
class BranchPrice:
    branch_id: uuid.UUID
    amount_minor: int
    pricing: str


@dataclass(frozen=True, slots=True)
class ServiceView:
    id: uuid.UUID
    name: str
    policy: str
    duration_minutes: int | None
    slot_step_minutes: int | None
    buffer_before_minutes: int
    buffer_after_minutes: int
    min_notice_minutes: int
    max_advance_days: int
    min_nights: int | None
    max_nights: int | None
    check_in_time: time | None
    check_out_time: time | None
    min_minutes: int | None
    max_minutes: int | None
    price: Money
    pricing: str
    branch_prices: tuple[BranchPrice, ...]
    resource_ids: tuple[uuid.UUID, ...]
    commission_bps: int | None
    commission_fixed_minor: int | None
    cancellation_policy: CancellationPolicy
    active: bool


@dataclass(frozen=True, slots=True)
class Price:
    """A unit price: per booking (fixed), per hour (hourly) or per night (nightly)."""

    amount: Money
    pricing: str


def price_for(service: ServiceView, branch_id: uuid.UUID | None) -> Price:
    """The service's price at a branch: the branch override when one exists, else the base."""
    for override in service.branch_prices:
        if override.branch_id == branch_id:
            return Price(Money(override.amount_minor, service.price.currency), override.pricing)
    return Price(service.price, service.pricing)


@dataclass(frozen=True, slots=True)
class StockLevel:
    branch_id: uuid.UUID
    quantity: int


@dataclass(frozen=True, slots=True)
class ProductView:
    id: uuid.UUID
    name: str
    price: Money
    stock: tuple[StockLevel, ...]
    active: bool = True


@dataclass(frozen=True, slots=True)
class StockMovementView:
    id: uuid.UUID
    product_id: uuid.UUID
    branch_id: uuid.UUID
    delta: int
    quantity_after: int
    kind: str
    reason: str
    actor_kind: str
    actor_id: uuid.UUID | None
    booking_id: uuid.UUID | None
    created_at: datetime
