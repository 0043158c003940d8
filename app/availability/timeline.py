"""Integer-microsecond view of one resource's calendar, for fast sweeps.

Datetime arithmetic costs about a microsecond per operation; the slot loops run over tens
of thousands of candidates per query, so they work on ints and build datetimes only for
the slots they return (through a per-query cache, since resources share grids).
"""

from __future__ import annotations

from bisect import bisect_right
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from app.availability.schedule import ONE_DAY, day_start
from app.availability.types import ResourceCalendar
from app.errors import ValidationFailed

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def to_us(value: datetime, field: str = "datetime") -> int:
    try:
        return (value - EPOCH) // MICROSECOND
    except TypeError:  # naive: subtracting it from an aware datetime is refused
        raise ValidationFailed(f"{field} must carry a UTC offset", field=field) from None


def span_us(value: timedelta) -> int:
    return value // MICROSECOND


class DatetimeCache(dict[int, datetime]):
    """ints -> UTC datetimes, memoised for one query. `cache[us]` computes on a miss; a hit
    is a C-level dict lookup, so `map(cache.__getitem__, starts)` stays fast."""

    def __missing__(self, us: int) -> datetime:
        found = EPOCH + timedelta(microseconds=us)
        self[us] = found
        return found

    def at(self, us: int) -> datetime:
        return self[us]


def check_party(party_size: int) -> None:
    if party_size < 1:
        raise ValidationFailed("party_size must be at least 1", field="party_size")


class Timeline:
    """Open windows and the occupancy step function of one resource, in microseconds.

    Occupancy is kept as disjoint sorted segments of constant non-zero level (the sum of
    party sizes of the busy intervals covering them). Time off carried by the calendar
    counts as a full-capacity booking, so it blocks every policy.
    """

    __slots__ = ("capacity", "levels", "seg_ends", "seg_starts", "win_ends", "win_starts")

    def __init__(self, calendar: ResourceCalendar) -> None:
        if calendar.capacity < 1:
            raise ValidationFailed("capacity must be at least 1", field="capacity")
        self.capacity = calendar.capacity
        windows = sorted((to_us(w.start, "open"), to_us(w.end, "open")) for w in calendar.open)
        self.win_starts: list[int] = []
        self.win_ends: list[int] = []
        for start, end in windows:
            if end <= start:
                continue
            if self.win_ends and start <= self.win_ends[-1]:
                self.win_ends[-1] = max(self.win_ends[-1], end)
                continue
            self.win_starts.append(start)
            self.win_ends.append(end)
        events = _busy_events(calendar)
        for off in calendar.time_off:
            _add_events(events, off.start, off.end, self.capacity)
        self.seg_starts, self.seg_ends, self.levels = _segments(events)

    def window_around(self, start: int, end: int) -> int | None:
        """Index of the open window that contains [start, end), if one does."""
        index = bisect_right(self.win_starts, start) - 1
        if index >= 0 and end <= self.win_ends[index]:
            return index
        return None

    def max_level(self, start: int, end: int) -> int:
        """Highest occupancy anywhere in [start, end)."""
        index = bisect_right(self.seg_ends, start)
        starts, levels = self.seg_starts, self.levels
        count = len(starts)
        highest = 0
        while index < count and starts[index] < end:
            if levels[index] > highest:
                highest = levels[index]
            index += 1
        return highest

    def blocked(self, party_size: int) -> list[tuple[int, int]]:
        """Merged stretches where fewer than `party_size` places are left."""
        limit = self.capacity - party_size
        stretches: list[tuple[int, int]] = []
        for start, end, level in zip(self.seg_starts, self.seg_ends, self.levels, strict=True):
            if level <= limit:
                continue
            if stretches and stretches[-1][1] == start:
                stretches[-1] = (stretches[-1][0], end)
            else:
                stretches.append((start, end))
        return stretches

    def open_on(self, start: int, end: int) -> bool:
        """Whether any open window overlaps [start, end)."""
        index = bisect_right(self.win_ends, start)
        return index < len(self.win_starts) and self.win_starts[index] < end


def _busy_events(calendar: ResourceCalendar) -> list[tuple[int, int]]:
    """(time, +size) and (time, -size) for every busy interval: the hot loop of a query, so
    inlined rather than a call per booking."""
    events: list[tuple[int, int]] = []
    append = events.append
    try:
        for busy in calendar.busy:
            size = busy.party_size
            if size < 1:
                raise ValidationFailed("party_size of a booking must be at least 1", field="busy")
            begin = (busy.start - EPOCH) // MICROSECOND
            finish = (busy.end - EPOCH) // MICROSECOND
            if finish > begin:
                append((begin, size))
                append((finish, -size))
    except TypeError:  # a naive datetime
        raise ValidationFailed("busy must carry a UTC offset", field="busy") from None
    return events


def _add_events(events: list[tuple[int, int]], start: datetime, end: datetime, size: int) -> None:
    if size < 1:
        raise ValidationFailed("party_size of a booking must be at least 1", field="busy")
    begin, finish = to_us(start, "busy"), to_us(end, "busy")
    if finish > begin:
        events.append((begin, size))
        events.append((finish, -size))


def _segments(events: list[tuple[int, int]]) -> tuple[list[int], list[int], list[int]]:
    events.sort()
    starts: list[int] = []
    ends: list[int] = []
    levels: list[int] = []
    level = since = index = 0
    count = len(events)
    while index < count:
        at = events[index][0]
        if level > 0:
            if levels and levels[-1] == level and ends[-1] == since:
                ends[-1] = at
            else:
                starts.append(since)
                ends.append(at)
                levels.append(level)
        while index < count and events[index][0] == at:
            level += events[index][1]
            index += 1
        since = at
    return starts, ends, levels


def start_bounds(now: datetime, min_notice: timedelta, max_advance: timedelta) -> tuple[int, int]:
    """Earliest and latest allowed start (inclusive): minimum notice and maximum advance."""
    now_us = to_us(now, "now")
    return now_us + span_us(min_notice), now_us + span_us(max_advance)


def date_bounds(tz: ZoneInfo, first: date, last: date) -> tuple[int, int]:
    """[first instant of `first`, first instant of the day after `last`) in the branch zone.

    A start lies in this range exactly when its local date is in first..last provided local
    dates never step backwards, i.e. no backward transition crosses local midnight. That
    holds for New York, London and Cairo (property-tested); not checked for every zone.
    """
    if last < first:
        raise ValidationFailed("The date range ends before it starts", field="to")
    return to_us(day_start(first, tz)), to_us(day_start(last + ONE_DAY, tz))
