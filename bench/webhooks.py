"""Webhook ingest with 10% duplicate deliveries through the real inbox pipeline, next to
pgbench running the inbox's INSERT ... ON CONFLICT with the same duplicate share.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/webhooks.py [--events 1000] [--workers 16] [--seconds 10] [--http]

Sandbox bookings are placed first (each a real payment awaiting capture). Their
`payment.succeeded` events, plus re-deliveries of earlier events for a tenth of the stream,
go through `app.bookings.payment_events.ingest` from `workers` concurrent tasks: the inbox row,
the capture, the ledger entry, the booking's confirmation, the invoice and the outbox rows
commit together, and a re-delivery stops at ON CONFLICT. A second app run sends events of
an unhandled type (stored and acknowledged: the inbox alone). With --http the succeeded
events are also POSTed, signed, to /webhooks/sandbox of the real ASGI app in process.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import logging
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import time as clock
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import percentile, pgbench, scratch_database
from checkout import NOW, checkout

from app.bookings.payment_events import ingest
from app.db import create_engine, session_factory
from app.edge.api.payments import sandbox_event_for
from app.edge.asgi import create_app, sandbox_secret
from app.integrations import sandbox
from app.payments.provider_events import sandbox_event
from app.settings import Settings, app_role_url
from tests.bookings.setup import Shop, make_shop
from tests.infra import libpq

DUPLICATE_EVERY = 10  # one delivery in ten repeats an earlier event
SEEDED = 1000

PGBENCH_SCRIPT = """\\set r random(1, 10)
\\set dup random(1, :seeded)
INSERT INTO inbox (id, provider, event_id, event_type, payload) VALUES (gen_random_uuid(),
 'sandbox', CASE WHEN CAST(:r AS int) = 1 THEN 'evt_seed_' || CAST(:dup AS text)
 ELSE 'evt_sandbox_' || replace(gen_random_uuid()::text, '-', '') END, 'payment.succeeded',
 CAST(:payload AS jsonb)) ON CONFLICT (provider, event_id) DO NOTHING RETURNING id;
"""

Event = dict[str, Any]


def with_duplicates(events: list[Event], lag: int) -> list[Event]:
    """Every tenth delivery repeats an event sent at least `lag` deliveries earlier (so it
    usually finds the first one committed, as a provider's retry would)."""
    stream: list[Event] = []
    for event in events:
        if len(stream) % DUPLICATE_EVERY == DUPLICATE_EVERY - 1 and len(stream) > lag:
            stream.append(stream[len(stream) - lag - 1])
        stream.append(event)
    return stream


async def place_payments(
    sessions: async_sessionmaker[AsyncSession], shop: Shop, count: int, workers: int
) -> list[Event]:
    numbers = iter(range(count))
    events: list[Event] = []

    async def worker() -> None:
        for n in numbers:
            placed = await checkout(sessions, shop, n)
            payment = placed.payments[0]
            events.append(sandbox_event_for(shop.tenant_id, payment.id, payment.amount, True))

    await asyncio.gather(*(worker() for _ in range(workers)))
    return events


async def drive(
    stream: list[Event], workers: int, send: Callable[[Event], Awaitable[str]]
) -> tuple[float, list[float], collections.Counter[str]]:
    """Deliver the stream from `workers` tasks; events/s, latencies, outcomes."""
    deliveries = iter(stream)
    latencies: list[float] = []
    outcomes: collections.Counter[str] = collections.Counter()

    async def worker() -> None:
        for event in deliveries:
            started = time.perf_counter()
            outcomes[await send(event)] += 1
            latencies.append(time.perf_counter() - started)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    return len(stream) / (time.perf_counter() - began), latencies, outcomes


def direct(sessions: async_sessionmaker[AsyncSession]) -> Callable[[Event], Awaitable[str]]:
    async def send(event: Event) -> str:
        async with sessions() as session:
            result = await ingest(session, sandbox_event(event), NOW)
        return result.status

    return send


def ignored(events: list[Event]) -> list[Event]:
    fresh = [
        {**e, "id": f"evt_sandbox_{uuid.uuid4().hex}", "type": "payment.noted"} for e in events
    ]
    return with_duplicates(fresh, 64)


async def http_run(
    url: str, shop: Shop, events: list[Event], workers: int
) -> tuple[float, list[float], collections.Counter[str]]:
    settings = Settings(
        database_url=url,
        redis_url=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        environment="test",
        redis_namespace=f"bench-{uuid.uuid4().hex[:8]}",
    )
    secret = sandbox_secret(settings)
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    # The app runs in this event loop (no test-client thread), as under uvicorn.
    async with (
        app.lifespan(),
        httpx.AsyncClient(transport=transport, base_url="http://b") as client,
    ):

        async def send(event: Event) -> str:
            raw, header = sandbox.signed_event(event, secret, int(time.time()))
            response = await client.post(
                "/webhooks/sandbox",
                content=raw,
                headers={sandbox.SIGNATURE_HEADER: header, "content-type": "application/json"},
            )
            assert response.status_code == 200, response.text
            return str(response.json()["status"])

        return await drive(with_duplicates(events, 64), workers, send)


async def pgbench_inbox(url: str, workers: int, seconds: int, payload: Event) -> float:
    owner = create_engine(url)
    async with owner.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO inbox (id, provider, event_id, event_type, payload) "
                "SELECT gen_random_uuid(), 'sandbox', 'evt_seed_' || g, 'payment.succeeded', "
                "CAST(:payload AS jsonb) FROM generate_series(1, :n) g"
            ),
            {"payload": json.dumps(payload), "n": SEEDED},
        )
    await owner.dispose()
    tps, _, _ = pgbench(
        libpq(app_role_url(url)),
        PGBENCH_SCRIPT,
        clients=workers,
        seconds=seconds,
        defines={"seeded": str(SEEDED), "payload": json.dumps(payload)},
    )
    return tps


