"""Nightly stays: check-in dates and the stay lengths that are free. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from app.availability.schedule import ONE_DAY, Window, dates_between, day_start, local_to_utc
from app.availability.timeline import (
    DatetimeCache,
    Timeline,
    check_party,
    date_bounds,
    start_bounds,
    to_us,
)
from app.availability.types import NightlyRule, ResourceCalendar, StayOption


def stay_window(rule: NightlyRule, tz: ZoneInfo, check_in_date: date, nights: int) -> Window:
    """[check-in on check_in_date, check-out `nights` days later), local times -> UTC."""
    return Window(
        local_to_utc(check_in_date, rule.check_in, tz),
        local_to_utc(check_in_date + timedelta(days=nights), rule.check_out, tz),
    )


def nightly_options(
    rule: NightlyRule,
    calendars: Sequence[ResourceCalendar],
    tz: ZoneInfo,
    first: date,
    last: date,
    now: datetime,
    party_size: int = 1,
) -> list[StayOption]:
    """For each check-in date in first..last and resource, the stay lengths that are free.

    Open windows mean "days the unit is rentable": n nights from d are allowed when each
    night's date d..d+n-1 has an open window overlapping that local date (any hours), the
    calendar's `time_off` does not touch the stay, capacity minus the peak concurrent party
    sizes over the stay is at least `party_size`, and now + min_notice <= check-in <=
    now + max_advance. The open windows must therefore cover dates up to
    last + max_nights - 1. Sorted by (check_in_date, resource_id); dates and resources
    with no allowed length are left out.
    """
    check_party(party_size)
    date_bounds(tz, first, last)
    earliest, latest = start_bounds(now, rule.min_notice, rule.max_advance)
    horizon = last + timedelta(days=rule.max_nights)
    days = {day: to_us(day_start(day, tz)) for day in dates_between(first, horizon)}
    check_ins = {day: to_us(local_to_utc(day, rule.check_in, tz)) for day in days}
    check_outs = {day: to_us(local_to_utc(day, rule.check_out, tz)) for day in days}
    cache = DatetimeCache()
    timelines = [
        (calendar.resource_id, Timeline(calendar))
        for calendar in sorted(calendars, key=lambda c: c.resource_id)
    ]
    options: list[StayOption] = []
    for day in dates_between(first, last):
        start = check_ins[day]
        if not earliest <= start <= latest:
            continue
        for resource_id, timeline in timelines:
            nights, ends, remaining = _stay_lengths(
                rule, timeline, day, start, days, check_outs, party_size
            )
            if nights:
                options.append(
                    StayOption(
                        check_in_date=day,
                        nights=nights,
                        resource_id=resource_id,
                        start=cache.at(start),
                        ends=[cache.at(end) for end in ends],
                        remaining=remaining,
                    )
                )
    return options


def _stay_lengths(
    rule: NightlyRule,
    timeline: Timeline,
    check_in: date,
    start: int,
    days: dict[date, int],
    check_outs: dict[date, int],
    party_size: int,
) -> tuple[list[int], list[int], list[int]]:
    nights: list[int] = []
    ends: list[int] = []
    remaining: list[int] = []
    for count in range(1, rule.max_nights + 1):
        night = check_in + timedelta(days=count - 1)
        if not timeline.open_on(days[night], days[night + ONE_DAY]):
            break
        end = check_outs[night + ONE_DAY]
        left = timeline.capacity - timeline.max_level(start, end)
        # Longer stays cover shorter ones, so the first failure ends the search.
        if end <= start or left < party_size:
            break
        if count >= rule.min_nights:
            nights.append(count)
            ends.append(end)
            remaining.append(left)
    return nights, ends, remaining
