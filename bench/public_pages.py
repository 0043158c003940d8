"""The booking site's pages over HTTP, next to their limits: server time (p50 <= 30 ms) and
weight (the page's HTML plus its own CSS and JavaScript <= 100 KB).

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/0 \\
        .venv/bin/python bench/public_pages.py [--requests 300] [--resources 20] [--bookings 2000]

A scratch database gets one business: a branch in Cairo, `resources` stylists working
09:00-17:00 every day, a 60-minute haircut on all of them, and `bookings` confirmed bookings
spread over the next 30 days (every stylist's days partly full, so the day's free times are
computed against real busy rows). The app runs under uvicorn on a loopback port in its own
thread (its own event loop); an httpx client asks for each page `requests` times, one at a
time. "Server time" is measured inside the server by an ASGI wrapper, from the request's
arrival to the last byte of its answer; the client's round trip is printed beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import socket
import sys
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
import psycopg
import uvicorn
from _common import percentile, scratch_database
from litestar.testing import AsyncTestClient

from app.edge.asgi import create_app
from app.settings import load_settings
from tests.factories import make_catalog, sign_up
from tests.infra import libpq

CAIRO = ZoneInfo("Africa/Cairo")
P50_LIMIT_MS = 30.0
WEIGHT_LIMIT = 100 * 1024
DAYS = 30
HOURS = 8  # 09:00-17:00

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGI = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
    Awaitable[None],
]

BOOKINGS = """
INSERT INTO bookings (tenant_id, id, branch_id, service_id, resource_id, customer_name,
  party_size, starts_at, ends_at, blocked, exclusive, status, unit_price_minor, pricing,
  quantity, total_minor, currency, payment_provider)
SELECT %(tenant)s, gen_random_uuid(), %(branch)s, %(service)s, r.id, 'Bench', 1,
  x.at, x.at + interval '1 hour', tstzrange(x.at, x.at + interval '1 hour'), true,
  'confirmed', 10000, 'fixed', 1, 10000, 'EGP', 'cash'
FROM unnest(%(resources)s::uuid[]) WITH ORDINALITY AS r(id, k)
CROSS JOIN generate_series(0, %(per_resource)s - 1) AS n
CROSS JOIN LATERAL (
  SELECT ((%(first)s::date + n %% %(days)s) + make_interval(
      hours => 9 + ((n / %(days)s) * 3 + k::int) %% %(hours)s))
    AT TIME ZONE 'Africa/Cairo' AS at
) AS x
ON CONFLICT DO NOTHING
"""


class ServerClock:
    """Wraps the app: the time from a request's arrival to its answer's last byte."""

    def __init__(self, app: ASGI) -> None:
        self.app = app
        self.timings: list[float] = []

    async def __call__(
        self,
        scope: Scope,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def timed_send(message: Message) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                self.timings.append((time.perf_counter() - started) * 1000)

        await self.app(scope, receive, timed_send)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve(app: ServerClock, port: int) -> tuple[uvicorn.Server, threading.Thread]:
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    return server, thread


def add_bookings(url: str, ids: dict[str, Any], tenant: str, total: int, first: date) -> int:
    resources = ids["resource_ids"]
    per_resource = total // len(resources)
    if per_resource > DAYS * HOURS:
        raise SystemExit(f"at most {DAYS * HOURS} bookings per resource fit in {DAYS} days")
    with psycopg.connect(libpq(url), autocommit=True) as conn:
        done = conn.execute(
            BOOKINGS,
            {
                "tenant": tenant,
                "branch": ids["branch_id"],
                "service": ids["service_id"],
                "resources": resources,
                "per_resource": per_resource,
                "first": first,
                "days": DAYS,
                "hours": HOURS,
            },
        )
        conn.execute("ANALYZE bookings")
        return done.rowcount


def own_assets(html: str) -> list[str]:
    """The page's own stylesheets and scripts (same-origin paths; the site loads no others)."""
    found = re.findall(r'<link rel="stylesheet" href="(/[^"]+)"', html)
    found += re.findall(r'<script[^>]* src="(/[^"]+)"', html)
    return found


async def weigh(http: httpx.AsyncClient, url: str) -> tuple[int, int]:
    """(HTML bytes, HTML + own assets bytes), as sent without compression."""
    page = await http.get(url, headers={"Accept-Encoding": "identity"})
    page.raise_for_status()
    total = len(page.content)
    for asset in own_assets(page.text):
        got = await http.get(asset, headers={"Accept-Encoding": "identity"})
        got.raise_for_status()
        total += len(got.content)
    return len(page.content), total


async def measure(
    http: httpx.AsyncClient, clock: ServerClock, url: str, requests: int
) -> tuple[list[float], list[float]]:
    for _ in range(10):  # warm up caches and compiled statements
        (await http.get(url)).raise_for_status()
    clock.timings.clear()
    round_trips = []
    for _ in range(requests):
        started = time.perf_counter()
        response = await http.get(url)
        round_trips.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"{url}: {response.status_code} {response.text[:300]}")
    return list(clock.timings), round_trips


async def main(requests: int, resources: int, bookings: int) -> None:
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    async with scratch_database("bench_pages") as url:
        settings = load_settings(
            url,
            redis_url,
            environment="test",
            public_rate_limit_per_minute=10**9,
            redis_namespace="bench-pages",
        )
        async with AsyncTestClient(app=create_app(settings)) as setup:
            business = await sign_up(setup, business_name="Nile Hair & Beauty")
            ids = await make_catalog(setup, business, resources=resources)
        today = datetime.now(UTC).astimezone(CAIRO).date()
        inserted = add_bookings(url, ids, str(business.tenant_id), bookings, today)
        day = today + timedelta(days=2)
        base = f"service={ids['service_id']}&branch={ids['branch_id']}"
        pages = {
            "business page": f"/b/{business.slug}",
            "day's times": f"/b/{business.slug}/book?{base}&day={day.isoformat()}",
        }
        clock = ServerClock(cast(ASGI, create_app(settings)))
        port = free_port()
        server, thread = serve(clock, port)
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                print(
                    f"{resources} resources x {inserted} bookings over {DAYS} days; "
                    f"{requests} requests per page, one at a time, over HTTP on loopback"
                )
                print(
                    f"{'page':14} {'server p50':>10} {'p99':>7} {'p50/limit':>10}"
                    f" {'round trip p50':>15} {'HTML':>8} {'+assets':>8} {'weight/limit':>13}"
                )
                for name, page in pages.items():
                    server_ms, trip_ms = await measure(http, clock, page, requests)
                    html_bytes, total_bytes = await weigh(http, page)
                    p50 = percentile(server_ms, 0.5)
                    print(
                        f"{name:14} {p50:8.1f}ms {percentile(server_ms, 0.99):5.1f}ms"
                        f" {p50 / P50_LIMIT_MS:10.2f} {percentile(trip_ms, 0.5):13.1f}ms"
                        f" {html_bytes / 1024:6.1f}KB {total_bytes / 1024:6.1f}KB"
                        f" {total_bytes / WEIGHT_LIMIT:13.2f}"
                    )
                print(
                    f"limits: server p50 <= {P50_LIMIT_MS:.0f} ms; HTML + own CSS/JS <= "
                    f"{WEIGHT_LIMIT // 1024} KB (uncompressed); a ratio above 1.00 is over"
                )
        finally:
            server.should_exit = True
            thread.join(timeout=10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--resources", type=int, default=20)
    parser.add_argument("--bookings", type=int, default=2000)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.requests, arguments.resources, arguments.bookings))
