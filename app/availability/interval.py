"""Interval bookings: customer-chosen [start, end) on a granularity grid. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from zoneinfo import ZoneInfo

from app.availability.timeline import (
    DatetimeCache,
    Timeline,
    check_party,
    date_bounds,
    span_us,
    start_bounds,
    to_us,
)
from app.availability.types import IntervalRule, ResourceCalendar, Slot


def interval_windows(
    rule: IntervalRule,
    calendars: Sequence[ResourceCalendar],
    first: date,
    last: date,
    tz: ZoneInfo,
    now: datetime,
    party_size: int = 1,
) -> list[Slot]:
    """Maximal free windows per resource (note: first, last, tz — not tz, first, last).

    A window is the union of every booking `interval_is_bookable` accepts whose start's
    local date is in first..last; the grid runs every `granularity` from the start of each
    open window. remaining = capacity left at the busiest point of the window's buffered
    range, so any booking inside it with a party up to `remaining` fits. Sorted by
    (start, resource_id).
    """
    check_party(party_size)
    earliest, latest = start_bounds(now, rule.min_notice, rule.max_advance)
    lowest, highest = date_bounds(tz, first, last)
    starts = (max(earliest, lowest), min(latest, highest - 1))
    step = span_us(rule.granularity)
    shortest = max(1, -(-span_us(rule.min_length) // step))
    longest = span_us(rule.max_length) // step
    if longest < shortest:
        return []
    before, after = span_us(rule.buffer_before), span_us(rule.buffer_after)
    cache = DatetimeCache()
    found: list[tuple[int, Slot]] = []
    for calendar in sorted(calendars, key=lambda c: c.resource_id):
        timeline = Timeline(calendar)
        for window_start, free_start, free_end in _free_runs(timeline, before, after, party_size):
            first_index = max(
                -((window_start - free_start) // step), -((window_start - starts[0]) // step)
            )
            last_end = (free_end - window_start) // step
            last_index = min((starts[1] - window_start) // step, last_end - shortest)
            if first_index > last_index:
                continue
            begin = window_start + first_index * step
            end = window_start + min(last_index + longest, last_end) * step
            left = timeline.capacity - timeline.max_level(begin - before, end + after)
            found.append((begin, Slot(cache.at(begin), cache.at(end), calendar.resource_id, left)))
    found.sort(key=lambda item: item[0])
    return [slot for _, slot in found]


def _free_runs(
    timeline: Timeline, before: int, after: int, party_size: int
) -> list[tuple[int, int, int]]:
    """(window start, run start, run end): where the booked time itself may lie.

    A booking [s, e) needs [s - before, e + after) inside the window and clear of every
    blocked stretch [b0, b1), i.e. [s, e) clear of [b0 - after, b1 + before).
    """
    if party_size > timeline.capacity:
        return []
    blocked = timeline.blocked(party_size)
    runs: list[tuple[int, int, int]] = []
    cursor = 0
    for window_start, window_end in zip(timeline.win_starts, timeline.win_ends, strict=True):
        low, high = window_start + before, window_end - after
        while cursor < len(blocked) and blocked[cursor][1] + before <= low:
            cursor += 1
        index = cursor
        while low < high:
            if index < len(blocked) and blocked[index][0] - after < high:
                run_end = min(high, blocked[index][0] - after)
                next_low = max(low, blocked[index][1] + before)
                index += 1
            else:
                run_end, next_low = high, high
            if low < run_end:
                runs.append((window_start, low, run_end))
            low = next_low
    return runs


def interval_is_bookable(
    rule: IntervalRule,
    calendar: ResourceCalendar,
    start: datetime,
    end: datetime,
    now: datetime,
    party_size: int = 1,
) -> int | None:
    """Capacity left BEFORE booking [start, end), or None if it is not bookable.

    Both ends must sit on the grid of the open window that holds the buffered booking,
    min_length <= end - start <= max_length, and notice/advance apply to the start.
    """
    check_party(party_size)
    timeline = Timeline(calendar)
    begin, finish = to_us(start, "start"), to_us(end, "end")
    earliest, latest = start_bounds(now, rule.min_notice, rule.max_advance)
    length = finish - begin
    if not earliest <= begin <= latest:
        return None
    if not span_us(rule.min_length) <= length <= span_us(rule.max_length):
        return None
    low, high = begin - span_us(rule.buffer_before), finish + span_us(rule.buffer_after)
    window = timeline.window_around(low, high)
    step = span_us(rule.granularity)
    if window is None or (begin - timeline.win_starts[window]) % step or length % step:
        return None
    remaining = timeline.capacity - timeline.max_level(low, high)
    return remaining if remaining >= party_size else None
