"""Pure helpers that turn an Availability into what the booking pages show: a month grid whose
days say whether anything is free, the free times of a day, stay lengths from a check-in
day, and interval starts and lengths. All local dates are in the branch's timezone."""

from __future__ import annotations

import calendar
import math
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from app.availability.service import Availability
from app.catalog.views import Price
from app.money import Money

MAX_LISTED_STARTS = 200


def parse_month(text: str | None) -> tuple[int, int] | None:
    """ "2030-01" -> (2030, 1); None or malformed -> None (this month)."""
    if not text or len(text) != 7 or text[4] != "-":
        return None
    try:
        year, month = int(text[:4]), int(text[5:])
    except ValueError:
        return None
    if not (2000 <= year <= 2200 and 1 <= month <= 12):
        return None
    return year, month


def month_key(year: int, month: int) -> str:
    return f"{year:04d}-{month:02d}"


def shift_month(year: int, month: int, by: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + by
    return index // 12, index % 12 + 1


def weeks(year: int, month: int, first_weekday: int = 0) -> list[list[date | None]]:
    """The month as weeks of 7 cells (None outside the month), weeks starting on
    `first_weekday` (0 = Monday)."""
    grid = calendar.Calendar(first_weekday).monthdatescalendar(year, month)
    return [[day if day.month == month else None for day in week] for week in grid]


def free_days(found: Availability, tz: ZoneInfo) -> dict[date, int]:
    """Local date -> how many distinct start times (or check-in options) are free."""
    starts: dict[date, set[datetime]] = defaultdict(set)
    for slot in found.slots:
        starts[slot.start.astimezone(tz).date()].add(slot.start)
    counts = {day: len(found_starts) for day, found_starts in starts.items()}
    for stay in found.stays:
        counts[stay.check_in_date] = counts.get(stay.check_in_date, 0) + len(stay.nights)
    return counts


@dataclass(frozen=True, slots=True)
class TimeOption:
    start: datetime
    end: datetime
    remaining: int


def times_on(found: Availability, day: date, tz: ZoneInfo) -> list[TimeOption]:
    """The free starts of one local day, once each (any of several people may take it): the
    places left are the most any one resource has at that time."""
    best: dict[datetime, TimeOption] = {}
    for slot in found.slots:
        if slot.start.astimezone(tz).date() != day:
            continue
        known = best.get(slot.start)
        if known is None or slot.remaining > known.remaining:
            best[slot.start] = TimeOption(slot.start, slot.end, slot.remaining)
    return [best[start] for start in sorted(best)]


@dataclass(frozen=True, slots=True)
class StayChoice:
    start: datetime
    end: datetime
    nights: int
    check_out: date


def stays_from(found: Availability, day: date, tz: ZoneInfo) -> list[StayChoice]:
    """Stay lengths that can check in on `day`, each once, shortest first."""
    choices: dict[int, StayChoice] = {}
    for stay in found.stays:
        if stay.check_in_date != day:
            continue
        for nights in stay.nights:
            if nights in choices:
                continue
            check_out = day + timedelta(days=nights)
            end = stay.start + timedelta(days=nights)
            choices[nights] = StayChoice(stay.start, end, nights, check_out)
    return [choices[n] for n in sorted(choices)]


def interval_starts(
    found: Availability, day: date, tz: ZoneInfo, step: timedelta, shortest: timedelta
) -> list[datetime]:
    """Starts on `day` (on the grid of each free window) with room for the shortest rental."""
    starts: set[datetime] = set()
    for window in found.slots:
        at = window.start
        while at + shortest <= window.end and len(starts) < MAX_LISTED_STARTS:
            if at.astimezone(tz).date() == day:
                starts.add(at)
            at += step
    return sorted(starts)


def interval_lengths(
    found: Availability,
    start: datetime,
    step: timedelta,
    shortest: timedelta,
    longest: timedelta,
) -> list[timedelta]:
    """Lengths (multiples of the grid) a rental starting at `start` may have."""
    room = max(
        (w.end - start for w in found.slots if w.start <= start < w.end), default=timedelta(0)
    )
    first = math.ceil(shortest / step)
    last = min(longest, room) // step
    return [step * k for k in range(first, last + 1)]


def estimate(price: Price, start: datetime, end: datetime, nights: int, party: int) -> Money:
    """The total place_booking will snapshot (app/bookings/rules.price): per started hour,
    per night or per booking, times the party."""
    if price.pricing == "hourly":
        quantity = math.ceil((end - start) / timedelta(hours=1))
    elif price.pricing == "nightly":
        quantity = nights or math.ceil((end - start) / timedelta(days=1))
    else:
        quantity = 1
    return price.amount.times(quantity * party)


def resource_choice(text: str | None) -> uuid.UUID | None:
    """The `who` query parameter: a resource id, or anyone ("" / "any" / absent)."""
    if not text or text == "any":
        return None
    try:
        return uuid.UUID(text)
    except ValueError:
        return None
