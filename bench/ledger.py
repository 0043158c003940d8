"""Ledger posting throughput: entries/s and latency of ledger.post() in its own transaction.

Two runs over the same number of entries and workers:
- hot:    every entry debits/credits the same two accounts (one tenant's receivable and
          deferred revenue) — the balance rows serialise the committing transactions;
- spread: each worker posts to its own pair of accounts — the ceiling without that contention.

Usage: .venv/bin/python bench/ledger.py [--entries 2000] [--workers 16]
       (BENCH_DATABASE_URL defaults to postgresql://postgres@127.0.0.1:5432/postgres; a
       scratch database is created, migrated, and dropped.)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from datetime import UTC, datetime

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.cli.migrate import upgrade
from app.db import create_engine, session_factory, tenant_transaction
from app.ledger import service
from app.ledger.lines import Line
from app.money import Money


def _url(base: str, database: str, user: str | None = None) -> str:
    url = make_url(base).set(drivername="postgresql+psycopg", database=database)
    if user:
        url = url.set(username=user, password=None)
    return url.render_as_string(hide_password=False)


async def _run(
    url: str, tenant_id: uuid.UUID, entries: int, workers: int, spread: bool
) -> tuple[float, list[float]]:
    engine = create_engine(url, pool_size=workers, max_overflow=0)
    sessions = session_factory(engine)
    latencies: list[float] = []
    queue = iter(range(entries))

    async def worker(number: int) -> None:
        suffix = f":w{number}" if spread else ""
        for n in queue:
            amount = Money(1000 + n, "EGP")
            lines = [
                Line(f"receivable:customer{suffix}", "asset", amount),
                Line(f"deferred_revenue{suffix}", "liability", -amount),
            ]
            started = time.perf_counter()
            async with tenant_transaction(sessions, tenant_id) as session:
                await service.post(
                    session,
                    tenant_id,
                    idempotency_key=f"bench:{spread}:{n}",
                    reason="checkout",
                    lines=lines,
                    occurred_at=datetime.now(UTC),
                )
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*[worker(n) for n in range(workers)])
    elapsed = time.perf_counter() - started
    await engine.dispose()
    return entries / elapsed, latencies


def _print(label: str, rate: float, latencies: list[float]) -> None:
    quantiles = statistics.quantiles(latencies, n=100)
    print(
        f"{label:7s} {rate:8.0f} entries/s   p50 {quantiles[49] * 1000:6.2f} ms   "
        f"p99 {quantiles[98] * 1000:6.2f} ms"
    )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=16)
    args = parser.parse_args()
    base = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    database = f"reckon_bench_ledger_{uuid.uuid4().hex[:8]}"
    admin = make_url(base).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{database}"')
    try:
        upgrade(_url(base, database))
        tenant_id = uuid.uuid4()
        owner = create_engine(_url(base, database))
        async with owner.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO tenants (id, slug, name, currency, timezone) "
                    "VALUES (:id, 'bench', 'Bench', 'EGP', 'UTC')"
                ),
                {"id": tenant_id},
            )
        await owner.dispose()
        app_url = _url(base, database, user="reckon_app")
        print(f"ledger.post(): {args.entries} entries, {args.workers} workers, one tenant")
        for spread in (False, True):
            rate, latencies = await _run(app_url, tenant_id, args.entries, args.workers, spread)
            _print("spread" if spread else "hot", rate, latencies)
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


if __name__ == "__main__":
    asyncio.run(main())
