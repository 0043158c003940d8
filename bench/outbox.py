"""Outbox relay benchmark: commit->handled latency at a steady rate, and drain throughput
next to a raw SQL `FOR UPDATE SKIP LOCKED` claim loop run by pgbench on the same table.

    .venv/bin/python bench/outbox.py [--database-url postgresql://postgres@127.0.0.1:5432/postgres]

Creates and drops a scratch database. The handler is a no-op, so the figures are the relay's
own cost: claim, dispatch, mark delivered.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.cli.migrate import upgrade
from app.db import create_engine, session_factory, tenant_transaction
from app.logs import configure_logging
from app.outbox.dispatch import Dispatcher, HandlerContext
from app.outbox.models import OutboxEvent
from app.outbox.relay import Relay, RelayConfig, libpq_url
from app.outbox.service import stage
from app.settings import app_role_url, normalise_database_url

CLAIM_SQL = """
WITH claimed AS (
    SELECT tenant_id, id FROM outbox WHERE status = 'pending'
    ORDER BY seq LIMIT 200 FOR UPDATE SKIP LOCKED)
UPDATE outbox o SET status = 'delivered', delivered_at = now(), attempts = o.attempts + 1
FROM claimed c WHERE o.tenant_id = c.tenant_id AND o.id = c.id;
"""


def with_database(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def fill(owner: AsyncEngine, tenant_id: uuid.UUID, rows: int, aggregates: int) -> None:
    async with owner.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO outbox (tenant_id, id, aggregate_type, aggregate_id, topic, payload) "
                "SELECT :tenant, gen_random_uuid(), 'booking', "
                "md5((g % :aggregates)::text)::uuid, 'bench.noop', '{}' "
                "FROM generate_series(1, :rows) g"
            ),
            {"tenant": tenant_id, "rows": rows, "aggregates": aggregates},
        )
        await connection.execute(text("ANALYZE outbox"))


async def latency(
    relay: Relay,
    sessions: async_sessionmaker[AsyncSession],
    tenant_id: uuid.UUID,
    handled: dict[uuid.UUID, float],
    rate: int,
    seconds: float,
) -> list[float]:
    committed: dict[uuid.UUID, float] = {}
    running = asyncio.create_task(relay.run())
    await asyncio.sleep(0.5)
    interval, started = 1.0 / rate, time.perf_counter()
    for n in range(int(rate * seconds)):
        await asyncio.sleep(max(0.0, started + n * interval - time.perf_counter()))
        async with tenant_transaction(sessions, tenant_id) as session:
            event_id = await stage(
                session, tenant_id, "bench.noop", "booking", uuid.uuid4(), {"n": n}
            )
        committed[event_id] = time.perf_counter()
    deadline = time.perf_counter() + 10
    while len(handled) < len(committed) and time.perf_counter() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)
    return [max(0.0, handled[key] - at) * 1000 for key, at in committed.items() if key in handled]


def pgbench_drain(url: str, rows: int, clients: int) -> float:
    with tempfile.TemporaryDirectory() as scratch:
        script = Path(scratch) / "claim.sql"
        script.write_text(CLAIM_SQL)
        per_client = rows // (200 * clients) + 2
        started = time.perf_counter()
        subprocess.run(
            [
                "/usr/bin/pgbench",
                "-n",
                "-c",
                str(clients),
                "-j",
                str(clients),
                "-t",
                str(per_client),
                "-f",
                str(script),
                libpq_url(url),
            ],
            check=True,
            capture_output=True,
        )
        return time.perf_counter() - started


async def run(args: argparse.Namespace) -> None:
    base = normalise_database_url(args.database_url)
    name = f"reckon_bench_{uuid.uuid4().hex[:8]}"
    admin = libpq_url(with_database(base, "postgres"))
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    url = with_database(base, name)
    try:
        upgrade(url)
        await bench(url, args)
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def bench(url: str, args: argparse.Namespace) -> None:
    owner = create_engine(url)
    app = create_engine(app_role_url(url), pool_size=20, max_overflow=20)
    sessions = session_factory(app)
    tenant_id = uuid.uuid4()
    async with owner.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO tenants (id, slug, name, currency, timezone) "
                "VALUES (:id, 'bench', 'Bench', 'EGP', 'UTC')"
            ),
            {"id": tenant_id},
        )
    handled: dict[uuid.UUID, float] = {}

    async def noop(_: HandlerContext, event: OutboxEvent) -> None:
        handled[event.id] = time.perf_counter()

    dispatcher = Dispatcher()
    dispatcher.register("bench.noop", noop)
    ctx = HandlerContext(
        sessions=sessions,
        redis=None,  # type: ignore[arg-type]
        namespace="bench",
        worker_id="bench",
    )
    relay = Relay(
        app,
        dispatcher,
        ctx,
        config=RelayConfig(batch_size=args.batch),
        listen_url=libpq_url(app_role_url(url)),
    )

    samples = await latency(relay, sessions, tenant_id, handled, args.rate, args.seconds)
    print(
        f"latency @ {args.rate}/s for {args.seconds:.0f}s: n={len(samples)} "
        f"p50={statistics.median(samples):.1f} ms p99={percentile(samples, 0.99):.1f} ms "
        f"max={max(samples):.1f} ms  (goals <= 10 / <= 50 ms)"
    )

    await fill(owner, tenant_id, args.rows, args.rows // 10)
    started = time.perf_counter()
    drained = await relay.drain()
    relay_rate = drained / (time.perf_counter() - started)

    async with owner.begin() as connection:
        await connection.execute(text("DELETE FROM outbox"))
    await fill(owner, tenant_id, args.rows, args.rows // 10)
    elapsed = pgbench_drain(url, args.rows, args.clients)
    async with owner.connect() as connection:
        left = (
            await connection.execute(text("SELECT count(*) FROM outbox WHERE status = 'pending'"))
        ).scalar_one()
    raw_rate = (args.rows - left) / elapsed
    print(
        f"drain {args.rows} rows: relay {relay_rate:,.0f} rows/s (1 relay, batch "
        f"{args.batch}); raw SKIP LOCKED via pgbench {raw_rate:,.0f} rows/s "
        f"({args.clients} clients, batch 200); ratio {relay_rate / raw_rate:.2f}"
    )
    await owner.dispose()
    await app.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--rate", type=int, default=200, help="events committed per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--clients", type=int, default=4)
    configure_logging(json=True, level=logging.WARNING)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
