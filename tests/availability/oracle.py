"""A brute-force, minute-by-minute model of the availability rules, for property tests.

Written from the rules, not from the engine: minutes are ints (UTC minutes since the epoch),
local->UTC conversion searches the zone's offsets, and every check walks minutes one by one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from app.availability.engine import Busy, DateOverride, WeeklyHours, Window


def minute(value: datetime) -> int:
    return int(value.timestamp()) // 60


def local_date(at: int, tz: ZoneInfo) -> date:
    return datetime.fromtimestamp(at * 60, tz).date()


def to_utc(day: date, at: time, tz: ZoneInfo) -> int:
    """First real occurrence of a wall time; a skipped one uses the pre-gap (smaller) offset."""
    naive = datetime.combine(day, at)
    offsets = {
        (naive + timedelta(hours=12 * k)).replace(tzinfo=UTC).astimezone(tz).utcoffset()
        for k in range(-2, 3)
    }
    found = []
    for offset in offsets:
        assert offset is not None
        instant = (naive - offset).replace(tzinfo=UTC)
        if instant.astimezone(tz).replace(tzinfo=None) == naive:
            found.append(instant)
    if not found:
        smallest = min(o for o in offsets if o is not None)
        found.append((naive - smallest).replace(tzinfo=UTC))
    return minute(min(found))


def days(first: date, last: date) -> Iterable[date]:
    while first <= last:
        yield first
        first += timedelta(days=1)


def working_minutes(
    weekly: Sequence[WeeklyHours],
    overrides: Sequence[DateOverride],
    time_off: Sequence[Window],
    tz: ZoneInfo,
    first: date,
    last: date,
) -> set[int]:
    working: set[int] = set()
    for day in days(first, last):
        todays = [o for o in overrides if o.on_date == day]
        if todays:
            hours = [] if any(o.closed for o in todays) else [(o.start, o.end) for o in todays]
        else:
            hours = [(h.start, h.end) for h in weekly if h.weekday == day.weekday()]
        for start, end in hours:
            assert start is not None and end is not None
            working.update(range(to_utc(day, start, tz), to_utc(day, end, tz)))
    for off in time_off:
        working.difference_update(range(minute(off.start), minute(off.end)))
    return working


def levels(busy: Sequence[Busy]) -> Counter[int]:
    counts: Counter[int] = Counter()
    for item in busy:
        for at in range(minute(item.start), minute(item.end)):
            counts[at] += item.party_size
    return counts


@dataclass
class SlotCase:
    working: set[int]
    levels: Counter[int]
    capacity: int
    duration: int
    step: int
    before: int
    after: int
    earliest: int
    latest: int

    def run_start(self, at: int) -> int:
        while at - 1 in self.working:
            at -= 1
        return at

    def remaining(self, start: int, party: int) -> int | None:
        """Capacity left for a start, ignoring the date range; None when not bookable."""
        if not self.earliest <= start <= self.latest:
            return None
        span = range(start - self.before, start + self.duration + self.after)
        if any(at not in self.working for at in span):
            return None
        if (start - self.run_start(start - self.before)) % self.step:
            return None
        left = self.capacity - max(self.levels[at] for at in span)
        return left if left >= party else None

    def starts(self) -> list[int]:
        found: list[int] = []
        for at in sorted(self.working):
            if at - 1 in self.working:
                continue
            end = at
            while end in self.working:
                end += 1
            found.extend(range(at, end, self.step))
        return found


def stays(
    working: set[int],
    busy: Sequence[Busy],
    time_off: Sequence[Window],
    capacity: int,
    tz: ZoneInfo,
    check_in: time,
    check_out: time,
    nights: range,
    day: date,
    earliest: int,
    latest: int,
    party: int,
) -> list[tuple[int, int, int]]:
    """(nights, check-out minute, remaining) per allowed stay from `day`, each judged alone."""
    open_dates = {local_date(at, tz) for at in working}
    start = to_utc(day, check_in, tz)
    if not earliest <= start <= latest:
        return []
    found = []
    for count in nights:
        end = to_utc(day + timedelta(days=count), check_out, tz)
        if end <= start:
            continue
        if any(day + timedelta(days=i) not in open_dates for i in range(count)):
            continue
        if any(minute(o.start) < end and start < minute(o.end) for o in time_off):
            continue
        points = {start} | {minute(b.start) for b in busy if start <= minute(b.start) < end}
        peak = max(
            sum(b.party_size for b in busy if minute(b.start) <= at < minute(b.end))
            for at in points
        )
        if capacity - peak >= party:
            found.append((count, end, capacity - peak))
    return found
