"""open_windows: weekly hours, overrides, time off, and DST in the branch's timezone."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from app.availability.schedule import (
    DateOverride,
    WeeklyHours,
    Window,
    day_start,
    local_to_utc,
    open_windows,
)
from app.errors import ValidationFailed

NEW_YORK = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")
CAIRO = ZoneInfo("Africa/Cairo")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def every_day(start: time, end: time) -> list[WeeklyHours]:
    return [WeeklyHours(day, start, end) for day in range(7)]


def hours_on(tz: ZoneInfo, day: date, start: time, end: time) -> list[Window]:
    return open_windows(every_day(start, end), [], [], tz, day, day)


def length(windows: list[Window]) -> timedelta:
    return sum((w.end - w.start for w in windows), timedelta(0))


def test_nine_to_five_is_eight_hours_on_an_ordinary_new_york_day() -> None:
    windows = hours_on(NEW_YORK, date(2025, 3, 4), time(9), time(17))
    assert windows == [Window(utc(2025, 3, 4, 14), utc(2025, 3, 4, 22))]


def test_new_york_spring_forward_day_loses_an_hour_inside_the_hours() -> None:
    windows = hours_on(NEW_YORK, date(2025, 3, 9), time(0), time(8))
    assert windows == [Window(utc(2025, 3, 9, 5), utc(2025, 3, 9, 12))]
    assert length(windows) == timedelta(hours=7)


def test_new_york_fall_back_day_gains_an_hour_inside_the_hours() -> None:
    windows = hours_on(NEW_YORK, date(2025, 11, 2), time(0), time(8))
    assert length(windows) == timedelta(hours=9)


def test_hours_after_the_transition_keep_their_wall_clock_length() -> None:
    windows = hours_on(NEW_YORK, date(2025, 3, 9), time(9), time(17))
    assert windows == [Window(utc(2025, 3, 9, 13), utc(2025, 3, 9, 21))]


def test_nonexistent_start_is_shifted_forward_by_the_gap() -> None:
    assert local_to_utc(date(2025, 3, 9), time(2, 30), NEW_YORK) == utc(2025, 3, 9, 7, 30)
    windows = hours_on(NEW_YORK, date(2025, 3, 9), time(2, 30), time(5))
    assert windows == [Window(utc(2025, 3, 9, 7, 30), utc(2025, 3, 9, 9))]


def test_ambiguous_start_takes_the_first_occurrence() -> None:
    windows = hours_on(NEW_YORK, date(2025, 11, 2), time(1, 30), time(3))
    assert windows == [Window(utc(2025, 11, 2, 5, 30), utc(2025, 11, 2, 8))]


def test_hours_wholly_inside_the_gap_collapse_to_nothing() -> None:
    assert hours_on(NEW_YORK, date(2025, 3, 9), time(2, 30), time(3)) == []


def test_london_spring_forward_at_one_in_the_morning() -> None:
    windows = hours_on(LONDON, date(2025, 3, 30), time(0, 30), time(3))
    assert windows == [Window(utc(2025, 3, 30, 0, 30), utc(2025, 3, 30, 2))]


def test_london_autumn_day_is_an_hour_longer() -> None:
    windows = hours_on(LONDON, date(2025, 10, 26), time(0), time(12))
    assert length(windows) == timedelta(hours=13)


def test_cairo_observes_dst_again_per_zoneinfo() -> None:
    winter = utc(2025, 1, 15, 12).astimezone(CAIRO).utcoffset()
    summer = utc(2025, 7, 15, 12).astimezone(CAIRO).utcoffset()
    assert (winter, summer) == (timedelta(hours=2), timedelta(hours=3))


def test_cairo_spring_forward_skips_midnight() -> None:
    # 2025-04-25 00:00 EET does not exist; the day begins at 01:00 EEST = 22:00Z the day before.
    assert day_start(date(2025, 4, 25), CAIRO) == utc(2025, 4, 24, 22)
    windows = hours_on(CAIRO, date(2025, 4, 25), time(0), time(8))
    assert windows == [Window(utc(2025, 4, 24, 22), utc(2025, 4, 25, 5))]


def test_cairo_fall_back_repeats_the_last_hour_of_the_day() -> None:
    windows = hours_on(CAIRO, date(2025, 10, 30), time(20), time(23, 30))
    assert windows == [Window(utc(2025, 10, 30, 17), utc(2025, 10, 30, 20, 30))]
    assert length(hours_on(CAIRO, date(2025, 10, 31), time(9), time(17))) == timedelta(hours=8)


def test_closed_override_removes_the_day() -> None:
    overrides = [DateOverride(date(2025, 3, 5), closed=True)]
    windows = open_windows(
        every_day(time(9), time(17)), overrides, [], NEW_YORK, date(2025, 3, 4), date(2025, 3, 6)
    )
    assert [w.start.astimezone(NEW_YORK).date() for w in windows] == [
        date(2025, 3, 4),
        date(2025, 3, 6),
    ]


def test_open_override_replaces_the_weekly_hours_of_that_date() -> None:
    overrides = [
        DateOverride(date(2025, 3, 5), closed=False, start=time(7), end=time(8)),
        DateOverride(date(2025, 3, 5), closed=False, start=time(20), end=time(21)),
    ]
    windows = open_windows(
        every_day(time(9), time(17)), overrides, [], NEW_YORK, date(2025, 3, 5), date(2025, 3, 5)
    )
    assert windows == [
        Window(utc(2025, 3, 5, 12), utc(2025, 3, 5, 13)),
        Window(utc(2025, 3, 6, 1), utc(2025, 3, 6, 2)),
    ]


def test_weekdays_without_hours_are_closed_and_split_shifts_touching_merge() -> None:
    weekly = [
        WeeklyHours(0, time(9), time(12)),
        WeeklyHours(0, time(12), time(17)),
        WeeklyHours(2, time(10), time(11)),
    ]
    windows = open_windows(weekly, [], [], UTC_ZONE, date(2025, 3, 3), date(2025, 3, 5))
    assert windows == [
        Window(utc(2025, 3, 3, 9), utc(2025, 3, 3, 17)),
        Window(utc(2025, 3, 5, 10), utc(2025, 3, 5, 11)),
    ]


UTC_ZONE = ZoneInfo("UTC")


def test_time_off_is_cut_out_of_the_working_hours() -> None:
    time_off = [
        Window(utc(2025, 3, 3, 12), utc(2025, 3, 3, 13)),
        Window(utc(2025, 3, 4, 8), utc(2025, 3, 4, 18)),
    ]
    windows = open_windows(
        every_day(time(9), time(17)), [], time_off, UTC_ZONE, date(2025, 3, 3), date(2025, 3, 4)
    )
    assert windows == [
        Window(utc(2025, 3, 3, 9), utc(2025, 3, 3, 12)),
        Window(utc(2025, 3, 3, 13), utc(2025, 3, 3, 17)),
    ]


def test_invalid_hours_and_naive_time_off_are_rejected() -> None:
    with pytest.raises(ValidationFailed):
        open_windows(
            [WeeklyHours(0, time(10), time(9))],
            [],
            [],
            UTC_ZONE,
            date(2025, 3, 3),
            date(2025, 3, 3),
        )
    naive = Window(datetime(2025, 3, 3, 10), datetime(2025, 3, 3, 11))
    with pytest.raises(ValidationFailed):
        open_windows(
            every_day(time(9), time(17)), [], [naive], UTC_ZONE, date(2025, 3, 3), date(2025, 3, 3)
        )
    with pytest.raises(ValidationFailed):
        open_windows(
            [],
            [DateOverride(date(2025, 3, 3), closed=False)],
            [],
            UTC_ZONE,
            date(2025, 3, 3),
            date(2025, 3, 3),
        )
