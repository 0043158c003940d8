"""Reconciliation time and peak memory for N provider records (default 100,000) against the
ledger, for one tenant and one day.

Seeding (not timed): N bookings + Stripe payments, each with its `payment:<id>:captured` and
`payment:<id>:fee` entries, written in bulk as the owner so the database's own triggers and
constraints still run. The provider side is N Stripe balance transactions built in memory
(1% with a wrong amount, 0.5% missing from the ledger), so the figure is ours — parsing,
the ledger query, matching and storing the findings — not Stripe's pagination latency.

Timed, through the app role (RLS on), exactly what a run does after fetching:
  sources.stripe_records -> service.ledger_records -> matching.match -> service.store_run.
A second run of the same day (the idempotent re-run) is measured under tracemalloc for the
peak of Python allocations; the process's peak RSS comes from getrusage.

Usage: .venv/bin/python bench/reconciliation.py [--records 100000]
       (BENCH_DATABASE_URL defaults to postgresql://postgres@127.0.0.1:5432/postgres; a
       scratch database is created, migrated, and dropped.)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import time
import tracemalloc
import uuid
from datetime import UTC, date, datetime

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from app.cli.migrate import upgrade
from app.db import create_engine, session_factory
from app.gateways import reconciliation_sources as sources
from app.integrations.stripe_client import BalanceTransactionInfo
from app.reconciliation import service
from app.reconciliation.matching import Tolerances, match

DAY = date(2026, 3, 10)
CHUNK = 10_000


def _url(base: str, database: str, user: str | None = None) -> str:
    url = make_url(base).set(drivername="postgresql+psycopg", database=database)
    if user:
        url = url.set(username=user, password=None)
    return url.render_as_string(hide_password=False)


SEED = [
    "INSERT INTO bookings (tenant_id, id, branch_id, service_id, resource_id, customer_name,"
    " starts_at, ends_at, blocked, exclusive, status, unit_price_minor, pricing, quantity,"
    " total_minor, currency, payment_provider)"
    " SELECT :t, md5('b' || n)::uuid, :b, :s, :r, 'C', :at, :at + interval '1 hour',"
    " tstzrange(:at, :at + interval '1 hour'), false, 'completed', 10000 + n, 'fixed', 1,"
    " 10000 + n, 'EGP', 'stripe' FROM generate_series(:lo, :hi - 1) n",
    "INSERT INTO payments (tenant_id, id, booking_id, provider, status, amount_minor, currency,"
    " captured_minor, fee_minor, provider_ref, provider_charge_ref)"
    " SELECT :t, md5('p' || n)::uuid, md5('b' || n)::uuid, 'stripe', 'succeeded', 10000 + n,"
    " 'EGP', 10000 + n, 300, 'pi_' || n, 'ch_' || n FROM generate_series(:lo, :hi - 1) n",
    "INSERT INTO journal_entries (tenant_id, id, idempotency_key, reason, occurred_at,"
    " booking_id, payment_id) SELECT :t, md5(k || n)::uuid,"
    " 'payment:' || md5('p' || n)::uuid || '\\:' || k, k, :at + n * interval '0.5 second',"
    " md5('b' || n)::uuid, md5('p' || n)::uuid"
    " FROM generate_series(:lo, :hi - 1) n, (VALUES ('captured'), ('fee')) v(k)",
    "INSERT INTO postings (tenant_id, id, entry_id, account_id, amount_minor, currency)"
    " SELECT :t, gen_random_uuid(), md5(k || n)::uuid, acc, amt, 'EGP'"
    " FROM generate_series(:lo, :hi - 1) n, LATERAL (VALUES"
    " ('captured', :clearing, 10000 + n), ('captured', :receivable, -(10000 + n)),"
    " ('fee', :fees, 300), ('fee', :clearing, -300)) v(k, acc, amt)",
]


async def seed(owner: AsyncEngine, records: int) -> uuid.UUID:
    tenant, branch, service_id, res = (uuid.uuid4() for _ in range(4))
    accounts = {"clearing": uuid.uuid4(), "receivable": uuid.uuid4(), "fees": uuid.uuid4()}
    p = {
        "t": tenant,
        "b": branch,
        "s": service_id,
        "r": res,
        "at": datetime(2026, 3, 10, 1, tzinfo=UTC),
        **accounts,
    }
    async with owner.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO tenants (id, slug, name, currency, timezone)"
                " VALUES (:t, 'bench', 'Bench', 'EGP', 'UTC')"
            ),
            p,
        )
        await conn.execute(
            text(
                "INSERT INTO branches (tenant_id, id, name, timezone) VALUES (:t, :b, 'B', 'UTC')"
            ),
            p,
        )
        await conn.execute(
            text(
                "INSERT INTO services (tenant_id, id, name, policy, price_minor, currency, pricing,"
                " duration_minutes, slot_step_minutes)"
                " VALUES (:t, :s, 'S', 'time_slot', 1, 'EGP', 'fixed', 60, 60)"
            ),
            p,
        )
        await conn.execute(
            text(
                "INSERT INTO resources (tenant_id, id, name, kind, capacity)"
                " VALUES (:t, :r, 'R', 'staff', 1)"
            ),
            p,
        )
        for code, kind, key in [
            ("clearing:stripe", "asset", "clearing"),
            ("receivable:customer", "asset", "receivable"),
            ("expense:fees:stripe", "expense", "fees"),
        ]:
            await conn.execute(
                text(
                    "INSERT INTO ledger_accounts (tenant_id, id, code, type, currency, name)"
                    " VALUES (:t, :id, :code, :kind, 'EGP', :code)"
                ),
                {"t": tenant, "id": accounts[key], "code": code, "kind": kind},
            )
    for lo in range(0, records, CHUNK):
        async with owner.begin() as conn:
            for statement in SEED:
                await conn.execute(text(statement), {**p, "lo": lo, "hi": min(lo + CHUNK, records)})
    return tenant


def provider_side(records: int) -> list[BalanceTransactionInfo]:
    created = int(datetime(2026, 3, 10, 2, tzinfo=UTC).timestamp())
    txns = []
    for n in range(records):
        amount = 10_000 + n + (7 if n % 100 == 0 else 0)
        source = f"ch_x{n}" if n % 200 == 1 else f"ch_{n}"
        txns.append(
            BalanceTransactionInfo(
                f"txn_{n}",
                "charge",
                "charge",
                amount,
                300,
                amount - 300,
                "EGP",
                source,
                "available",
                created,
            )
        )
    return txns


async def reconcile_once(
    sessions: object, tenant: uuid.UUID, txns: list[BalanceTransactionInfo]
) -> tuple[dict[str, float], service.StoredRun]:
    figures: dict[str, float] = {}
    started = time.perf_counter()
    async with sessions() as session:  # type: ignore[operator]
        window = await service.day_window(session, tenant, DAY)
    records = sources.stripe_records(txns)
    figures["parse"] = time.perf_counter() - started
    mark = time.perf_counter()
    refs = sorted({r.ref for r in records})
    async with sessions() as session:  # type: ignore[operator]
        ledger = await service.ledger_records(session, tenant, "stripe", window, refs)
    figures["ledger query"] = time.perf_counter() - mark
    mark = time.perf_counter()
    result = match(records, ledger, Tolerances())
    figures["match"] = time.perf_counter() - mark
    mark = time.perf_counter()
    now = datetime.now(UTC)
    async with sessions() as session:  # type: ignore[operator]
        stored = await service.store_run(
            session,
            tenant,
            provider="stripe",
            window=window,
            result=result,
            tolerances=Tolerances(),
            started_at=now,
            now=now,
        )
    figures["store"] = time.perf_counter() - mark
    figures["total"] = time.perf_counter() - started
    return figures, stored


async def main(base: str, records: int) -> None:
    database = f"reckon_bench_recon_{uuid.uuid4().hex[:8]}"
    admin = make_url(base).set(drivername="postgresql", database="postgres")
    admin_dsn = admin.render_as_string(hide_password=False)
    with psycopg.connect(admin_dsn, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{database}"')
    owner = create_engine(_url(base, database))
    app = create_engine(_url(base, database, "reckon_app"))
    try:
        upgrade(_url(base, database))
        started = time.perf_counter()
        tenant = await seed(owner, records)
        print(
            f"seeded {records:,} payments / {2 * records:,} entries in "
            f"{time.perf_counter() - started:.1f} s (not timed)"
        )
        sessions = session_factory(app)
        txns = provider_side(records)
        figures, stored = await reconcile_once(sessions, tenant, txns)
        run = stored.run
        print(
            f"reconciled {run.provider_records:,} provider records against "
            f"{run.ledger_records:,} ledger records: matched {run.matched:,}, "
            f"discrepancies {run.discrepancies:,}"
        )
        for name, seconds in figures.items():
            print(f"  {name:<13} {seconds:7.2f} s")
        print(f"target <= 30 s: {'met' if figures['total'] <= 30 else 'MISSED'}")
        tracemalloc.start()
        again, stored = await reconcile_once(sessions, tenant, txns)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(
            f"re-run (idempotent, under tracemalloc): {again['total']:.2f} s, run attempts "
            f"{stored.run.attempts}, discrepancies {stored.run.discrepancies:,}"
        )
        print(f"peak Python allocations during a run: {peak / 2**20:.1f} MiB")
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS of the process (incl. seeding and provider data): {rss:.1f} MiB")
    finally:
        await owner.dispose()
        await app.dispose()
        with psycopg.connect(admin_dsn, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=100_000)
    args = parser.parse_args()
    base = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    asyncio.run(main(base, args.records))
