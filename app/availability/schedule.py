"""Working hours -> open windows in UTC. Pure: no I/O, no clock.

Working hours are wall-clock times in the branch's timezone, so a 09:00-17:00 day lasts
eight hours except when a DST transition falls inside it. Conversion from a local date and
time to UTC follows one rule everywhere (see `local_to_utc`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from app.errors import ValidationFailed

ONE_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Window:
    """Half-open [start, end) between two aware datetimes (UTC when built here)."""

    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class WeeklyHours:
    """Working hours on a weekday (0=Mon..6=Sun), local wall clock, start < end."""

    weekday: int
    start: time
    end: time


@dataclass(frozen=True, slots=True)
class DateOverride:
    """A date that ignores the weekly hours: closed, or open only during start..end.

    Several overrides on one date are allowed (a split day); if any of them is closed the
    whole date is closed.
    """

    on_date: date
    closed: bool
    start: time | None = None
    end: time | None = None


def require_aware(value: datetime, field: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationFailed(f"{field} must carry a UTC offset", field=field)
    return value


@lru_cache(maxsize=8192)
def local_to_utc(on_date: date, at: time, tz: ZoneInfo) -> datetime:
    """The UTC instant of a local wall-clock time (memoised: a pure function of its
    arguments, and resources of one branch share their dates and hours).

    An ambiguous time (clocks fall back) takes its first occurrence (fold=0). A nonexistent
    time (clocks spring forward) is shifted forward by the length of the gap, so 02:30 on a
    New York spring-forward night is 03:30 EDT — the same rule as RFC 5545 and Temporal's
    "compatible" disambiguation. PEP 495 gives exactly this for fold=0.
    """
    return datetime.combine(on_date, at.replace(tzinfo=None, fold=0), tzinfo=tz).astimezone(UTC)


def day_start(on_date: date, tz: ZoneInfo) -> datetime:
    """First instant (UTC) of a local date; correct when midnight itself is skipped."""
    return local_to_utc(on_date, time(0), tz)


def dates_between(first: date, last: date) -> Iterable[date]:
    day = first
    while day <= last:
        yield day
        day += ONE_DAY


def merge_windows(windows: Iterable[Window]) -> list[Window]:
    """Sorted, with overlapping or touching windows joined and empty ones dropped."""
    merged: list[Window] = []
    for window in sorted(windows, key=lambda w: (w.start, w.end)):
        if window.end <= window.start:
            continue
        if merged and window.start <= merged[-1].end:
            if window.end > merged[-1].end:
                merged[-1] = Window(merged[-1].start, window.end)
            continue
        merged.append(window)
    return merged


def subtract_windows(windows: Sequence[Window], holes: Sequence[Window]) -> list[Window]:
    """`windows` minus `holes`; both may be unsorted. The result is sorted and merged."""
    result: list[Window] = []
    cuts = merge_windows(holes)
    for window in merge_windows(windows):
        start = window.start
        for cut in cuts:
            if cut.end <= start or cut.start >= window.end:
                continue
            if cut.start > start:
                result.append(Window(start, cut.start))
            start = max(start, cut.end)
        if start < window.end:
            result.append(Window(start, window.end))
    return result


def _hours_for(
    day: date,
    weekly: dict[int, list[tuple[time, time]]],
    overrides: dict[date, list[DateOverride]],
) -> list[tuple[time, time]]:
    found = overrides.get(day)
    if found is None:
        return weekly.get(day.weekday(), [])
    if any(o.closed for o in found):
        return []
    hours: list[tuple[time, time]] = []
    for override in found:
        if override.start is None or override.end is None:
            raise ValidationFailed(
                "An open override needs start and end", field="overrides", on_date=str(day)
            )
        hours.append(_checked_hours(override.start, override.end, "overrides"))
    return hours


def _checked_hours(start: time, end: time, field: str) -> tuple[time, time]:
    if end <= start:
        raise ValidationFailed("Working hours must end after they start", field=field)
    return start, end


def open_windows(
    weekly: Sequence[WeeklyHours],
    overrides: Sequence[DateOverride],
    time_off: Sequence[Window],
    tz: ZoneInfo,
    first: date,
    last: date,
) -> list[Window]:
    """Working windows in UTC for local dates first..last inclusive, minus time off.

    A date with any override uses only its overrides. Local times go through
    `local_to_utc`; hours that collapse to nothing across a spring-forward gap (e.g.
    02:30-03:00 in New York that night) yield no window. Sorted and merged.
    """
    by_weekday: dict[int, list[tuple[time, time]]] = {}
    for hours in weekly:
        if not 0 <= hours.weekday <= 6:
            raise ValidationFailed("weekday must be 0 (Mon) to 6 (Sun)", field="weekly")
        by_weekday.setdefault(hours.weekday, []).append(
            _checked_hours(hours.start, hours.end, "weekly")
        )
    by_date: dict[date, list[DateOverride]] = {}
    for override in overrides:
        by_date.setdefault(override.on_date, []).append(override)
    windows = [
        Window(local_to_utc(day, start, tz), local_to_utc(day, end, tz))
        for day in dates_between(first, last)
        for start, end in _hours_for(day, by_weekday, by_date)
    ]
    for off in time_off:
        require_aware(off.start, "time_off")
        require_aware(off.end, "time_off")
    return subtract_windows(windows, time_off)
