"""Checkout throughput through place_booking (sandbox provider: booking, payment row, ledger
entry, outbox rows, audit, one transaction) next to pgbench replaying the identical SQL.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/checkout.py [--workers 16] [--seconds 15] [--resources 64]

The app side: `workers` asyncio tasks over a pool of as many connections, each placing
bookings on distinct slots (booking n: resource n % resources, day n // resources) so the
exclusion constraint never makes anyone wait. The pgbench side: the statements of one real
checkout, recorded with a `before_cursor_execute` listener and, for those sent straight
through psycopg in pipeline mode (app.db.run_together and Batch: a few round trips for all
of them), at the psycopg connection (watch_statements), replayed one by one in one
BEGIN/COMMIT as the app role with as many clients. Per transaction the ids the checkout
creates come from gen_random_uuid() and the resource and times move with a per-client
counter, in one \\gset SELECT before BEGIN. JSON payloads keep their
captured timestamps: only their ids move.

`--processes P` runs the app side in P OS processes (a deployment runs one API process per
core; pgbench's server side uses every core too), `workers` tasks split between them. Each
process is timed once it is as an API process is when started: a second of checkouts first
(its pool open, its code paths run), then what it keeps frozen out of the garbage collector's
way (app/heap.py).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import itertools
import json
import pstats
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from typing import Any

from psycopg.types.json import Jsonb
from psycopg.types.range import Range
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import percentile, pgbench, scratch_database
from _results import result

from app.audit import trail as audit
from app.bookings.placing import Placed, place_booking
from app.db import create_engine, session_factory
from app.heap import freeze_long_lived
from app.settings import app_role_url
from tests.bookings.setup import Shop, make_shop
from tests.infra import libpq

NOW = datetime(2030, 1, 1, tzinfo=UTC)
FIRST_DAY = datetime(2030, 2, 1, 10, tzinfo=UTC)
PGBENCH_DAYS = 36_500  # pgbench books a century later: never the app's slots
SANDBOX = "http://127.0.0.1:8000"
WARM_UP_SECONDS = 1.0  # each app process, before its timed run
Statement = tuple[str, dict[str, Any]]


def start_of(n: int, resources: int) -> datetime:
    return FIRST_DAY + timedelta(days=n // resources)


async def checkout(sessions: async_sessionmaker[AsyncSession], shop: Shop, n: int) -> Placed:
    request = shop.request(
        start_of(n, len(shop.resource_ids)),
        provider="sandbox",
        resource_id=shop.resource_ids[n % len(shop.resource_ids)],
    )
    async with sessions() as session:
        placed = await place_booking(
            session, shop.tenant_id, audit.SYSTEM, request, NOW, sandbox_base_url=SANDBOX
        )
    assert placed.payments, "a sandbox checkout writes a payment"
    return placed


def watch_statements(engine: AsyncEngine, seen: Callable[[str, Any], None]) -> Callable[[], None]:
    """Call `seen(sql, params)` for every statement the engine's connections send: through
    SQLAlchemy (its cursor event) and straight through psycopg (app.db.driver and its
    batches, pipeline mode, past SQLAlchemy's events). Returns the function that stops it."""

    def record(_c: Any, _cur: Any, statement: str, params: Any, _ctx: Any, many: bool) -> None:
        # An executemany is the same statement once per parameter set (psycopg pipelines
        # them); the replay sends each as its own statement.
        for one in params if many else [params]:
            seen(statement, one)

    patched: list[Any] = []

    def record_driver(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        raw = dbapi_connection.driver_connection
        if "execute" in vars(raw):
            return
        original = raw.execute

        async def execute(query: Any, params: Any = None, **options: Any) -> Any:
            seen(query if isinstance(query, str) else query.as_string(raw), params)
            return await original(query, params, **options)

        raw.execute = execute
        patched.append(raw)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    event.listen(engine.sync_engine, "checkout", record_driver)

    def stop() -> None:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
        event.remove(engine.sync_engine, "checkout", record_driver)
        for raw in patched:
            del raw.execute

    return stop


async def capture(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], shop: Shop, n: int
) -> list[Statement]:
    recorded: list[Statement] = []
    stop = watch_statements(engine, lambda sql, params: recorded.append((sql, dict(params or {}))))
    try:
        await checkout(sessions, shop, n)
    finally:
        stop()
    return recorded


@dataclass
class Replay:
    """Turns checkout B (compared with checkout A to tell constants from moving values) into
    a pgbench script: constants as -D variables, moving values computed in the prelude."""

    resources: list[uuid.UUID]
    day_b: int
    defines: dict[str, str] = field(default_factory=dict)
    derived: list[str] = field(default_factory=list)
    fresh: dict[str, str] = field(default_factory=dict)
    names: Iterator[int] = field(default_factory=itertools.count)

    def constant(self, value: Any) -> str:
        text = value if isinstance(value, str) else json.dumps(value)
        for key, known in self.defines.items():
            if known == text:
                return f":{key}"
        key = f"c{next(self.names)}"
        self.defines[key] = text
        return f":{key}"

    def alias(self, expression: str) -> str:
        for known in self.derived:
            if known.startswith(f"{expression} AS x"):
                return ":" + known.rsplit(" AS ", 1)[1]
        key = f"x{next(self.names)}"
        self.derived.append(f"{expression} AS {key}")
        return f":{key}"

    def uuid_text(self, a: uuid.UUID, b: uuid.UUID) -> str | None:
        """SQL (inside the prelude) for a moving id, or None for a constant one."""
        if b in self.resources:
            return "x.res"
        if a == b:
            return None
        self.fresh.setdefault(str(b), f"u{len(self.fresh)}")
        return f"x.{self.fresh[str(b)]}"

    def shifted(self, value: datetime | date) -> str:
        base = value - timedelta(days=self.day_b)
        kind = "timestamptz" if isinstance(value, datetime) else "date"
        return f"(CAST({self.constant(base.isoformat())} AS {kind}) + CAST(:d AS int) * {ONE_DAY})"

    def render(self, a: Any, b: Any) -> str:
        if b is None:
            return "NULL"
        if isinstance(b, uuid.UUID):
            moving = self.uuid_text(a, b)
            return self.constant(str(b)) if moving is None else self.alias(moving)
        if isinstance(b, datetime | date) and a != b:
            return self.alias(f"{self.shifted(b)}::text")
        if isinstance(b, Range) and a != b and b.lower and b.upper:
            bounds = f"tstzrange({self.shifted(b.lower)}, {self.shifted(b.upper)}, '{b.bounds}')"
            return self.alias(f"{bounds}::text")
        if isinstance(b, list):
            parts = [self.element(x, y) for x, y in zip(a, b, strict=True)]
            return self.alias("'{' || " + " || ',' || ".join(parts) + " || '}'")
        if isinstance(b, Jsonb):
            return self.render(json.dumps(a.obj), json.dumps(b.obj))
        if isinstance(b, str):
            return self.text(b)
        if isinstance(b, datetime | date):
            return self.constant(b.isoformat())
        if isinstance(b, Range) and b.lower and b.upper:
            return self.constant(
                f"{b.bounds[0]}{b.lower.isoformat()},{b.upper.isoformat()}{b.bounds[1]}"
            )
        return self.constant("true" if b is True else "false" if b is False else str(b))

    def element(self, a: Any, b: Any) -> str:
        """One element of an array parameter, as SQL text (inside '{...}')."""
        if b is None:
            return "'NULL'"
        if isinstance(b, uuid.UUID):
            return self.uuid_text(a, b) or f"'{b}'"
        # A -D constant: pgbench would read a ':' in a literal as a variable.
        return f"CAST({self.constant(str(b))} AS text)"

    def text(self, b: str) -> str:
        moving = [(key, f"x.{name}") for key, name in self.fresh.items() if key in b]
        moving += [(str(r), "x.res") for r in self.resources if str(r) in b]
        if not moving:
            return self.constant(b)
        expression = f"CAST({self.constant(b)} AS text)"
        for old, new in moving:
            expression = f"replace({expression}, '{old}', {new})"
        return self.alias(expression)


ONE_DAY = "interval '1 day'"
PARAM = re.compile(r"%\((\w+)\)s")


def pgbench_script(a: list[Statement], b: list[Statement], replay: Replay) -> str:
    assert [s for s, _ in a] == [s for s, _ in b], "two checkouts ran different SQL"
    # First pass registers every fresh id, so strings that embed one are rewritten too.
    for (_, pa), (_, pb) in zip(a, b, strict=True):
        for key in pb:
            if isinstance(pb[key], uuid.UUID):
                replay.uuid_text(pa[key], pb[key])
    body = []
    for (sql, pa), (_, pb) in zip(a, b, strict=True):

        def value(match: re.Match[str], pa: dict[str, Any] = pa, pb: dict[str, Any] = pb) -> str:
            return replay.render(pa[match.group(1)], pb[match.group(1)])

        body.append(PARAM.sub(value, sql).replace("%%", "%").strip() + ";")
    ids = [f"gen_random_uuid()::text AS {name}" for name in replay.fresh.values()]
    pick = "(CAST(:resources AS uuid[]))[CAST(:ri AS int)]::text AS res"
    derived = ", ".join(["x.*", *replay.derived])
    prelude = [
        "\\set n :k * :nclients + :client_id",
        "\\set k :k + 1",
        "\\set d :dbase + :n / :nres",
        "\\set ri 1 + :n % :nres",
        f"SELECT {derived} FROM (SELECT {', '.join([*ids, pick])}) x \\gset",
        "BEGIN;",
    ]
    return "\n".join([*prelude, *body, "COMMIT;"]) + "\n"


async def app_run(
    sessions: async_sessionmaker[AsyncSession],
    shop: Shop,
    workers: int,
    seconds: float,
    numbers: Iterator[int] | None = None,
) -> tuple[int, list[float], float]:
    numbers = numbers or itertools.count(10 * len(shop.resource_ids))
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            await checkout(sessions, shop, next(numbers))
            latencies.append(time.perf_counter() - started)

    cpu, began = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    elapsed = time.perf_counter() - began
    return len(latencies), latencies, (time.process_time() - cpu) / elapsed


def _process_run(
    url: str, shop: Shop, workers: int, seconds: float, start: int, step: int
) -> tuple[int, list[float], float]:
    """One OS process of the app side: its own engine, its own share of slot numbers."""

    async def run() -> tuple[int, list[float], float]:
        return await warm_app_run(url, shop, workers, seconds, itertools.count(start, step))

    return asyncio.run(run())


async def warm_app_run(
    url: str, shop: Shop, workers: int, seconds: float, numbers: Iterator[int]
) -> tuple[int, list[float], float]:
    """app_run on an engine of its own, timed once the process is as the API is when started:
    every pooled connection open, the code paths run, and what it keeps frozen out of the
    collector's way (app/edge/asgi.py's lifespan)."""
    engine = create_engine(app_role_url(url), pool_size=workers, max_overflow=0)
    sessions = session_factory(engine)
    try:
        await app_run(sessions, shop, workers, WARM_UP_SECONDS, numbers=numbers)
        freeze_long_lived()
        return await app_run(sessions, shop, workers, seconds, numbers=numbers)
    finally:
        await engine.dispose()


def parallel_app_run(
    url: str, shop: Shop, options: argparse.Namespace
) -> tuple[int, list[float], float]:
    import multiprocessing

    processes = options.processes
    share = max(1, options.workers // processes)
    start = 10 * len(shop.resource_ids)
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        results = pool.starmap(
            _process_run,
            [
                (url, shop, share, options.seconds, start + index, processes)
                for index in range(processes)
            ],
        )
    done = sum(r[0] for r in results)
    latencies = [value for r in results for value in r[1]]
    return done, latencies, sum(r[2] for r in results)


async def bench(url: str, options: argparse.Namespace) -> None:
    owner = create_engine(url)
    shop = await make_shop(
        owner,
        resources=options.resources,
        timezone="UTC",
        hours=(clock(0), clock(23)),
        max_advance_days=1_000_000,
    )
    await owner.dispose()
    engine = create_engine(app_role_url(url), pool_size=options.workers, max_overflow=0)
    sessions = session_factory(engine)
    resources = len(shop.resource_ids)
    await checkout(sessions, shop, 0)  # opens the ledger accounts: not part of a steady checkout
    first = await capture(engine, sessions, shop, 1)
    second = await capture(engine, sessions, shop, resources + 2)
    replay = Replay(shop.resource_ids, (resources + 2) // resources)
    script = pgbench_script(first, second, replay)
    if options.show_script:
        print(script)
    await engine.dispose()
    if options.processes > 1:
        done, latencies, cpu_share = await asyncio.to_thread(parallel_app_run, url, shop, options)
    else:
        done, latencies, cpu_share = await warm_app_run(
            url, shop, options.workers, options.seconds, itertools.count(10 * resources)
        )
    rate = done / options.seconds
    defines = {
        **replay.defines,
        "k": "0",
        "nclients": str(options.workers),
        "nres": str(resources),
        "dbase": str(PGBENCH_DAYS),
        "resources": "{" + ",".join(str(r) for r in shop.resource_ids) + "}",
    }
    tps, processed, _ = pgbench(
        libpq(app_role_url(url)),
        script,
        clients=options.workers,
        seconds=options.seconds,
        defines=defines,
    )
    await check_written(url, processed)
    report(options, done, rate, latencies, cpu_share, len(second), tps, processed)
    if options.profile:
        await profile(url, shop, options.profile)


async def check_written(url: str, processed: int) -> None:
    """pgbench's transactions really wrote a booking, a payment and a balanced entry each."""
    owner = create_engine(url)
    async with owner.connect() as connection:
        counts = (
            await connection.execute(
                text(
                    "SELECT (SELECT count(*) FROM bookings WHERE starts_at > :cut), "
                    "(SELECT count(*) FROM payments p JOIN bookings b ON b.tenant_id = "
                    "p.tenant_id AND b.id = p.booking_id WHERE b.starts_at > :cut), "
                    "(SELECT count(*) FROM journal_entries j JOIN bookings b ON b.tenant_id = "
                    "j.tenant_id AND b.id = j.booking_id WHERE b.starts_at > :cut)"
                ),
                {"cut": FIRST_DAY + timedelta(days=PGBENCH_DAYS - 1)},
            )
        ).one()
    await owner.dispose()
    assert min(counts) >= processed, f"pgbench wrote {counts}, reported {processed}"


async def profile(url: str, shop: Shop, checkouts: int) -> None:
    """Sequential checkouts under cProfile: where the Python time goes."""
    engine = create_engine(app_role_url(url), pool_size=1, max_overflow=0)
    sessions = session_factory(engine)
    statements = 0

    def count(*_: Any) -> None:
        nonlocal statements
        statements += 1

    watch_statements(engine, count)
    await checkout(sessions, shop, 5_000_000)
    statements = 0
    profiler = cProfile.Profile()
    began = time.perf_counter()
    profiler.enable()
    for n in range(checkouts):
        await checkout(sessions, shop, 5_000_001 + n)
    profiler.disable()
    wall = (time.perf_counter() - began) * 1000 / checkouts
    await engine.dispose()
    print(
        f"profile: {checkouts} sequential checkouts, {wall:.2f} ms wall each,"
        f" {statements / checkouts:.0f} statements each"
    )
    stats = pstats.Stats(profiler)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats("app/", 30)


PLACE_BOOKING_RATIO = 0.8  # issue 16: place_booking itself >= 0.8 of pgbench


def report(
    options: argparse.Namespace,
    done: int,
    rate: float,
    latencies: list[float],
    cpu_share: float,
    statements: int,
    tps: float,
    processed: int,
) -> None:
    print(
        f"checkout (place_booking, sandbox: booking + payment + ledger entry + outbox + audit),"
        f" {options.workers} workers in {options.processes} process(es),"
        f" {options.seconds:.0f} s, {options.resources} resources"
    )
    print(
        f"  app     : {rate:8.1f} bookings/s   p50 {percentile(latencies, 0.50) * 1000:6.1f} ms"
        f"   p99 {percentile(latencies, 0.99) * 1000:6.1f} ms   ({done} checkouts)"
    )
    print(f"  pgbench : {tps:8.1f} tx/s (same {statements} statements, {processed} transactions)")
    print(f"  ratio app/pgbench: {rate / tps:.2f}   (goal >= {PLACE_BOOKING_RATIO})")
    print(
        f"  per checkout: {statements} statements + BEGIN + COMMIT;"
        f" Python CPU {cpu_share * 1000 / rate:.2f} ms (the app used"
        f" {cpu_share * 100:.0f}% of one core)"
    )
    label = f"place_booking, {options.processes} process(es), vs pgbench"
    result("checkout.rate", rate, tps, "/s", ">=", label, target=PLACE_BOOKING_RATIO)
    p99 = percentile(latencies, 0.99) * 1000
    result("checkout.p99", p99, None, "ms", None, "place_booking p99")
    cpu = cpu_share * 1000 / rate
    result("checkout.cpu", cpu, None, "ms", None, "place_booking Python CPU per checkout")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--resources", type=int, default=64)
    parser.add_argument("--processes", type=int, default=1, help="app-side OS processes")
    parser.add_argument("--profile", type=int, default=0, help="then N checkouts in cProfile")
    parser.add_argument("--show-script", action="store_true", help="print the pgbench script")
    options = parser.parse_args()

    async def run() -> None:
        async with scratch_database("reckon_bench_checkout") as url:
            await bench(url, options)

    asyncio.run(run())


if __name__ == "__main__":
    main()
