"""Occupancy and utilisation, computed from schedules and bookings. Pure: no I/O, no clock.

Everything is measured in the booking's branch timezone, for local dates first..last:
- Time services (time_slot, interval) are measured in seconds (reported as minutes).
  Available = open windows (weekly hours at the branch, date overrides, minus time off)
  x capacity; booked = the part of an active or completed booking inside the range
  x party size.
- Nightly services are measured in nights. Night d of a resource is available when its open
  windows touch local date d and no time off touches that night's stay (check-in on d to
  check-out on d+1, the nightly engine's rule), x capacity; booked = nights d in the range
  with check-in date <= d < check-out date, x party size.
- A resource is measured in the units of the services it performs (hours when it performs
  none). Counts (bookings, cancelled, no_shows, expired) are by local start date.
- Utilisation is booked / available in basis points, rounded down; 0 when nothing is
  available. `bookings` excludes expired holds (abandoned checkouts); the cancellation share
  is cancelled / bookings.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from app.availability.schedule import (
    ONE_DAY,
    DateOverride,
    WeeklyHours,
    Window,
    dates_between,
    day_start,
    local_to_utc,
    open_windows,
)
from app.bookings.models import ACTIVE, CANCELLED, COMPLETED, EXPIRED, NO_SHOW
from app.catalog.views import ResourceSchedule, ResourceView, ServiceView

MINUTES = "minutes"
NIGHTS = "nights"
GROUPINGS = ("resource", "branch", "service", "day")
BOOKED = ACTIVE | {COMPLETED}
BPS = 10_000
TOP = 5
SECOND = timedelta(seconds=1)
DEFAULT_CHECK_IN = time(15, 0)
DEFAULT_CHECK_OUT = time(11, 0)


@dataclass(frozen=True, slots=True)
class BookingFact:
    """The fields of a booking the report reads."""

    resource_id: uuid.UUID
    branch_id: uuid.UUID
    service_id: uuid.UUID
    starts_at: datetime
    ends_at: datetime
    party_size: int
    status: str


@dataclass(frozen=True, slots=True)
class Fact:
    """One contribution to the figures: available or booked amount, or a counted booking."""

    unit: str
    day: date
    resource_id: uuid.UUID
    branch_id: uuid.UUID
    service_id: uuid.UUID | None = None
    available: int = 0
    booked: int = 0
    status: str | None = None


@dataclass(slots=True)
class Tally:
    available: int = 0
    booked: int = 0
    bookings: int = 0
    cancelled: int = 0
    no_shows: int = 0
    expired: int = 0

    def add(self, fact: Fact) -> None:
        self.available += fact.available
        self.booked += fact.booked
        if fact.status == EXPIRED:
            self.expired += 1
        elif fact.status is not None:
            self.bookings += 1
            self.cancelled += fact.status == CANCELLED
            self.no_shows += fact.status == NO_SHOW


@dataclass(frozen=True, slots=True)
class OccupancyRow:
    period: date | None
    dimension: str | None
    label: str | None
    unit: str
    available: int
    """Minutes (unit "minutes") or nights, capacity included."""
    booked: int
    utilisation_bps: int
    bookings: int
    cancelled: int
    cancellation_share_bps: int
    no_shows: int
    expired: int


@dataclass(frozen=True, slots=True)
class OccupancyReport:
    start: date
    end: date
    group_by: str
    rows: list[OccupancyRow]
    totals: list[OccupancyRow]
    top_resources: list[OccupancyRow] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Catalog:
    branches: dict[uuid.UUID, tuple[str, ZoneInfo]]
    resources: Sequence[ResourceView]
    services: Sequence[ServiceView]
    schedules: dict[uuid.UUID, ResourceSchedule]

    def unit_of(self, service: ServiceView) -> str:
        return NIGHTS if service.policy == "nightly" else MINUTES

    def services_of(self, resource_id: uuid.UUID) -> list[ServiceView]:
        return [s for s in self.services if resource_id in s.resource_ids]


def ratio_bps(part: int, whole: int) -> int:
    return part * BPS // whole if whole > 0 else 0


def split_by_day(window: Window, tz: ZoneInfo) -> Iterator[tuple[date, int]]:
    """Seconds of a UTC window per local date (a window may cross local midnight)."""
    cursor = window.start
    while cursor < window.end:
        day = cursor.astimezone(tz).date()
        upto = min(window.end, day_start(day + ONE_DAY, tz))
        yield day, (upto - cursor) // SECOND
        cursor = upto


def available_facts(catalog: Catalog, first: date, last: date) -> list[Fact]:
    facts: list[Fact] = []
    for resource in catalog.resources:
        schedule = catalog.schedules.get(resource.id)
        if schedule is None:
            continue
        services = catalog.services_of(resource.id)
        units = {catalog.unit_of(s) for s in services} or {MINUTES}
        nightly = next((s for s in services if s.policy == "nightly"), None)
        stay = (
            (nightly.check_in_time if nightly else None) or DEFAULT_CHECK_IN,
            (nightly.check_out_time if nightly else None) or DEFAULT_CHECK_OUT,
        )
        # Weekly hours are per branch (each in its own timezone); overrides and time off
        # belong to the resource, as in the availability engine.
        branch_ids = sorted({w.branch_id for w in schedule.weekly}) or list(resource.branch_ids[:1])
        for branch_id in branch_ids:
            if branch_id in catalog.branches:
                base = Fact(MINUTES, first, resource.id, branch_id)
                tz = catalog.branches[branch_id][1]
                facts += _branch_facts(base, schedule, tz, units, stay, last)
    return facts


def _branch_facts(
    base: Fact,
    schedule: ResourceSchedule,
    tz: ZoneInfo,
    units: set[str],
    stay: tuple[time, time],
    last: date,
) -> list[Fact]:
    first = base.day
    weekly = [
        WeeklyHours(w.weekday, w.start, w.end)
        for w in schedule.weekly
        if w.branch_id == base.branch_id
    ]
    overrides = [DateOverride(o.on_date, o.closed, o.start, o.end) for o in schedule.overrides]
    time_off = [Window(t.start, t.end) for t in schedule.time_off]
    facts: list[Fact] = []
    if MINUTES in units:
        facts += [
            replace(base, day=day, available=seconds * schedule.capacity)
            for window in open_windows(weekly, overrides, time_off, tz, first, last)
            for day, seconds in split_by_day(window, tz)
        ]
    if NIGHTS in units:
        windows = open_windows(weekly, overrides, [], tz, first, last)
        facts += [
            replace(base, unit=NIGHTS, day=day, available=schedule.capacity)
            for day in dates_between(first, last)
            if _overlaps(windows, Window(day_start(day, tz), day_start(day + ONE_DAY, tz)))
            and not _overlaps(
                time_off,
                Window(local_to_utc(day, stay[0], tz), local_to_utc(day + ONE_DAY, stay[1], tz)),
            )
        ]
    return facts


def _overlaps(windows: Iterable[Window], target: Window) -> bool:
    return any(w.start < target.end and w.end > target.start for w in windows)


def booking_facts(
    catalog: Catalog, bookings: Iterable[BookingFact], first: date, last: date
) -> list[Fact]:
    services = {s.id: s for s in catalog.services}
    facts: list[Fact] = []
    for booking in bookings:
        service = services.get(booking.service_id)
        branch = catalog.branches.get(booking.branch_id)
        if service is None or branch is None:
            continue
        tz = branch[1]
        unit = catalog.unit_of(service)
        base = Fact(unit, first, booking.resource_id, booking.branch_id, booking.service_id)
        start_day = booking.starts_at.astimezone(tz).date()
        if first <= start_day <= last:
            facts.append(replace(base, day=start_day, status=booking.status))
        if booking.status not in BOOKED:
            continue
        if unit == NIGHTS:
            check_out = booking.ends_at.astimezone(tz).date()
            nights = dates_between(max(start_day, first), min(check_out - ONE_DAY, last))
            facts += [replace(base, day=day, booked=booking.party_size) for day in nights]
            continue
        clipped = Window(
            max(booking.starts_at, day_start(first, tz)),
            min(booking.ends_at, day_start(last + ONE_DAY, tz)),
        )
        facts += [
            replace(base, day=day, booked=seconds * booking.party_size)
            for day, seconds in split_by_day(clipped, tz)
        ]
    return facts


Key = tuple[date | None, uuid.UUID | None, str]


def _keys(catalog: Catalog, group_by: str | None) -> Callable[[Fact], list[Key]]:
    def keys(fact: Fact) -> list[Key]:
        if group_by is None:
            return [(None, None, fact.unit)]
        if group_by == "day":
            return [(fact.day, None, fact.unit)]
        if group_by == "branch":
            return [(None, fact.branch_id, fact.unit)]
        if group_by == "resource":
            return [(None, fact.resource_id, fact.unit)]
        if fact.service_id is not None:
            return [(None, fact.service_id, fact.unit)]
        # Available time counts toward every service its resource performs in that unit.
        return [
            (None, s.id, fact.unit)
            for s in catalog.services_of(fact.resource_id)
            if catalog.unit_of(s) == fact.unit
        ]

    return keys


def tally(catalog: Catalog, facts: Iterable[Fact], group_by: str | None) -> list[OccupancyRow]:
    keys = _keys(catalog, group_by)
    tallies: dict[Key, Tally] = defaultdict(Tally)
    for fact in facts:
        for key in keys(fact):
            tallies[key].add(fact)
    labels = _labels(catalog)
    rows = [
        _row(period, dimension, labels.get(dimension) if dimension else None, unit, t)
        for (period, dimension, unit), t in tallies.items()
    ]
    return sorted(
        rows, key=lambda r: (r.unit, r.period or date.min, r.label or "", r.dimension or "")
    )


def _labels(catalog: Catalog) -> dict[uuid.UUID, str]:
    labels = {branch_id: name for branch_id, (name, _) in catalog.branches.items()}
    labels.update({r.id: r.name for r in catalog.resources})
    labels.update({s.id: s.name for s in catalog.services})
    return labels


def _row(
    period: date | None, dimension: uuid.UUID | None, label: str | None, unit: str, t: Tally
) -> OccupancyRow:
    scale = 60 if unit == MINUTES else 1
    return OccupancyRow(
        period=period,
        dimension=str(dimension) if dimension else None,
        label=label,
        unit=unit,
        available=t.available // scale,
        booked=t.booked // scale,
        utilisation_bps=ratio_bps(t.booked, t.available),
        bookings=t.bookings,
        cancelled=t.cancelled,
        cancellation_share_bps=ratio_bps(t.cancelled, t.bookings),
        no_shows=t.no_shows,
        expired=t.expired,
    )


def build_report(
    catalog: Catalog,
    bookings: Iterable[BookingFact],
    *,
    first: date,
    last: date,
    group_by: str,
) -> OccupancyReport:
    facts = available_facts(catalog, first, last) + booking_facts(catalog, bookings, first, last)
    by_resource = tally(catalog, facts, "resource")
    top = [
        row
        for unit in (MINUTES, NIGHTS)
        for row in sorted(
            (r for r in by_resource if r.unit == unit and r.booked > 0),
            key=lambda r: (-r.booked, r.label or ""),
        )[:TOP]
    ]
    rows = by_resource if group_by == "resource" else tally(catalog, facts, group_by)
    return OccupancyReport(first, last, group_by, rows, tally(catalog, facts, None), top)
