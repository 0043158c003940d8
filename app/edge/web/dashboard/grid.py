"""The calendar's layout, computed on the server so the page works without JavaScript: one
column per (day, resource), bookings placed on 15-minute grid rows, side by side in lanes
where they overlap (capacity-N resources), and links on the free hours to book them."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from app.bookings.queries import CalendarRow

ROW_MINUTES = 15
ROWS_PER_HOUR = 60 // ROW_MINUTES
MAX_LANES = 4
DEFAULT_OPEN_HOUR = 8
DEFAULT_CLOSE_HOUR = 20
# What the calendar shows: the slot is taken while these are; cancelled and expired are not.
SHOWN = frozenset({"pending_payment", "confirmed", "checked_in", "completed", "no_show"})


@dataclass(frozen=True, slots=True)
class Lane:
    id: uuid.UUID
    name: str


@dataclass(slots=True)
class Block:
    booking: CalendarRow
    row: int  # 1-based grid line
    span: int
    clipped_start: bool
    clipped_end: bool
    lane: int = 1


@dataclass(frozen=True, slots=True)
class FreeHour:
    row: int
    start: datetime


@dataclass(slots=True)
class Column:
    day: date
    resource: Lane
    origin: datetime  # the instant of the column's first row
    blocks: list[Block] = field(default_factory=list)
    free: tuple[FreeHour, ...] = ()  # the same tuple for every column of the day
    lanes: int = 1


@dataclass(frozen=True, slots=True)
class Grid:
    days: tuple[date, ...]
    resources: tuple[Lane, ...]
    open_hour: int
    close_hour: int
    columns: tuple[Column, ...]
    tz: ZoneInfo

    @property
    def rows(self) -> int:
        return (self.close_hour - self.open_hour) * ROWS_PER_HOUR

    def hours(self) -> list[tuple[int, time]]:
        return [
            (1 + (hour - self.open_hour) * ROWS_PER_HOUR, time(hour))
            for hour in range(self.open_hour, self.close_hour)
        ]

    def columns_of(self, day: date) -> list[Column]:
        return [c for c in self.columns if c.day == day]


def _local(day: date, minutes: int, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), tz) + timedelta(minutes=minutes)


def _minutes(moment: datetime, day: date, tz: ZoneInfo) -> int:
    """Minutes from the local midnight starting `day` (may be <0 or >1440)."""
    local = moment.astimezone(tz)
    return (local.date() - day).days * 1440 + local.hour * 60 + local.minute


def _spans(
    days: Sequence[date], bookings: Iterable[CalendarRow], tz: ZoneInfo
) -> list[tuple[CalendarRow, int, int]]:
    """Each booking's local start and end in minutes from the midnight starting days[0]
    (one time-zone conversion per instant; a DST day keeps its own wall-clock minutes)."""
    first = days[0]
    seen: dict[datetime, int] = {}

    def minutes(moment: datetime) -> int:
        found = seen.get(moment)
        if found is None:
            found = seen[moment] = _minutes(moment, first, tz)
        return found

    return [(b, minutes(b.start), minutes(b.end)) for b in bookings]


def _days_touched(start: int, end: int, count: int) -> range:
    """The indexes of the days (of `count`) that minutes [start, end) overlap."""
    return range(start // 1440 if start > 0 else 0, min(count, (end - 1) // 1440 + 1))


def _window(spans: Sequence[tuple[CalendarRow, int, int]], count: int) -> tuple[int, int]:
    first, last = DEFAULT_OPEN_HOUR * 60, DEFAULT_CLOSE_HOUR * 60
    for _, start, end in spans:
        for index in _days_touched(start, end, count):
            base = index * 1440
            low = start - base if start > base else 0
            high = end - base if end - base < 1440 else 1440
            if low < high:
                if low < first:
                    first = low
                if high > last:
                    last = high
    return first // 60, min(24, math.ceil(last / 60))


def _place(
    spans: Sequence[tuple[CalendarRow, int, int]],
    by_resource: dict[uuid.UUID, list[Column]],
    low: int,
    high: int,
) -> None:
    """Each booking into its resource's column of every day it touches, clipped to the
    window [low, high) minutes (plain comparisons: this runs once per booking and day)."""
    for booking, start_all, end_all in spans:
        days = by_resource.get(booking.resource_id)
        if days is None:
            continue
        for index in _days_touched(start_all, end_all, len(days)):
            start, end = start_all - index * 1440, end_all - index * 1440
            top = start if start > low else low
            bottom = end if end < high else high
            if top >= bottom:
                continue
            row = 1 + (top - low) // ROW_MINUTES
            span = -(-(bottom - low) // ROW_MINUTES) + 1 - row  # ceiling division
            days[index].blocks.append(Block(booking, row, max(1, span), start < low, end > high))


def _assign_lanes(blocks: list[Block]) -> int:
    """Greedy interval partitioning; past MAX_LANES, the rest share the last lane."""
    ends: list[int] = []
    for block in sorted(blocks, key=lambda b: (b.row, -b.span)):
        for index, end in enumerate(ends):
            if end <= block.row:
                ends[index] = block.row + block.span
                block.lane = index + 1
                break
        else:
            if len(ends) < MAX_LANES:
                ends.append(block.row + block.span)
                block.lane = len(ends)
            else:
                block.lane = MAX_LANES
                ends[-1] = max(ends[-1], block.row + block.span)
    return max(1, len(ends))


def build_grid(
    days: Sequence[date],
    resources: Sequence[Lane],
    bookings: Sequence[CalendarRow],
    tz: ZoneInfo,
    now: datetime,
) -> Grid:
    """One pass over the bookings: each is placed only in the columns of its own resource
    on the days it touches (days x resources x bookings would be 280,000 steps for a busy
    week; this is one per booking and day it spans)."""
    spans = _spans(days, (b for b in bookings if b.status in SHOWN), tz)
    open_hour, close_hour = _window(spans, len(days))
    low, high = open_hour * 60, close_hour * 60
    by_resource: dict[uuid.UUID, list[Column]] = {resource.id: [] for resource in resources}
    order: list[Column] = []
    for day in days:
        free = tuple(
            FreeHour(1 + (hour - open_hour) * ROWS_PER_HOUR, start_at)
            for hour in range(open_hour, close_hour)
            if (start_at := _local(day, hour * 60, tz)) > now
        )
        origin = _local(day, low, tz)
        for resource in resources:
            column = Column(day, resource, origin, free=free)
            by_resource[resource.id].append(column)
            order.append(column)
    _place(spans, by_resource, low, high)
    for column in order:
        column.blocks.sort(key=lambda b: (b.row, b.booking.start, b.booking.id))
        column.lanes = _assign_lanes(column.blocks)
    return Grid(tuple(days), tuple(resources), open_hour, close_hour, tuple(order), tz)


def week_of(day: date) -> list[date]:
    monday = day - timedelta(days=day.weekday())
    return [monday + timedelta(days=i) for i in range(7)]


def month_weeks(year: int, month: int) -> list[list[date | None]]:
    """Monday-first weeks of the month; None outside it."""
    first = date(year, month, 1)
    following = date(year + (month == 12), month % 12 + 1, 1)
    cells: list[date | None] = [None] * first.weekday()
    cells += [first + timedelta(days=i) for i in range((following - first).days)]
    cells += [None] * (-len(cells) % 7)
    return [cells[i : i + 7] for i in range(0, len(cells), 7)]