def line(label: str, figures: tuple[float, list[float], collections.Counter[str]]) -> str:
    rate, latencies, outcomes = figures
    seen = ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items()))
    return (
        f"  {label:28s}: {rate:8.1f} events/s   p50 {percentile(latencies, 0.5) * 1000:6.1f} ms"
        f"   p99 {percentile(latencies, 0.99) * 1000:6.1f} ms   ({seen})"
    )


async def bench(url: str, options: argparse.Namespace) -> None:
    owner = create_engine(url)
    shop = await make_shop(
        owner, resources=64, timezone="UTC", hours=(clock(0), clock(23)), max_advance_days=10**6
    )
    await owner.dispose()
    engine = create_engine(app_role_url(url), pool_size=options.workers, max_overflow=0)
    sessions = session_factory(engine)
    payments = options.events * (DUPLICATE_EVERY - 1) // DUPLICATE_EVERY
    events = await place_payments(sessions, shop, payments, options.workers)
    http_events = events[: len(events) // 2] if options.http else []
    stream = with_duplicates(events[len(http_events) :], 64)
    succeeded = await drive(stream, options.workers, direct(sessions))
    inbox_only = await drive(ignored(events), options.workers, direct(sessions))
    await engine.dispose()
    expected = len(events) - len(http_events)
    assert succeeded[2]["processed"] == expected, succeeded[2]
    assert succeeded[2]["duplicate"] == len(stream) - expected, succeeded[2]
    over_http = await http_run(url, shop, http_events, options.workers) if http_events else None
    tps = await pgbench_inbox(url, options.workers, options.seconds, events[0])
    print(
        f"webhook ingest, {options.workers} workers, 1 in {DUPLICATE_EVERY} deliveries a "
        f"duplicate (ON CONFLICT), sandbox provider"
    )
    print(line("ingest payment.succeeded", succeeded) + f"   ratio {succeeded[0] / tps:.2f}")
    print(line("ingest unhandled type", inbox_only) + f"   ratio {inbox_only[0] / tps:.2f}")
    if over_http is not None:
        print(line("HTTP POST /webhooks/sandbox", over_http) + f"   ratio {over_http[0] / tps:.2f}")
    print(f"  {'pgbench inbox INSERT':28s}: {tps:8.1f} tx/s   (same ON CONFLICT, same share)")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--http", action="store_true", help="half the events over HTTP")
    options = parser.parse_args()
    logging.getLogger("httpx").setLevel(logging.WARNING)

    async def run() -> None:
        async with scratch_database("reckon_bench_webhooks") as url:
            await bench(url, options)

    asyncio.run(run())


if __name__ == "__main__":
    main()
