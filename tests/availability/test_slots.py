"""time_slots and slot_is_bookable: one test per rule."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from app.availability.engine import (
    Busy,
    DateOverride,
    ResourceCalendar,
    SlotRule,
    WeeklyHours,
    Window,
    busy_from_booking,
    open_windows,
    slot_is_bookable,
    time_slots,
)
from app.errors import ValidationFailed

ZONE = ZoneInfo("UTC")
NEW_YORK = ZoneInfo("America/New_York")
DAY = date(2025, 3, 4)
FIRST_ID = uuid.UUID(int=1)
SECOND_ID = uuid.UUID(int=2)
EARLY = datetime(2025, 3, 1, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def at(hour: int, minute: int = 0, day: date = DAY) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=UTC)


def rule(
    duration: int = 30,
    step: int = 15,
    before: int = 0,
    after: int = 0,
    notice: int = 0,
    advance_days: int = 365,
) -> SlotRule:
    return SlotRule(
        duration=duration * MINUTE,
        step=step * MINUTE,
        buffer_before=before * MINUTE,
        buffer_after=after * MINUTE,
        min_notice=notice * MINUTE,
        max_advance=timedelta(days=advance_days),
    )


def calendar(
    start: time = time(9),
    end: time = time(12),
    busy: list[Busy] | None = None,
    capacity: int = 1,
    overrides: list[DateOverride] | None = None,
    time_off: list[Window] | None = None,
    resource_id: uuid.UUID = FIRST_ID,
    tz: ZoneInfo = ZONE,
    first: date = DAY,
    last: date = DAY,
) -> ResourceCalendar:
    weekly = [WeeklyHours(day, start, end) for day in range(7)]
    windows = open_windows(weekly, overrides or [], time_off or [], tz, first, last)
    return ResourceCalendar(resource_id, capacity, windows, busy or [])


def starts(slots: list, tz: ZoneInfo = ZONE) -> list[str]:  # type: ignore[type-arg]
    return [slot.start.astimezone(tz).strftime("%H:%M") for slot in slots]


def test_slots_run_on_the_step_grid_from_the_window_start() -> None:
    slots = time_slots(rule(), [calendar(end=time(10, 30))], ZONE, DAY, DAY, EARLY)
    assert starts(slots) == ["09:00", "09:15", "09:30", "09:45", "10:00"]
    assert all(s.end - s.start == timedelta(minutes=30) and s.remaining == 1 for s in slots)


def test_minimum_notice_hides_earlier_starts() -> None:
    slots = time_slots(rule(notice=120), [calendar()], ZONE, DAY, DAY, at(8, 50))
    assert starts(slots)[0] == "11:00"
    assert slot_is_bookable(rule(notice=120), calendar(), at(10, 45), at(8, 50)) is None
    assert slot_is_bookable(rule(notice=120), calendar(), at(11), at(8, 50)) == 1


def test_max_advance_is_inclusive_and_hides_later_starts() -> None:
    now = at(9, 30) - timedelta(days=1)
    slots = time_slots(rule(advance_days=1), [calendar()], ZONE, DAY, DAY, now)
    assert starts(slots) == ["09:00", "09:15", "09:30"]


def test_buffers_must_fit_inside_working_hours() -> None:
    slots = time_slots(
        rule(before=15, after=15), [calendar(end=time(10, 30))], ZONE, DAY, DAY, EARLY
    )
    assert starts(slots) == ["09:15", "09:30", "09:45"]


def test_buffers_keep_distance_from_existing_bookings() -> None:
    booked = [busy_from_booking(at(10), at(10, 30), 1, buffer_after=timedelta(minutes=10))]
    plain = time_slots(rule(), [calendar(busy=booked)], ZONE, DAY, DAY, EARLY)
    assert "09:30" in starts(plain) and "10:30" not in starts(plain)
    assert "10:45" in starts(plain)
    buffered = time_slots(rule(after=10), [calendar(busy=booked)], ZONE, DAY, DAY, EARLY)
    assert "09:30" not in starts(buffered) and "09:15" in starts(buffered)
    assert slot_is_bookable(rule(after=10), calendar(busy=booked), at(9, 30), EARLY) is None


def test_closed_override_and_other_hours_override() -> None:
    closed = calendar(overrides=[DateOverride(DAY, closed=True)])
    assert time_slots(rule(), [closed], ZONE, DAY, DAY, EARLY) == []
    other = calendar(overrides=[DateOverride(DAY, False, time(14), time(15))])
    assert starts(time_slots(rule(), [other], ZONE, DAY, DAY, EARLY)) == [
        "14:00",
        "14:15",
        "14:30",
    ]


def test_time_off_removes_the_slots_it_touches() -> None:
    off = calendar(time_off=[Window(at(10), at(11))])
    slots = starts(time_slots(rule(), [off], ZONE, DAY, DAY, EARLY))
    assert slots == ["09:00", "09:15", "09:30", "11:00", "11:15", "11:30"]


def test_capacity_counts_peak_concurrent_party_sizes() -> None:
    busy = [Busy(at(9), at(9, 30), 2), Busy(at(9, 30), at(10), 2), Busy(at(10, 15), at(11), 1)]
    room = calendar(busy=busy, capacity=3)
    by_start = {
        s.start: s.remaining for s in time_slots(rule(duration=60), [room], ZONE, DAY, DAY, EARLY)
    }
    assert by_start[at(9)] == 1  # 2 then 2, never 4 at once
    assert by_start[at(9, 30)] == 1  # 2 then 1, never 3 at once
    assert by_start[at(10)] == 2
    assert by_start[at(11)] == 3
    party_two = time_slots(rule(duration=60), [room], ZONE, DAY, DAY, EARLY, party_size=2)
    assert at(9) not in {s.start for s in party_two}
    assert at(10, 15) in {s.start for s in party_two}
    assert slot_is_bookable(rule(duration=60), room, at(9), EARLY, party_size=2) is None
    assert slot_is_bookable(rule(duration=60), room, at(9), EARLY, party_size=1) == 1


def test_full_overlap_blocks_and_party_larger_than_capacity_sees_nothing() -> None:
    room = calendar(busy=[Busy(at(9), at(10), 2), Busy(at(9, 30), at(10), 1)], capacity=3)
    slots = time_slots(rule(), [room], ZONE, DAY, DAY, EARLY)
    assert starts(slots)[:2] == ["09:00", "10:00"]
    assert [s.remaining for s in slots[:2]] == [1, 3]
    assert time_slots(rule(), [room], ZONE, DAY, DAY, EARLY, party_size=4) == []


def test_slot_is_bookable_requires_the_same_grid() -> None:
    assert slot_is_bookable(rule(), calendar(), at(9, 15), EARLY) == 1
    assert slot_is_bookable(rule(), calendar(), at(9, 10), EARLY) is None
    assert slot_is_bookable(rule(), calendar(), at(11, 45), EARLY) is None  # runs past 12:00


def test_slots_are_sorted_by_start_then_resource() -> None:
    calendars = [
        calendar(resource_id=SECOND_ID, end=time(10)),
        calendar(resource_id=FIRST_ID, start=time(9, 30), end=time(10)),
    ]
    slots = time_slots(rule(), calendars, ZONE, DAY, DAY, EARLY)
    assert [(s.start, s.resource_id) for s in slots] == [
        (at(9), SECOND_ID),
        (at(9, 15), SECOND_ID),
        (at(9, 30), FIRST_ID),
        (at(9, 30), SECOND_ID),
    ]


def test_only_starts_on_the_requested_local_dates_are_returned() -> None:
    first, last = date(2025, 3, 8), date(2025, 3, 10)
    cal = calendar(time(0), time(4), tz=NEW_YORK, first=first, last=last)
    slots = time_slots(
        rule(duration=60, step=60), [cal], NEW_YORK, date(2025, 3, 9), date(2025, 3, 9), EARLY
    )
    # 00:00-04:00 on the spring-forward day is three real hours: 00:00, 01:00, 03:00 EDT.
    assert starts(slots, NEW_YORK) == ["00:00", "01:00", "03:00"]


def test_fall_back_day_offers_the_repeated_hour_twice() -> None:
    day = date(2025, 11, 2)
    cal = calendar(time(0), time(4), tz=NEW_YORK, first=day, last=day)
    slots = time_slots(rule(duration=60, step=60), [cal], NEW_YORK, day, day, EARLY)
    assert starts(slots, NEW_YORK) == ["00:00", "01:00", "01:00", "02:00", "03:00"]


def test_rejects_naive_now_and_bad_rules() -> None:
    with pytest.raises(ValidationFailed):
        time_slots(rule(), [calendar()], ZONE, DAY, DAY, datetime(2025, 3, 1))
    with pytest.raises(ValidationFailed):
        rule(step=0)
    with pytest.raises(ValidationFailed):
        time_slots(rule(), [calendar()], ZONE, DAY, DAY, EARLY, party_size=0)
