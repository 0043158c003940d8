"""Property test: nightly_options against the brute-force oracle, across DST weeks."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.availability.engine import (
    Busy,
    NightlyRule,
    ResourceCalendar,
    nightly_options,
    open_windows,
)
from tests.availability import oracle
from tests.availability.test_properties import MINUTE, TRANSITIONS, schedule, stretches

# Check-in/out times include ones that fall in New York's, London's and Cairo's gaps.
WALL_TIMES = [time(15), time(14, 30), time(2, 30), time(1, 30), time(0, 30), time(11), time(10)]


@st.composite
def nightly_cases(draw: st.DrawFn) -> dict:  # type: ignore[type-arg]
    zone, transition = draw(st.sampled_from(TRANSITIONS))
    first = transition + timedelta(days=draw(st.integers(-3, 0)))
    span = draw(st.integers(0, 3))
    min_nights = draw(st.integers(1, 3))
    rule = NightlyRule(
        check_in=draw(st.sampled_from(WALL_TIMES)),
        check_out=draw(st.sampled_from(WALL_TIMES)),
        min_nights=min_nights,
        max_nights=min_nights + draw(st.integers(0, 3)),
        min_notice=draw(st.sampled_from([0, 0, 600, 2000])) * MINUTE,
        max_advance=draw(st.sampled_from([9 * 1440, 3 * 1440, 1440])) * MINUTE,
    )
    anchor = datetime.combine(first, time(0), tzinfo=UTC) - timedelta(hours=12)
    weekly, overrides = draw(schedule(first, span + rule.max_nights))
    return {
        "tz": ZoneInfo(zone),
        "first": first,
        "last": first + timedelta(days=span),
        "rule": rule,
        "weekly": weekly,
        "overrides": overrides,
        "time_off": draw(stretches(anchor, 2, 48, span + 6)),
        "busy": [
            Busy(w.start, w.end, draw(st.integers(1, 2)))
            for w in draw(stretches(anchor, 5, 400, span + 6))
        ],
        "capacity": draw(st.integers(1, 3)),
        "party": draw(st.sampled_from([1, 1, 2])),
        "now": anchor + draw(st.integers(-1440, 1440)) * MINUTE,
    }


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(nightly_cases())
def test_nightly_options_match_the_oracle(case: dict) -> None:  # type: ignore[type-arg]
    tz, first, last, rule = case["tz"], case["first"], case["last"], case["rule"]
    horizon = last + timedelta(days=rule.max_nights)
    resource_id = uuid.UUID(int=9)
    windows = open_windows(case["weekly"], case["overrides"], case["time_off"], tz, first, horizon)
    calendar = ResourceCalendar(
        resource_id, case["capacity"], windows, case["busy"], case["time_off"]
    )
    options = nightly_options(rule, [calendar], tz, first, last, case["now"], case["party"])
    actual = {
        o.check_in_date: list(zip(o.nights, map(oracle.minute, o.ends), o.remaining, strict=True))
        for o in options
    }
    working = oracle.working_minutes(
        case["weekly"], case["overrides"], case["time_off"], tz, first, horizon
    )
    now = oracle.minute(case["now"])
    expected = {}
    for day in oracle.days(first, last):
        found = oracle.stays(
            working,
            case["busy"],
            case["time_off"],
            case["capacity"],
            tz,
            rule.check_in,
            rule.check_out,
            range(rule.min_nights, rule.max_nights + 1),
            day,
            now + rule.min_notice // MINUTE,
            now + rule.max_advance // MINUTE,
            case["party"],
        )
        if found:
            expected[day] = found
    assert actual == expected
    assert all(o.resource_id == resource_id for o in options)
