"""Nightly stays and interval windows: one test per rule."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from app.availability.engine import (
    Busy,
    IntervalRule,
    NightlyRule,
    ResourceCalendar,
    WeeklyHours,
    Window,
    interval_is_bookable,
    interval_windows,
    nightly_options,
    open_windows,
    stay_window,
)

ZONE = ZoneInfo("UTC")
NEW_YORK = ZoneInfo("America/New_York")
CABIN = uuid.UUID(int=7)
EARLY = datetime(2025, 2, 1, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def on(day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2025, 3, day, hour, minute, tzinfo=UTC)


def nightly(
    min_nights: int = 1, max_nights: int = 4, notice: timedelta = timedelta(0)
) -> NightlyRule:
    return NightlyRule(time(15), time(11), min_nights, max_nights, notice, timedelta(days=365))


def cabin(
    busy: list[Busy] | None = None,
    capacity: int = 1,
    closed_weekdays: tuple[int, ...] = (),
    time_off: list[Window] | None = None,
    tz: ZoneInfo = ZONE,
) -> ResourceCalendar:
    weekly = [WeeklyHours(d, time(0), time(23, 59)) for d in range(7) if d not in closed_weekdays]
    windows = open_windows(weekly, [], time_off or [], tz, date(2025, 3, 1), date(2025, 3, 31))
    return ResourceCalendar(CABIN, capacity, windows, busy or [], time_off or [])


def stays(
    calendar: ResourceCalendar, rule: NightlyRule, now: datetime = EARLY, party_size: int = 1
) -> dict[date, list[int]]:
    options = nightly_options(
        rule, [calendar], ZONE, date(2025, 3, 3), date(2025, 3, 7), now, party_size
    )
    return {o.check_in_date: o.nights for o in options}


def test_min_and_max_nights_bound_the_lengths_offered() -> None:
    found = stays(cabin(), nightly(min_nights=2, max_nights=3))
    assert found == {date(2025, 3, d): [2, 3] for d in range(3, 8)}


def test_a_busy_night_in_the_middle_caps_the_stays_that_reach_it() -> None:
    booked = [Busy(on(5, 15), on(6, 11), 1)]  # the night of 5 March
    found = stays(cabin(busy=booked), nightly())
    assert found[date(2025, 3, 3)] == [1, 2]
    assert found[date(2025, 3, 4)] == [1]
    assert date(2025, 3, 5) not in found
    assert found[date(2025, 3, 6)] == [1, 2, 3, 4]


def test_check_out_morning_and_check_in_afternoon_share_a_day() -> None:
    booked = [Busy(on(1, 15), on(4, 11), 1)]
    assert stays(cabin(busy=booked), nightly())[date(2025, 3, 4)] == [1, 2, 3, 4]


def test_a_closed_weekday_is_a_night_that_cannot_be_sold() -> None:
    found = stays(cabin(closed_weekdays=(2,)), nightly())  # Wednesday 5 March
    assert found[date(2025, 3, 3)] == [1, 2]
    assert date(2025, 3, 5) not in found


def test_time_off_on_the_calendar_blocks_stays_touching_it() -> None:
    found = stays(cabin(time_off=[Window(on(5, 12), on(5, 13))]), nightly())
    assert found[date(2025, 3, 3)] == [1, 2]
    assert found[date(2025, 3, 4)] == [1]
    assert found[date(2025, 3, 5)] == [1, 2, 3, 4]


def test_capacity_and_party_size_for_shared_units() -> None:
    dorm = cabin(busy=[Busy(on(4, 15), on(6, 11), 3)], capacity=4)
    options = nightly_options(
        nightly(), [dorm], ZONE, date(2025, 3, 3), date(2025, 3, 3), EARLY, party_size=1
    )
    assert options[0].nights == [1, 2, 3, 4] and options[0].remaining == [4, 1, 1, 1]
    assert stays(dorm, nightly(), party_size=2)[date(2025, 3, 3)] == [1]


def test_notice_skips_check_ins_that_are_too_soon() -> None:
    found = stays(cabin(), nightly(notice=timedelta(hours=24)), now=on(4, 16))
    assert min(found) == date(2025, 3, 6)


def test_stay_window_uses_local_times_across_dst() -> None:
    rule = nightly()
    window = stay_window(rule, NEW_YORK, date(2025, 3, 8), 2)
    assert window == Window(
        datetime(2025, 3, 8, 20, tzinfo=UTC), datetime(2025, 3, 10, 15, tzinfo=UTC)
    )
    options = nightly_options(
        rule, [cabin(tz=NEW_YORK)], NEW_YORK, date(2025, 3, 8), date(2025, 3, 8), EARLY
    )
    assert options[0].start == window.start and options[0].ends[1] == window.end


def interval(
    minimum: int = 60, maximum: int = 240, before: int = 0, after: int = 0, notice: int = 0
) -> IntervalRule:
    return IntervalRule(
        30 * MINUTE,
        minimum * MINUTE,
        maximum * MINUTE,
        before * MINUTE,
        after * MINUTE,
        notice * MINUTE,
        timedelta(days=365),
    )


def desk(busy: list[Busy] | None = None, capacity: int = 1) -> ResourceCalendar:
    weekly = [WeeklyHours(d, time(9), time(17)) for d in range(7)]
    windows = open_windows(weekly, [], [], ZONE, date(2025, 3, 3), date(2025, 3, 3))
    return ResourceCalendar(CABIN, capacity, windows, busy or [])


def spans(
    rule: IntervalRule, calendar: ResourceCalendar, now: datetime = EARLY, party_size: int = 1
) -> list[tuple[str, str, int]]:
    found = interval_windows(
        rule, [calendar], date(2025, 3, 3), date(2025, 3, 3), ZONE, now, party_size
    )
    return [(w.start.strftime("%H:%M"), w.end.strftime("%H:%M"), w.remaining) for w in found]


def test_interval_windows_are_split_by_bookings_and_their_buffers() -> None:
    booked = [Busy(on(3, 12), on(3, 13), 1)]
    assert spans(interval(), desk(booked)) == [("09:00", "12:00", 1), ("13:00", "17:00", 1)]
    assert spans(interval(before=15, after=15), desk(booked)) == [
        ("09:30", "11:30", 1),
        ("13:30", "16:30", 1),
    ]


def test_interval_gaps_shorter_than_min_length_are_not_offered() -> None:
    booked = [Busy(on(3, 9, 30), on(3, 10), 1), Busy(on(3, 11), on(3, 17), 1)]
    assert spans(interval(minimum=90), desk(booked)) == []
    assert spans(interval(minimum=60), desk(booked)) == [("10:00", "11:00", 1)]


def test_interval_window_ends_where_the_last_allowed_start_can_reach() -> None:
    now = on(3, 12, 50) - timedelta(days=365)  # max advance: starts up to 12:50
    assert spans(interval(maximum=120), desk(), now=now) == [("09:00", "14:30", 1)]


def test_interval_remaining_is_the_least_capacity_left_and_notice_applies() -> None:
    room = desk([Busy(on(3, 10), on(3, 11), 2)], capacity=3)
    assert spans(interval(), room) == [("09:00", "17:00", 1)]
    assert spans(interval(), room, party_size=2) == [("09:00", "10:00", 3), ("11:00", "17:00", 3)]
    assert spans(interval(notice=100), room, now=on(3, 9)) == [("11:00", "17:00", 3)]


def test_interval_is_bookable_checks_grid_length_and_capacity() -> None:
    room = desk([Busy(on(3, 10), on(3, 11), 1)], capacity=2)
    assert interval_is_bookable(interval(), room, on(3, 9), on(3, 11), EARLY) == 1
    assert interval_is_bookable(interval(), room, on(3, 9), on(3, 11), EARLY, 2) is None
    assert interval_is_bookable(interval(), room, on(3, 11), on(3, 12), EARLY, 2) == 2
    assert interval_is_bookable(interval(), room, on(3, 11, 10), on(3, 12, 10), EARLY) is None
    assert interval_is_bookable(interval(), room, on(3, 11), on(3, 11, 30), EARLY) is None
    assert interval_is_bookable(interval(), room, on(3, 11), on(3, 15, 30), EARLY) is None
    assert interval_is_bookable(interval(), room, on(3, 16), on(3, 17, 30), EARLY) is None
