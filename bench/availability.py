"""Benchmark: time_slot availability for 30 days x 20 resources x 2,000 bookings.

Run: .venv/bin/python bench/availability.py [--days 30] [--resources 20] [--bookings 2000]
     [--capacity 1] [--repeat 30]
Prints the median and best wall time of one query (open_windows for every resource plus
time_slots), and of time_slots alone, with the command line that produced them.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time as clock
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from app.availability.engine import (
    Busy,
    ResourceCalendar,
    SlotRule,
    WeeklyHours,
    busy_from_booking,
    open_windows,
    time_slots,
)

TZ = ZoneInfo("America/New_York")
FIRST = date(2025, 3, 1)  # the range spans the 9 March spring-forward
RULE = SlotRule(
    duration=timedelta(minutes=30),
    step=timedelta(minutes=15),
    buffer_before=timedelta(0),
    buffer_after=timedelta(minutes=5),
    min_notice=timedelta(hours=2),
    max_advance=timedelta(days=60),
)
WEEKLY = [WeeklyHours(day, time(9), time(18)) for day in range(7)]


def bookings(rng: random.Random, days: int, count: int) -> list[Busy]:
    """Random 30/60-minute bookings on the 15-minute grid inside working hours."""
    found = []
    for _ in range(count):
        day = FIRST + timedelta(days=rng.randrange(days))
        minute = 9 * 60 + 15 * rng.randrange(32)
        start = datetime.combine(day, time(minute // 60, minute % 60), tzinfo=TZ).astimezone(UTC)
        length = timedelta(minutes=rng.choice((30, 60)))
        found.append(busy_from_booking(start, start + length, 1, buffer_after=RULE.buffer_after))
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--resources", type=int, default=20)
    parser.add_argument("--bookings", type=int, default=2000, help="in total, spread evenly")
    parser.add_argument("--capacity", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    rng = random.Random(7)
    last = FIRST + timedelta(days=args.days - 1)
    ids = [uuid.UUID(int=rng.getrandbits(128)) for _ in range(args.resources)]
    busy = {rid: bookings(rng, args.days, args.bookings // args.resources) for rid in ids}
    now = datetime(2025, 2, 28, 12, tzinfo=UTC)

    def query(calendars: list[ResourceCalendar] | None = None) -> int:
        if calendars is None:
            calendars = [
                ResourceCalendar(
                    rid, args.capacity, open_windows(WEEKLY, [], [], TZ, FIRST, last), busy[rid]
                )
                for rid in ids
            ]
        return len(time_slots(RULE, calendars, TZ, FIRST, last, now))

    prebuilt = [
        ResourceCalendar(
            rid, args.capacity, open_windows(WEEKLY, [], [], TZ, FIRST, last), busy[rid]
        )
        for rid in ids
    ]
    print("command:", " ".join([sys.executable, *sys.argv]))
    print(
        f"{args.days} days x {args.resources} resources x {args.bookings} bookings, "
        f"capacity {args.capacity}, 30-min slots, 15-min step, 09:00-18:00, {TZ.key}"
    )
    runs: list[tuple[str, Callable[[], int]]] = [
        ("open_windows + time_slots", query),
        ("time_slots only", lambda: query(prebuilt)),
    ]
    for label, run in runs:
        walls, cpus = [], []
        for _ in range(args.repeat):
            wall, cpu = clock.perf_counter(), clock.process_time()
            slots = run()
            cpus.append((clock.process_time() - cpu) * 1000)
            walls.append((clock.perf_counter() - wall) * 1000)
        print(
            f"{label}: wall median {statistics.median(walls):.2f} ms, best {min(walls):.2f} ms;"
            f" cpu median {statistics.median(cpus):.2f} ms per query"
            f" ({slots} slots, {args.repeat} runs)"
        )


if __name__ == "__main__":
    main()
