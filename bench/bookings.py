"""Booking throughput under contention, next to pgbench running the same INSERT (the limit).

    .venv/bin/python bench/bookings.py [--attempts 200] [--connections 50] [--rounds 5]

Scenarios, each with `attempts` concurrent place_booking calls per round (asyncio tasks over a
pool of `connections`; the server's max_connections, shared, caps real parallelism):
  one slot     every attempt in a round wants the same capacity-1 slot: 1 wins, the rest
               get SlotUnavailable. Figure: attempts resolved per second.
  spread       every attempt wants a different slot: all win. Figure: bookings per second.
pgbench runs the bare INSERT into bookings (under the exclusion constraint, ON CONFLICT DO
NOTHING so losers do not abort the client) with the same number of clients for the same
two shapes. The ratio app/pgbench is the cost of the use case (RLS, engine check, audit)
over the raw constraint.

Uses its own database (created and dropped), PostgreSQL at BENCH_DATABASE_URL or
postgresql://postgres@127.0.0.1:5432/postgres.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from pathlib import Path

import psycopg
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.audit import trail as audit
from app.bookings.errors import SlotUnavailable
from app.bookings.placing import place_booking
from app.cli.migrate import upgrade
from app.db import session_factory
from app.settings import app_role_url, normalise_database_url
from tests.bookings.setup import Shop, make_shop
from tests.infra import libpq, with_database

NOW = datetime(2030, 1, 1, tzinfo=UTC)
DAY_HOURS = 22  # slots 01:00..22:00 local on 00:00-23:00 hours

INSERT = """INSERT INTO bookings (tenant_id, id, branch_id, service_id, resource_id,
 customer_name, party_size, starts_at, ends_at, blocked, exclusive, status, unit_price_minor,
 pricing, quantity, total_minor, currency, payment_provider)
SELECT CAST(:tenant AS uuid), gen_random_uuid(), CAST(:branch AS uuid), CAST(:service AS uuid),
 CAST(:resource AS uuid), 'Bench', 1, s.at, s.at + interval '1 hour',
 tstzrange(s.at, s.at + interval '1 hour'), true, 'confirmed', 10000, 'fixed', 1, 10000,
 'EGP', 'cash'
FROM (SELECT CAST(:start AS timestamptz) + {offset} * interval '1 hour' AS at) s
ON CONFLICT DO NOTHING;
"""


def slot(shop: Shop, n: int) -> datetime:
    """The n-th distinct bookable hour (n >= 0), from day 1 on."""
    day = NOW.date() + timedelta(days=1 + n // DAY_HOURS)
    return datetime.combine(day, datetime.min.time(), tzinfo=shop.tz) + timedelta(
        hours=1 + n % DAY_HOURS
    )


async def one_round(
    sessions: async_sessionmaker[AsyncSession], shop: Shop, starts: list[datetime]
) -> tuple[int, int]:
    async def attempt(start: datetime) -> bool:
        async with sessions() as session:
            try:
                await place_booking(session, shop.tenant_id, audit.SYSTEM, shop.request(start), NOW)
            except SlotUnavailable:
                return False
            return True

    results = await asyncio.gather(*(attempt(s) for s in starts))
    return sum(results), len(results) - sum(results)


async def app_scenario(
    sessions: async_sessionmaker[AsyncSession],
    shop: Shop,
    attempts: int,
    rounds: int,
    spread: bool,
    first: int,
) -> tuple[float, int, int]:
    won = lost = 0
    began = time.perf_counter()
    for r in range(rounds):
        if spread:
            starts = [slot(shop, first + r * attempts + i) for i in range(attempts)]
        else:
            starts = [slot(shop, first + r)] * attempts
        w, lo = await one_round(sessions, shop, starts)
        won, lost = won + w, lost + lo
    return time.perf_counter() - began, won, lost


def pgbench(url: str, shop: Shop, clients: int, seconds: int, spread: bool) -> float:
    offset = "nextval('bench_slots')" if spread else "0"
    script = INSERT.format(offset=offset).replace("\n", " ")
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as handle:
        handle.write(script + "\n")
    start = datetime(2032, 1, 1, tzinfo=UTC) if spread else datetime(2031, 6, 1, 10, tzinfo=UTC)
    args = [
        "/usr/bin/pgbench",
        "-n",
        "-M",
        "prepared",
        "-c",
        str(clients),
        "-j",
        str(min(clients, 8)),
        "-T",
        str(seconds),
        "-f",
        handle.name,
        "-D",
        f"tenant={shop.tenant_id}",
        "-D",
        f"branch={shop.branch_id}",
        "-D",
        f"service={shop.service_id}",
        "-D",
        f"resource={shop.resource_ids[-1]}",
        "-D",
        f"start={start.isoformat()}",
        libpq(url),
    ]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    os.unlink(handle.name)
    match = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", out)
    if match is None:
        raise RuntimeError(out)
    return float(match.group(1))


async def run(base: str, attempts: int, connections: int, rounds: int, seconds: int) -> None:
    database = f"bench_bookings_{uuid.uuid4().hex[:8]}"
    admin = libpq(with_database(base, "postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    url = with_database(base, database)
    try:
        upgrade(url)
        owner = create_async_engine(url)
        shop = await make_shop(owner, resources=2, hours=(clock(0), clock(23)))
        await owner.dispose()
        with psycopg.connect(libpq(url), autocommit=True) as conn:
            conn.execute("CREATE SEQUENCE bench_slots")
        engine = create_async_engine(
            app_role_url(url), pool_size=connections, max_overflow=0, pool_timeout=300
        )
        sessions = session_factory(engine)
        await one_round(sessions, shop, [slot(shop, 10_000)])  # warm the pool and caches
        one = await app_scenario(sessions, shop, attempts, rounds, False, 0)
        spread = await app_scenario(sessions, shop, attempts, rounds, True, 100)
        await engine.dispose()
        pg_one = pgbench(url, shop, connections, seconds, spread=False)
        pg_spread = pgbench(url, shop, connections, seconds, spread=True)
        report(attempts, connections, one, spread, pg_one, pg_spread)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def report(
    attempts: int,
    connections: int,
    one: tuple[float, int, int],
    spread: tuple[float, int, int],
    pg_one: float,
    pg_spread: float,
) -> None:
    one_rate = (one[1] + one[2]) / one[0]
    spread_rate = spread[1] / spread[0]
    print(f"{attempts}-way contention, {connections} connections, place_booking use case")
    print(
        f"  one slot : {one_rate:8.0f} attempts/s  ({one[1]} won, {one[2]} SlotUnavailable)"
        f"   pgbench same INSERT: {pg_one:8.0f} tx/s   ratio {one_rate / pg_one:.2f}"
    )
    print(
        f"  spread   : {spread_rate:8.0f} bookings/s ({spread[1]} won, {spread[2]} lost)"
        f"        pgbench same INSERT: {pg_spread:8.0f} tx/s   ratio "
        f"{spread_rate / pg_spread:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--attempts", type=int, default=200)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=5)
    options = parser.parse_args()
    base = normalise_database_url(
        os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    )
    asyncio.run(run(base, options.attempts, options.connections, options.rounds, options.seconds))


if __name__ == "__main__":
    main()
