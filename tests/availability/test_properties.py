"""Property tests: the engine against the brute-force oracle, across DST weeks."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.availability.engine import (
    Busy,
    DateOverride,
    ResourceCalendar,
    SlotRule,
    WeeklyHours,
    Window,
    open_windows,
    slot_is_bookable,
    time_slots,
)
from tests.availability import oracle

TRANSITIONS = [
    ("America/New_York", date(2025, 3, 9)),
    ("America/New_York", date(2025, 11, 2)),
    ("Europe/London", date(2025, 3, 30)),
    ("Europe/London", date(2025, 10, 26)),
    ("Africa/Cairo", date(2025, 4, 25)),
    ("Africa/Cairo", date(2025, 10, 30)),
]
MINUTE = timedelta(minutes=1)
CHECKS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def wall(minutes: int) -> time:
    return time(minutes // 60, minutes % 60)


@st.composite
def hours(draw: st.DrawFn) -> tuple[time, time]:
    # Half the hours start in the small hours, where the DST gaps and overlaps are.
    start = draw(st.one_of(st.integers(0, 48), st.integers(0, 286))) * 5
    end = min(start + draw(st.integers(1, 120)) * 5, 23 * 60 + 55)
    return wall(start), wall(end)


@st.composite
def schedule(
    draw: st.DrawFn, first: date, span: int
) -> tuple[list[WeeklyHours], list[DateOverride]]:
    weekly = [
        WeeklyHours(weekday, *draw(hours()))
        for weekday in range(7)
        for _ in range(draw(st.sampled_from([1, 1, 1, 2, 0])))
    ]
    overrides = []
    for _ in range(draw(st.integers(0, 2))):
        day = first + timedelta(days=draw(st.integers(0, span)))
        if draw(st.booleans()):
            overrides.append(DateOverride(day, closed=True))
        else:
            overrides.append(DateOverride(day, False, *draw(hours())))
    return weekly, overrides


@st.composite
def stretches(
    draw: st.DrawFn, anchor: datetime, count: int, longest: int, days: int = 4
) -> list[Window]:
    found = []
    for _ in range(draw(st.integers(0, count))):
        start = anchor + draw(st.integers(0, days * 288)) * 5 * MINUTE
        found.append(Window(start, start + draw(st.integers(1, longest)) * 5 * MINUTE))
    return found


@st.composite
def slot_cases(draw: st.DrawFn) -> dict:  # type: ignore[type-arg]
    zone, transition = draw(st.sampled_from(TRANSITIONS))
    tz = ZoneInfo(zone)
    first = transition + timedelta(days=draw(st.integers(-2, 0)))
    span = draw(st.integers(0, 2))
    anchor = datetime.combine(first, time(0), tzinfo=UTC) - timedelta(hours=12)
    resources = []
    for index in range(draw(st.integers(1, 2))):
        weekly, overrides = draw(schedule(first, span))
        time_off = draw(stretches(anchor, 2, 60))
        busy = [
            Busy(w.start, w.end, draw(st.sampled_from([1, 1, 2, 3])))
            for w in draw(stretches(anchor, 12, 30, span + 2))
        ]
        capacity = draw(st.integers(1, 4))
        resources.append((uuid.UUID(int=index + 1), weekly, overrides, time_off, busy, capacity))
    rule = SlotRule(
        duration=draw(st.sampled_from([5, 15, 30, 45, 60, 90])) * MINUTE,
        step=draw(st.sampled_from([5, 10, 15, 20, 30, 60])) * MINUTE,
        buffer_before=draw(st.sampled_from([0, 5, 10, 15, 30])) * MINUTE,
        buffer_after=draw(st.sampled_from([0, 5, 10, 15, 30])) * MINUTE,
        min_notice=draw(st.sampled_from([0, 0, 30, 90, 600, 1500])) * MINUTE,
        max_advance=draw(st.sampled_from([9 * 1440, 2 * 1440, 1440, 600, 0])) * MINUTE,
    )
    now = anchor + draw(st.integers(-1440, 1440)) * MINUTE
    return {
        "tz": tz,
        "first": first,
        "last": first + timedelta(days=span),
        "rule": rule,
        "now": now,
        "party": draw(st.sampled_from([1, 1, 2, 3])),
        "resources": resources,
        "probes": draw(st.lists(st.integers(0, 4 * 1440), max_size=30)),
        "anchor": anchor,
    }


def oracle_case(case: dict, resource: tuple) -> oracle.SlotCase:  # type: ignore[type-arg]
    _, weekly, overrides, time_off, busy, capacity = resource
    rule, now = case["rule"], oracle.minute(case["now"])
    return oracle.SlotCase(
        working=oracle.working_minutes(
            weekly, overrides, time_off, case["tz"], case["first"], case["last"]
        ),
        levels=oracle.levels(busy),
        capacity=capacity,
        duration=rule.duration // MINUTE,
        step=rule.step // MINUTE,
        before=rule.buffer_before // MINUTE,
        after=rule.buffer_after // MINUTE,
        earliest=now + rule.min_notice // MINUTE,
        latest=now + rule.max_advance // MINUTE,
    )


@CHECKS
@given(slot_cases())
def test_time_slots_match_the_minute_by_minute_oracle(case: dict) -> None:  # type: ignore[type-arg]
    tz, first, last, party = case["tz"], case["first"], case["last"], case["party"]
    calendars = []
    expected = []
    for resource in case["resources"]:
        resource_id, weekly, overrides, time_off, busy, capacity = resource
        windows = open_windows(weekly, overrides, time_off, tz, first, last)
        calendars.append(ResourceCalendar(resource_id, capacity, windows, busy))
        model = oracle_case(case, resource)
        for start in model.starts():
            left = model.remaining(start, party)
            if left is not None and first <= oracle.local_date(start, tz) <= last:
                expected.append((start, start + model.duration, resource_id, left))
        probes = [oracle.minute(case["anchor"]) + probe for probe in case["probes"]]
        for probe in probes + model.starts():
            at = datetime.fromtimestamp(probe * 60, UTC)
            got = slot_is_bookable(case["rule"], calendars[-1], at, case["now"], party)
            assert got == model.remaining(probe, party), at
    slots = time_slots(case["rule"], calendars, tz, first, last, case["now"], party)
    actual = [
        (oracle.minute(s.start), oracle.minute(s.end), s.resource_id, s.remaining) for s in slots
    ]
    assert actual == sorted(expected)
    assert all(s.start.tzinfo is UTC for s in slots)
