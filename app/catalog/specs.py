"""Inputs of the catalog write use cases and their self-contained checks (no database)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time
from itertools import pairwise

from app.catalog.checks import MAX_MINUTES, MAX_NIGHTS, Problems
from app.catalog.models import POLICIES, PRICINGS
from app.catalog.views import CancellationPolicy, RefundTier

POLICY_PRICING = {"time_slot": "fixed", "nightly": "nightly", "interval": "hourly"}
MAX_TIERS = 20
DAY_MINUTES = 24 * 60


@dataclass(frozen=True, slots=True)
class WeeklyInput:
    weekday: int
    start: str
    end: str
    branch_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class OverrideInput:
    on_date: date
    closed: bool = False
    start: str | None = None
    end: str | None = None


@dataclass(frozen=True, slots=True)
class ParsedWeekly:
    weekday: int
    start: time
    end: time
    branch_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class ParsedOverride:
    on_date: date
    closed: bool
    start: time | None
    end: time | None


@dataclass(frozen=True, slots=True)
class StockInput:
    branch_id: uuid.UUID
    quantity: int


@dataclass(frozen=True, slots=True)
class TierInput:
    hours_before: int
    refund_bps: int


@dataclass(frozen=True, slots=True)
class BranchPriceInput:
    branch_id: uuid.UUID
    amount_minor: int
    pricing: str


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    name: str
    policy: str
    price_minor: int
    currency: str
    pricing: str
    resource_ids: tuple[uuid.UUID, ...]
    duration_minutes: int | None = None
    slot_step_minutes: int | None = None
    buffer_before_minutes: int = 0
    buffer_after_minutes: int = 0
    min_notice_minutes: int = 0
    max_advance_days: int = 365
    min_nights: int | None = None
    max_nights: int | None = None
    check_in_time: str | None = None
    check_out_time: str | None = None
    min_minutes: int | None = None
    max_minutes: int | None = None
    branch_prices: tuple[BranchPriceInput, ...] = ()
    commission_bps: int | None = None
    commission_fixed_minor: int | None = None
    tiers: tuple[TierInput, ...] = ()
    no_show_fee_bps: int | None = None


@dataclass(slots=True)
class CheckedService:
    """A ServiceSpec after its checks: parsed clock times and a normalised policy."""

    spec: ServiceSpec
    name: str
    check_in: time | None = None
    check_out: time | None = None
    cancellation: CancellationPolicy = field(default_factory=CancellationPolicy)


def check_weekly(weekly: list[WeeklyInput], problems: Problems) -> list[ParsedWeekly]:
    parsed: list[ParsedWeekly] = []
    for index, window in enumerate(weekly):
        name = f"weekly[{index}]"
        problems.int_range(window.weekday, f"{name}.weekday", 0, 6)
        start = problems.clock(window.start, f"{name}.start")
        end = problems.clock(window.end, f"{name}.end")
        if start is None or end is None:
            continue
        if end <= start:
            problems.add(f"{name}.end", "must be after start")
            continue
        parsed.append(ParsedWeekly(window.weekday, start, end, window.branch_id))
    _no_overlaps([(w.weekday, w.start, w.end, i) for i, w in enumerate(parsed)], "weekly", problems)
    return parsed


def check_overrides(overrides: list[OverrideInput], problems: Problems) -> list[ParsedOverride]:
    parsed: list[ParsedOverride] = []
    closed_dates: set[date] = set()
    for index, override in enumerate(overrides):
        name = f"overrides[{index}]"
        if override.closed:
            if override.start is not None or override.end is not None:
                problems.add(name, "a closed date takes no start or end")
            closed_dates.add(override.on_date)
            parsed.append(ParsedOverride(override.on_date, True, None, None))
            continue
        if not problems.required(override.start, f"{name}.start", "unless closed"):
            continue
        if not problems.required(override.end, f"{name}.end", "unless closed"):
            continue
        start = problems.clock(override.start, f"{name}.start")
        end = problems.clock(override.end, f"{name}.end")
        if start is not None and end is not None:
            if end <= start:
                problems.add(f"{name}.end", "must be after start")
            else:
                parsed.append(ParsedOverride(override.on_date, False, start, end))
    opened = [p for p in parsed if not p.closed]
    for day in sorted(closed_dates):
        if sum(1 for p in parsed if p.on_date == day) > 1:
            problems.add("overrides", f"{day} is closed and must have no other entries")
    _no_overlaps(
        [(p.on_date, p.start, p.end, i) for i, p in enumerate(opened) if p.start and p.end],
        "overrides",
        problems,
    )
    return parsed


def _no_overlaps(
    windows: list[tuple[object, time, time, int]], name: str, problems: Problems
) -> None:
    by_day: dict[object, list[tuple[time, time]]] = defaultdict(list)
    for day, start, end, _ in windows:
        by_day[day].append((start, end))
    for day, spans in by_day.items():
        spans.sort()
        for (_, first_end), (second_start, _) in pairwise(spans):
            if second_start < first_end:
                problems.add(name, f"windows on {day} overlap")
                break


def check_time_off(start: datetime, end: datetime, reason: str | None, problems: Problems) -> None:
    start_ok = problems.aware(start, "start")
    end_ok = problems.aware(end, "end")
    if start_ok and end_ok and end <= start:
        problems.add("end", "must be after start")
    if reason is not None and len(reason) > 500:
        problems.add("reason", "must be at most 500 characters")


def check_service(spec: ServiceSpec, problems: Problems) -> CheckedService:
    spec = with_defaults(spec)
    checked = CheckedService(spec, problems.text(spec.name, "name"))
    if spec.policy not in POLICIES:
        problems.add("policy", f"must be one of {', '.join(POLICIES)}")
    if spec.pricing not in PRICINGS:
        problems.add("pricing", f"must be one of {', '.join(PRICINGS)}")
    elif spec.policy in POLICY_PRICING and spec.pricing != POLICY_PRICING[spec.policy]:
        problems.add("pricing", f"must be {POLICY_PRICING[spec.policy]} for {spec.policy}")
    problems.minor(spec.price_minor, "price.amount_minor")
    for key in ("buffer_before_minutes", "buffer_after_minutes"):
        problems.int_range(getattr(spec, key), key, 0, DAY_MINUTES)
    problems.int_range(spec.min_notice_minutes, "min_notice_minutes", 0, MAX_MINUTES)
    problems.int_range(spec.max_advance_days, "max_advance_days", 1, 3660)
    problems.bps(spec.commission_bps, "commission_bps")
    problems.minor(spec.commission_fixed_minor, "commission_fixed_minor")
    if spec.commission_bps is not None and spec.commission_fixed_minor is not None:
        problems.add("commission_fixed_minor", "set commission_bps or this, not both")
    if not spec.resource_ids:
        problems.add("resource_ids", "must name at least one resource")
    problems.unique(spec.resource_ids, "resource_ids")
    _check_policy_fields(spec, checked, problems)
    _check_branch_prices(spec, problems)
    checked.cancellation = _check_cancellation(spec, problems)
    return checked


def with_defaults(spec: ServiceSpec) -> ServiceSpec:
    """A time-slot service without a step offers a slot every `duration` minutes, as every
    scheduling product does (a 45-minute cut at 09:00, 09:45, 10:30...)."""
    if (
        spec.policy == "time_slot"
        and spec.slot_step_minutes is None
        and isinstance(spec.duration_minutes, int)
    ):
        return replace(spec, slot_step_minutes=spec.duration_minutes)
    return spec


def _check_policy_fields(spec: ServiceSpec, checked: CheckedService, problems: Problems) -> None:
    why = f"for policy {spec.policy}"
    timed = spec.policy in ("time_slot", "interval")
    if spec.policy == "time_slot":
        if problems.required(spec.duration_minutes, "duration_minutes", why):
            problems.int_range(spec.duration_minutes, "duration_minutes", 1, DAY_MINUTES)
    else:
        problems.forbidden(spec.duration_minutes, "duration_minutes", why)
    if timed:
        if problems.required(spec.slot_step_minutes, "slot_step_minutes", why):
            problems.int_range(spec.slot_step_minutes, "slot_step_minutes", 1, DAY_MINUTES)
    else:
        problems.forbidden(spec.slot_step_minutes, "slot_step_minutes", why)
    if spec.policy == "nightly":
        _check_nightly(spec, checked, problems, why)
    else:
        for key in ("min_nights", "max_nights", "check_in_time", "check_out_time"):
            problems.forbidden(getattr(spec, key), key, why)
    if spec.policy == "interval":
        _check_interval(spec, problems, why)
    else:
        for key in ("min_minutes", "max_minutes"):
            problems.forbidden(getattr(spec, key), key, why)


def _check_nightly(
    spec: ServiceSpec, checked: CheckedService, problems: Problems, why: str
) -> None:
    if problems.required(spec.check_in_time, "check_in_time", why):
        checked.check_in = problems.clock(spec.check_in_time, "check_in_time")
    if problems.required(spec.check_out_time, "check_out_time", why):
        checked.check_out = problems.clock(spec.check_out_time, "check_out_time")
    low = spec.min_nights
    high = spec.max_nights
    if problems.required(low, "min_nights", why):
        problems.int_range(low, "min_nights", 1, MAX_NIGHTS)
    if problems.required(high, "max_nights", why):
        problems.int_range(high, "max_nights", 1, MAX_NIGHTS)
    if low is not None and high is not None and high < low:
        problems.add("max_nights", "must be at least min_nights")


def _check_interval(spec: ServiceSpec, problems: Problems, why: str) -> None:
    low = spec.min_minutes
    high = spec.max_minutes
    step = spec.slot_step_minutes
    for key, value in (("min_minutes", low), ("max_minutes", high)):
        if problems.required(value, key, why):
            problems.int_range(value, key, 1, MAX_MINUTES)
            if step and value and step > 0 and value % step:
                problems.add(key, "must be a multiple of slot_step_minutes (the granularity)")
    if low is not None and high is not None and high < low:
        problems.add("max_minutes", "must be at least min_minutes")


def _check_branch_prices(spec: ServiceSpec, problems: Problems) -> None:
    problems.unique([p.branch_id for p in spec.branch_prices], "branch_prices")
    for index, price in enumerate(spec.branch_prices):
        name = f"branch_prices[{index}]"
        problems.minor(price.amount_minor, f"{name}.amount_minor")
        expected = POLICY_PRICING.get(spec.policy)
        if expected and price.pricing != expected:
            problems.add(f"{name}.pricing", f"must be {expected} for {spec.policy}")


def _check_cancellation(spec: ServiceSpec, problems: Problems) -> CancellationPolicy:
    if len(spec.tiers) > MAX_TIERS:
        problems.add("cancellation_policy.tiers", f"must have at most {MAX_TIERS} tiers")
    problems.unique([t.hours_before for t in spec.tiers], "cancellation_policy.tiers")
    for index, tier in enumerate(spec.tiers):
        name = f"cancellation_policy.tiers[{index}]"
        problems.int_range(tier.hours_before, f"{name}.hours_before", 0, 24 * 366)
        problems.bps(tier.refund_bps, f"{name}.refund_bps")
    problems.bps(spec.no_show_fee_bps, "cancellation_policy.no_show_fee_bps")
    tiers = sorted(
        (RefundTier(t.hours_before, t.refund_bps) for t in spec.tiers),
        key=lambda tier: tier.hours_before,
        reverse=True,
    )
    return CancellationPolicy(tuple(tiers), spec.no_show_fee_bps)
