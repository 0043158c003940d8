"""The booking site's pages: latency of each step of the flow, next to the JSON route that
runs the same availability query (what rendering, translation and Babel cost on top).

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/0 \\
        .venv/bin/python bench/public_pages.py [--requests 200]

A scratch database gets one business (a branch in Cairo, two stylists working 09:00-17:00
every day, a 60-minute haircut), then each page is requested `requests` times in a row
through Litestar's in-process test client (no network: the server's work only).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import percentile, scratch_database
from litestar import Litestar
from litestar.testing import AsyncTestClient

from app.asgi import create_app
from app.settings import load_settings
from tests.factories import make_catalog, sign_up

CAIRO = ZoneInfo("Africa/Cairo")


async def measure(client: AsyncTestClient[Litestar], url: str, requests: int) -> list[float]:
    timings = []
    for _ in range(requests):
        started = time.perf_counter()
        response = await client.get(url)
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (url, response.status_code, response.text[:300])
    return timings


async def main(requests: int) -> None:
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    async with scratch_database("bench_pages") as url:
        settings = load_settings(
            url,
            redis_url,
            environment="test",
            public_rate_limit_per_minute=10**9,
            redis_namespace="bench-pages",
        )
        async with AsyncTestClient(app=create_app(settings)) as client:
            business = await sign_up(client)
            ids = await make_catalog(client, business, resources=2)
            day = (datetime.now(UTC).astimezone(CAIRO) + timedelta(days=2)).date()
            start = datetime(day.year, day.month, day.day, 11, tzinfo=CAIRO)
            base = f"service={ids['service_id']}&branch={ids['branch_id']}"
            month = f"{day.year:04d}-{day.month:02d}"
            pages = {
                "business page": f"/b/{business.slug}",
                "month view": f"/b/{business.slug}/book?{base}&month={month}",
                "day's times": f"/b/{business.slug}/book?{base}&day={day.isoformat()}",
                "details form": f"/b/{business.slug}/book/details?{base}"
                f"&start={start.isoformat().replace('+', '%2B')}",
                "JSON availability (same month)": (
                    f"/public/{business.slug}/availability?service_id={ids['service_id']}"
                    f"&branch_id={ids['branch_id']}&from={month}-01&to={day.isoformat()}"
                ),
            }
            print(f"{requests} requests per page, one at a time, in-process")
            print(f"{'page':34} {'p50 ms':>8} {'p95 ms':>8} {'req/s':>8}")
            for name, page in pages.items():
                await measure(client, page, 5)  # warm up caches and compiled statements
                timings = await measure(client, page, requests)
                rate = 1000 * len(timings) / sum(timings)
                print(
                    f"{name:34} {percentile(timings, 0.5):8.1f} "
                    f"{percentile(timings, 0.95):8.1f} {rate:8.0f}"
                )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=200)
    asyncio.run(main(parser.parse_args().requests))
