"""The availability engine: pure functions from calendars and rules to bookable times.

No I/O and no clock: the caller passes `now`, the branch timezone and, per resource, the
open windows (`open_windows`) and busy intervals widened by buffers. All returned times
are UTC. Nightly stays live in `nightly.py`, free intervals in `interval.py`; everything is
re-exported here so callers import one module.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from functools import partial
from itertools import repeat
from operator import add
from uuid import UUID
from zoneinfo import ZoneInfo

from app.availability.interval import interval_is_bookable, interval_windows
from app.availability.nightly import nightly_options, stay_window
from app.availability.schedule import (
    DateOverride,
    WeeklyHours,
    Window,
    day_start,
    local_to_utc,
    open_windows,
)
from app.availability.timeline import (
    DatetimeCache,
    Timeline,
    check_party,
    date_bounds,
    span_us,
    start_bounds,
    to_us,
)
from app.availability.types import (
    Busy,
    IntervalRule,
    NightlyRule,
    ResourceCalendar,
    Slot,
    SlotRule,
    StayOption,
    busy_from_booking,
)

__all__ = [
    "Busy",
    "DateOverride",
    "IntervalRule",
    "NightlyRule",
    "ResourceCalendar",
    "Slot",
    "SlotRule",
    "StayOption",
    "WeeklyHours",
    "Window",
    "busy_from_booking",
    "day_start",
    "interval_is_bookable",
    "interval_windows",
    "local_to_utc",
    "nightly_options",
    "open_windows",
    "slot_is_bookable",
    "stay_window",
    "time_slots",
]


# Slot instances straight from tuples at C speed (a NamedTuple's own __new__ is Python code).
_MAKE_SLOT = partial(tuple.__new__, Slot)


class _Grid:
    """A SlotRule in microseconds."""

    __slots__ = ("after", "before", "duration", "duration_delta", "step", "step_delta")

    def __init__(self, rule: SlotRule) -> None:
        self.duration = span_us(rule.duration)
        self.step = span_us(rule.step)
        self.before = span_us(rule.buffer_before)
        self.after = span_us(rule.buffer_after)
        self.step_delta = rule.step
        self.duration_delta = rule.duration


def time_slots(
    rule: SlotRule,
    calendars: Sequence[ResourceCalendar],
    tz: ZoneInfo,
    first: date,
    last: date,
    now: datetime,
    party_size: int = 1,
) -> list[Slot]:
    """Every bookable slot whose start's local date is in first..last.

    Candidate starts run every `step` from the start of each open window. A start s is
    offered when [s - buffer_before, s + duration + buffer_after) lies inside one open
    window (buffers must fit in working hours), now + min_notice <= s <= now + max_advance,
    and capacity minus the peak concurrent party sizes over that buffered range is at least
    `party_size`. Sorted by (start, resource_id).
    """
    check_party(party_size)
    earliest, latest = start_bounds(now, rule.min_notice, rule.max_advance)
    lowest, highest = date_bounds(tz, first, last)
    bounds = (max(earliest, lowest), min(latest, highest - 1))
    grid = _Grid(rule)
    cache = DatetimeCache()
    keys: list[int] = []
    slots: list[Slot] = []
    for calendar in sorted(calendars, key=lambda c: c.resource_id):
        timeline = Timeline(calendar)
        starts: list[int] = []
        for low, high in _free_starts(grid, timeline, bounds, party_size):
            starts.extend(range(low, high + 1, grid.step))
        keys.extend(starts)
        _emit(grid, timeline, calendar.resource_id, starts, cache, slots, party_size)
    # Resources were visited in id order and sorted() is stable, so ties keep that order.
    order = sorted(range(len(keys)), key=keys.__getitem__)
    return [slots[index] for index in order]


def _free_starts(
    grid: _Grid, timeline: Timeline, bounds: tuple[int, int], party_size: int
) -> list[tuple[int, int]]:
    """Grid-aligned inclusive ranges [low, high] of allowed starts, window by window."""
    if party_size > timeline.capacity:
        return []
    blocked = timeline.blocked(party_size)
    duration, step, before, after = grid.duration, grid.step, grid.before, grid.after
    ranges: list[tuple[int, int]] = []
    cursor = 0
    for window_start, window_end in zip(timeline.win_starts, timeline.win_ends, strict=True):
        low = max(window_start + before, bounds[0])
        high = min(window_end - after - duration, bounds[1])
        if low > high:
            continue
        # A blocked stretch [b0, b1) forbids starts strictly between b0 - duration - after
        # and b1 + before; stretches wholly behind `low` stay behind for later windows too.
        while cursor < len(blocked) and blocked[cursor][1] + before <= low:
            cursor += 1
        index = cursor
        while low <= high:
            if index < len(blocked) and blocked[index][0] - duration - after < high:
                piece_high = min(high, blocked[index][0] - duration - after)
                piece_low = max(low, blocked[index][1] + before)
                index += 1
            else:
                piece_high, piece_low = high, high + 1
            aligned = low + (window_start - low) % step
            if aligned <= piece_high:
                ranges.append((aligned, piece_high))
            low = max(low, piece_low)
    return ranges


def _emit(
    grid: _Grid,
    timeline: Timeline,
    resource_id: UUID,
    starts: list[int],
    cache: DatetimeCache,
    slots: list[Slot],
    party_size: int,
) -> None:
    """Append one resource's slots, starting at `starts` (ints, in order)."""
    # C-level map/zip over a memo shared by all resources: the per-slot cost is the Slot.
    begins = list(map(cache.__getitem__, starts))
    ends = map(add, begins, repeat(grid.duration_delta))
    # Where a full-capacity party fits, nothing else is booked: no need to look.
    if timeline.capacity == party_size or not timeline.levels:
        remaining: Iterable[int] = repeat(timeline.capacity)
    else:
        peak, before, tail = timeline.max_level, grid.before, grid.duration + grid.after
        remaining = [timeline.capacity - peak(s - before, s + tail) for s in starts]
    slots.extend(map(_MAKE_SLOT, zip(begins, ends, repeat(resource_id), remaining)))


def slot_is_bookable(
    rule: SlotRule,
    calendar: ResourceCalendar,
    start: datetime,
    now: datetime,
    party_size: int = 1,
) -> int | None:
    """Capacity left BEFORE booking `start` if it is bookable under `time_slots`' rules.

    The start must sit on the same grid (every `step` from the start of its open window).
    Unlike `time_slots` there is no date range: any date within max_advance is fine.
    """
    check_party(party_size)
    grid = _Grid(rule)
    timeline = Timeline(calendar)
    at = to_us(start, "start")
    earliest, latest = start_bounds(now, rule.min_notice, rule.max_advance)
    if not earliest <= at <= latest:
        return None
    begin, finish = at - grid.before, at + grid.duration + grid.after
    window = timeline.window_around(begin, finish)
    if window is None or (at - timeline.win_starts[window]) % grid.step:
        return None
    remaining = timeline.capacity - timeline.max_level(begin, finish)
    return remaining if remaining >= party_size else None
