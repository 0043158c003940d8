"""HTTP shapes for the catalog. Types and sizes are checked here; meaning in the use cases."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any

import msgspec

from app.catalog.checks import clock_text
from app.catalog.views import (
    BranchView,
    CancellationPolicy,
    ProductView,
    ResourceDetail,
    ResourceView,
    ServiceView,
    TimeOffView,
)
from app.money import Money

Short = Annotated[str, msgspec.Meta(max_length=300)]
Clock = Annotated[str, msgspec.Meta(max_length=8)]
Ids = Annotated[list[uuid.UUID], msgspec.Meta(max_length=200)]


class MoneyIO(msgspec.Struct, forbid_unknown_fields=True):
    amount_minor: int
    currency: Annotated[str, msgspec.Meta(max_length=3)]

    @classmethod
    def of(cls, money: Money) -> MoneyIO:
        return cls(money.amount_minor, money.currency)


class BranchIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Short
    timezone: Short
    address: str | None = None


class BranchOut(msgspec.Struct, omit_defaults=True):
    """`address` is left out when a branch has none."""

    id: uuid.UUID
    name: str
    timezone: str
    archived: bool
    address: str | None = None

    @classmethod
    def of(cls, view: BranchView) -> BranchOut:
        return cls(view.id, view.name, view.timezone, not view.active, view.address)


class ResourceIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Short
    kind: Short
    capacity: int
    branch_ids: Ids
    commission_bps: int | None = None


class ResourceOut(msgspec.Struct):
    id: uuid.UUID
    name: str
    kind: str
    capacity: int
    branch_ids: list[uuid.UUID]
    commission_bps: int | None
    active: bool
    archived: bool

    @classmethod
    def of(cls, view: ResourceView) -> ResourceOut:
        return cls(
            view.id,
            view.name,
            view.kind,
            view.capacity,
            list(view.branch_ids),
            view.commission_bps,
            view.active,
            not view.active,
        )


class WeeklyIO(msgspec.Struct, forbid_unknown_fields=True):
    weekday: int
    start: Clock
    end: Clock
    branch_id: uuid.UUID


class OverrideIn(msgspec.Struct, forbid_unknown_fields=True):
    date: date
    closed: bool = False
    start: Clock | None = None
    end: Clock | None = None


class OverrideOut(msgspec.Struct):
    date: date
    closed: bool
    start: str | None
    end: str | None


class ScheduleIn(msgspec.Struct, forbid_unknown_fields=True):
    weekly: Annotated[list[WeeklyIO], msgspec.Meta(max_length=200)]
    overrides: Annotated[list[OverrideIn], msgspec.Meta(max_length=2000)] = []


class TimeOffIn(msgspec.Struct, forbid_unknown_fields=True):
    start: datetime
    end: datetime
    reason: Annotated[str, msgspec.Meta(max_length=1000)] | None = None


class TimeOffOut(msgspec.Struct):
    id: uuid.UUID
    resource_id: uuid.UUID
    start: datetime
    end: datetime
    reason: str | None

    @classmethod
    def of(cls, view: TimeOffView) -> TimeOffOut:
        return cls(view.id, view.resource_id, view.start, view.end, view.reason)


class ScheduleOut(msgspec.Struct):
    weekly: list[WeeklyIO]
    overrides: list[OverrideOut]
    time_off: list[TimeOffOut]


class ResourceDetailOut(msgspec.Struct):
    id: uuid.UUID
    name: str
    kind: str
    capacity: int
    branch_ids: list[uuid.UUID]
    commission_bps: int | None
    active: bool
    archived: bool
    schedule: ScheduleOut

    @classmethod
    def of(cls, detail: ResourceDetail) -> ResourceDetailOut:
        r, s = detail.resource, detail.schedule
        schedule = ScheduleOut(
            weekly=[
                WeeklyIO(w.weekday, clock_text(w.start) or "", clock_text(w.end) or "", w.branch_id)
                for w in s.weekly
            ],
            overrides=[
                OverrideOut(o.on_date, o.closed, clock_text(o.start), clock_text(o.end))
                for o in s.overrides
            ],
            time_off=[TimeOffOut.of(t) for t in s.time_off],
        )
        return cls(
            r.id,
            r.name,
            r.kind,
            r.capacity,
            list(r.branch_ids),
            r.commission_bps,
            r.active,
            not r.active,
            schedule,
        )


class TierIO(msgspec.Struct, forbid_unknown_fields=True):
    hours_before: int
    refund_bps: int


class CancellationIO(msgspec.Struct, forbid_unknown_fields=True):
    tiers: Annotated[list[TierIO], msgspec.Meta(max_length=50)] = []
    no_show_fee_bps: int | None = None

    @classmethod
    def of(cls, policy: CancellationPolicy) -> CancellationIO:
        return cls(
            [TierIO(t.hours_before, t.refund_bps) for t in policy.tiers], policy.no_show_fee_bps
        )


class BranchPriceIO(msgspec.Struct, forbid_unknown_fields=True):
    branch_id: uuid.UUID
    amount_minor: int
    pricing: Short


class ServiceIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Short
    policy: Short
    price: MoneyIO
    pricing: Short
    resource_ids: Ids
    duration_minutes: int | None = None
    slot_step_minutes: int | None = None
    buffer_before_minutes: int = 0
    buffer_after_minutes: int = 0
    min_notice_minutes: int = 0
    max_advance_days: int = 365
    min_nights: int | None = None
    max_nights: int | None = None
    check_in_time: Clock | None = None
    check_out_time: Clock | None = None
    min_minutes: int | None = None
    max_minutes: int | None = None
    branch_prices: Annotated[list[BranchPriceIO], msgspec.Meta(max_length=200)] = []
    cancellation_policy: CancellationIO | None = None
    commission_bps: int | None = None
    commission_fixed_minor: int | None = None


class PublicServiceOut(msgspec.Struct):
    """What a customer may see: no commission terms."""

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
    check_in_time: str | None
    check_out_time: str | None
    min_minutes: int | None
    max_minutes: int | None
    price: MoneyIO
    pricing: str
    branch_prices: list[BranchPriceIO]
    resource_ids: list[uuid.UUID]
    cancellation_policy: CancellationIO

    @classmethod
    def fields_of(cls, v: ServiceView) -> dict[str, Any]:
        return {
            "id": v.id,
            "name": v.name,
            "policy": v.policy,
            "duration_minutes": v.duration_minutes,
            "slot_step_minutes": v.slot_step_minutes,
            "buffer_before_minutes": v.buffer_before_minutes,
            "buffer_after_minutes": v.buffer_after_minutes,
            "min_notice_minutes": v.min_notice_minutes,
            "max_advance_days": v.max_advance_days,
            "min_nights": v.min_nights,
            "max_nights": v.max_nights,
            "check_in_time": clock_text(v.check_in_time),
            "check_out_time": clock_text(v.check_out_time),
            "min_minutes": v.min_minutes,
            "max_minutes": v.max_minutes,
            "price": MoneyIO.of(v.price),
            "pricing": v.pricing,
            "branch_prices": [
                BranchPriceIO(p.branch_id, p.amount_minor, p.pricing) for p in v.branch_prices
            ],
            "resource_ids": list(v.resource_ids),
            "cancellation_policy": CancellationIO.of(v.cancellation_policy),
        }

    @classmethod
    def of(cls, view: ServiceView) -> PublicServiceOut:
        return cls(**cls.fields_of(view))


class ServiceOut(PublicServiceOut):
    commission_bps: int | None = None
    commission_fixed_minor: int | None = None
    active: bool = True
    archived: bool = False

    @classmethod
    def of(cls, view: ServiceView) -> ServiceOut:
        return cls(
            **cls.fields_of(view),
            commission_bps=view.commission_bps,
            commission_fixed_minor=view.commission_fixed_minor,
            active=view.active,
            archived=not view.active,
        )


class StockIO(msgspec.Struct, forbid_unknown_fields=True):
    branch_id: uuid.UUID
    quantity: int


class ProductIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Short
    price: MoneyIO
    stock: Annotated[list[StockIO], msgspec.Meta(max_length=200)] = []


class ProductOut(msgspec.Struct):
    id: uuid.UUID
    name: str
    price: MoneyIO
    stock: list[StockIO]
    archived: bool

    @classmethod
    def of(cls, view: ProductView) -> ProductOut:
        return cls(
            view.id,
            view.name,
            MoneyIO.of(view.price),
            [StockIO(s.branch_id, s.quantity) for s in view.stock],
            not view.active,
        )
