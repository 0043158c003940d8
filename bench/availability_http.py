"""Availability over HTTP: GET /api/v1/availability for 30 days x 20 resources x 2,000
bookings, database included, next to its limit.

    .venv/bin/python bench/availability_http.py [--days 30] [--resources 20] [--bookings 2000]
        [--requests 100] [--processes 2]

`processes` API processes (`python -m app.cli.main serve`) against a scratch migrated
database; a business opened through the API (signup, branch, `resources` capacity-1
resources open 09:00-18:00 America/New_York, a 30-minute service on a 15-minute step, as in
bench/availability.py); `bookings` confirmed bookings written straight into the table
(spread evenly: each resource gets bookings/resources of 30 or 60 minutes on the 15-minute
grid, none overlapping). Then `requests` sequential keep-alive GETs for the whole range,
alternating between the API processes, each timed at the client: routing, auth, the
database reads, the engine and the JSON.

Goal (issue 16): p50 <= 20 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import percentile, scratch_database
from _http import Business, api_processes, clients, open_business
from _results import result

from tests.infra import libpq

P50_LIMIT_MS = 20.0
TZ = ZoneInfo("America/New_York")

# One row per booking: resource r's i-th booking is on day i % days, in the 2-hour block
# i // days from 09:00, shifted by 15 minutes per resource, 30 or 60 minutes long. Blocks
# are 2 hours apart, so no two bookings of a resource overlap.
FILL = """
INSERT INTO bookings (tenant_id, id, branch_id, service_id, resource_id, customer_name,
    party_size, starts_at, ends_at, blocked, exclusive, status, unit_price_minor, pricing,
    quantity, total_minor, currency, payment_provider, created_at, updated_at, version)
SELECT %(tenant)s, gen_random_uuid(), %(branch)s, %(service)s, r.id, 'Guest ' || i, 1,
       s.starts_at, s.starts_at + s.length, tstzrange(s.starts_at, s.starts_at + s.length),
       true, 'confirmed', 20000, 'fixed', 1, 20000, 'EGP', 'cash', now(), now(), 1
  FROM unnest(%(resources)s::uuid[]) WITH ORDINALITY AS r(id, n)
 CROSS JOIN generate_series(0, %(per)s - 1) AS i
 CROSS JOIN LATERAL (
    SELECT ((%(first)s::date + (i %% %(days)s)) + time '09:00'
            + (i / %(days)s) * interval '2 hours' + (r.n %% 4) * interval '15 minutes')
           AT TIME ZONE %(tz)s AS starts_at,
           CASE WHEN (i + r.n) %% 2 = 0 THEN interval '30 minutes'
                ELSE interval '60 minutes' END AS length
 ) s
"""


def fill(url: str, biz: Business, first: date, days: int, bookings: int) -> int:
    per = bookings // len(biz.resource_ids)
    if per > 4 * days:
        raise SystemExit(f"at most {4 * days * len(biz.resource_ids)} bookings fit")
    with psycopg.connect(libpq(url), autocommit=True) as connection:
        tenant = connection.execute(
            "SELECT tenant_id FROM branches WHERE id = %s", (biz.branch_id,)
        ).fetchone()
        assert tenant is not None
        connection.execute(
            FILL,
            {
                "tenant": tenant[0],
                "branch": biz.branch_id,
                "service": biz.service_id,
                "resources": biz.resource_ids,
                "per": per,
                "first": first,
                "days": days,
                "tz": TZ.key,
            },
        )
        connection.execute("ANALYZE bookings")
        row = connection.execute("SELECT count(*) FROM bookings").fetchone()
        return int(row[0]) if row else 0


async def bench(url: str, options: argparse.Namespace) -> None:
    first = datetime.now(TZ).date() + timedelta(days=2)
    last = first + timedelta(days=options.days - 1)
    async with api_processes(url, options.processes) as fleet, clients(fleet, 4) as pool:
        biz = await open_business(
            pool,
            resources=options.resources,
            timezone=TZ.key,
            hours=("09:00", "18:00"),
            duration=30,
            step=15,
        )
        written = fill(url, biz, first, options.days, options.bookings)
        params = {
            "service_id": biz.service_id,
            "branch_id": biz.branch_id,
            "from": first.isoformat(),
            "to": last.isoformat(),
        }
        slots = 0
        latencies: list[float] = []
        for n in range(options.warmup + options.requests):
            http = pool.http[n % len(pool.http)]
            began = time.perf_counter()
            response = await http.get("/api/v1/availability", params=params, headers=pool.headers)
            elapsed = time.perf_counter() - began
            if response.status_code != 200:
                raise RuntimeError(f"{response.status_code} {response.text[:500]}")
            slots = len(response.json()["slots"])
            if n >= options.warmup:
                latencies.append(elapsed * 1000)
        rss = fleet.peak_rss_mb()
    p50 = statistics.median(latencies)
    print(
        f"availability over HTTP (GET /api/v1/availability, {options.days} days x"
        f" {options.resources} resources x {written} bookings, 30-min slots on a 15-min step,"
        f" 09:00-18:00 {TZ.key}), {options.processes} API processes"
    )
    print(
        f"  {options.requests} sequential requests: p50 {p50:.1f} ms  p90"
        f" {percentile(latencies, 0.9):.1f} ms  p99 {percentile(latencies, 0.99):.1f} ms"
        f"  best {min(latencies):.1f} ms  ({slots} slots per answer)"
    )
    print(f"  p50/limit: {p50 / P50_LIMIT_MS:.2f}   (p50 <= {P50_LIMIT_MS:.0f} ms)")
    print("  API peak RSS (MB): " + ", ".join(f"{v:.0f}" for v in rss))
    result("availability_http.p50", p50, P50_LIMIT_MS, "ms", "<=", "availability over HTTP p50")
    result("availability_http.api_rss", max(rss), None, "MB", None, "availability: API peak RSS")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--resources", type=int, default=20)
    parser.add_argument("--bookings", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--processes", type=int, default=2)
    options = parser.parse_args()

    async def run() -> None:
        async with scratch_database("reckon_bench_availability_http") as url:
            await bench(url, options)

    asyncio.run(run())


if __name__ == "__main__":
    main()
