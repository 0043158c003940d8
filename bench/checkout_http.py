"""Checkout over HTTP: POST /api/v1/bookings against API processes, next to pgbench replaying
the statements one such request sends.

    .venv/bin/python bench/checkout_http.py [--processes 2] [--connections 16] [--seconds 15]

`processes` API processes (`python -m app.cli.main serve`, one per core) on free ports against
a scratch migrated database; a business opened through the API (signup, branch, `resources`
capacity-1 resources open 00:00-23:00, a 60-minute sandbox-paid service). Every POST carries
its own Idempotency-Key and the owner's bearer token; the clients are keep-alive connections
of a lean HTTP/1.1 client in this process (bench/_rawhttp.py: httpx cost about as much CPU per
request as a third of the server's, on the same two cores), spread over the API processes.
Booking n takes a slot of its own (resource n % resources, then the next hour, then the next
day): nobody waits on anybody.

1. Maximum throughput: `connections` clients in a closed loop for `seconds`.
2. Latency at half of it: an open loop at max/2 requests per second for `seconds`; each
   latency counts from the request's scheduled time, so a stall is not hidden.
3. pgbench replays the statements of one request, captured from an in-process copy of the
   app on the same database (SQLAlchemy cursor and transaction events: the bearer token's
   principal lookup, the idempotency key's own transaction, then the booking and the stored
   response in one), with as many clients as there were connections. Ids, the key and the
   slot move per transaction as in bench/checkout.py.

Goals (issue 16): HTTP max >= 0.5 of pgbench; p99 at half the maximum <= 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import uvloop
from litestar.testing import AsyncTestClient
from sqlalchemy import event

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import client_collector_held, percentile, pgbench, scratch_database
from _http import Business, Fleet, api_processes, clients, open_business
from _rawhttp import Connection, Pool, Tally, post_bytes, send
from _results import result
from checkout import PARAM, PGBENCH_DAYS, Replay

from app.edge.asgi import create_app
from app.settings import app_role_url
from tests.infra import libpq

RATIO_GOAL, P99_LIMIT_MS = 0.5, 50.0
SLOTS_PER_DAY = 23  # 00:00-23:00, 60-minute slots
Step = tuple[str, str, dict[str, Any]]  # ("sql", statement, params) or (marker, "", {})


def first_day() -> datetime:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today + timedelta(days=2)


def booking_body(biz: Business, resource: int, start: datetime, n: int) -> dict[str, Any]:
    return {
        "service_id": biz.service_id,
        "branch_id": biz.branch_id,
        "resource_id": biz.resource_ids[resource],
        "start": start.isoformat(),
        "customer": {"name": f"Customer {n}", "phone": "+201001234567"},
        "payment": {"provider": "sandbox"},
    }


def slot(biz: Business, n: int) -> tuple[int, datetime]:
    resources = len(biz.resource_ids)
    k = n // resources
    start = first_day() + timedelta(days=k // SLOTS_PER_DAY, hours=k % SLOTS_PER_DAY)
    return n % resources, start


def booking_request(biz: Business, headers: dict[str, str], n: int) -> bytes:
    resource, start = slot(biz, n)
    body = json.dumps(booking_body(biz, resource, start, n)).encode()
    headers = {
        **headers,
        "Idempotency-Key": str(uuid.uuid4()),
        "Content-Type": "application/json",
    }
    return post_bytes("http://127.0.0.1", "/api/v1/bookings", body, headers)


async def book(
    via: Connection | Pool, biz: Business, headers: dict[str, str], n: int, tally: Tally
) -> int:
    """One booking; a broken connection is sent the same request (same key) once more."""
    request = booking_request(biz, headers, n)
    if isinstance(via, Pool):
        return (await via.send(request, tally)).status
    return (await send(via, request, tally)).status


class Counter:
    def __init__(self, start: int) -> None:
        self.n = start

    def next(self) -> int:
        self.n += 1
        return self.n


async def closed_loop(
    bases: list[str],
    biz: Business,
    headers: dict[str, str],
    connections: int,
    seconds: float,
    numbers: Counter,
) -> tuple[int, dict[int, int], list[float]]:
    latencies: list[float] = []
    answers: dict[int, int] = {}
    tally = Tally()
    deadline = time.perf_counter() + seconds

    async def worker(index: int) -> None:
        connection = Connection(bases[index % len(bases)])
        try:
            while time.perf_counter() < deadline:
                began = time.perf_counter()
                status = await book(connection, biz, headers, numbers.next(), tally)
                latencies.append(time.perf_counter() - began)
                answers[status] = answers.get(status, 0) + 1
        finally:
            await connection.close()

    await asyncio.gather(*(worker(i) for i in range(connections)))
    return answers.get(201, 0), answers, latencies


async def open_loop(
    bases: list[str],
    biz: Business,
    headers: dict[str, str],
    rate: float,
    seconds: float,
    numbers: Counter,
) -> tuple[dict[int, int], list[float]]:
    latencies: list[float] = []
    answers: dict[int, int] = {}
    interval = 1.0 / rate
    pool = Pool(bases)
    tally = Tally()
    began = time.perf_counter()

    async def one(scheduled: float, n: int) -> None:
        status = await book(pool, biz, headers, n, tally)
        latencies.append(time.perf_counter() - scheduled)
        answers[status] = answers.get(status, 0) + 1

    tasks = []
    try:
        for i in range(int(rate * seconds)):
            scheduled = began + i * interval
            await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
            tasks.append(asyncio.create_task(one(scheduled, numbers.next())))
        await asyncio.gather(*tasks)
    finally:
        await pool.close()
    return answers, latencies


async def capture(fleet: Fleet, biz: Business) -> tuple[list[Step], list[Step], list[str]]:
    """Two requests through an in-process copy of the app, every statement and transaction
    boundary recorded. Returns both recordings and their idempotency keys."""
    app = create_app(fleet.settings())
    engine = app.state.engine
    recorded: list[Step] = []

    def statement(_c: Any, _cur: Any, sql: str, params: Any, _ctx: Any, many: bool) -> None:
        for one in params if many else [params]:
            values = {
                k: v.decode() if isinstance(v, bytes) else v for k, v in dict(one or {}).items()
            }
            recorded.append(("sql", sql, values))

    def marker(name: str) -> Any:
        return lambda *_: recorded.append((name, "", {}))

    listeners = [
        ("before_cursor_execute", statement),
        ("begin", marker("BEGIN")),
        ("commit", marker("COMMIT")),
        ("rollback", marker("ROLLBACK")),
    ]
    for name, listener in listeners:
        event.listen(engine.sync_engine, name, listener)

    def record_driver(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        # The idempotency key's statements go straight to psycopg (pipeline mode, see
        # app/edge/idempotency.py), past SQLAlchemy's cursor events: record them here.
        raw = dbapi_connection.driver_connection
        if getattr(raw, "_bench_recorded", False):
            return
        original = raw.execute

        async def execute(query: Any, params: Any = None, **options: Any) -> Any:
            sql = query if isinstance(query, str) else query.as_string(raw)
            statement(None, None, sql, params, None, False)
            return await original(query, params, **options)

        raw.execute, raw._bench_recorded = execute, True

    event.listen(engine.sync_engine, "checkout", record_driver)
    far = first_day() + timedelta(days=200, hours=10)
    runs, keys = [], []
    async with AsyncTestClient(app=app) as client:
        for resource, day in ((1, 0), (2, 1)):
            recorded.clear()
            key = str(uuid.uuid4())
            response = await client.post(
                "/api/v1/bookings",
                json=booking_body(biz, resource, far + timedelta(days=day), -1 - day),
                headers={**client_headers(biz), "Idempotency-Key": key},
            )
            assert response.status_code == 201, response.text
            runs.append(list(recorded))
            keys.append(key)
    return runs[0], runs[1], keys


def client_headers(biz: Business) -> dict[str, str]:
    return {"Authorization": f"Bearer {biz.token}"}


def pgbench_script(a: list[Step], b: list[Step], keys: list[str], replay: Replay) -> str:
    assert [(k, s) for k, s, _ in a] == [(k, s) for k, s, _ in b], "two requests ran other SQL"
    replay.uuid_text(uuid.UUID(keys[0]), uuid.UUID(keys[1]))  # the key moves like an id
    for (_, _, pa), (_, _, pb) in zip(a, b, strict=True):
        for key in pb:
            if isinstance(pb[key], uuid.UUID):
                replay.uuid_text(pa[key], pb[key])
    body = []
    for (kind, sql, pa), (_, _, pb) in zip(a, b, strict=True):
        if kind != "sql":
            body.append(f"{kind};")
            continue

        def value(match: Any, pa: dict[str, Any] = pa, pb: dict[str, Any] = pb) -> str:
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
    ]
    return "\n".join([*prelude, *body]) + "\n"


async def bench(url: str, options: argparse.Namespace) -> None:
    async with api_processes(url, options.processes) as fleet:
        async with clients(fleet, options.connections) as pool:
            biz = await open_business(pool, resources=options.resources, hours=("00:00", "23:00"))
            # Warm-up: every connection opened, every process past its first requests.
            numbers = Counter(0)
            bases, headers = fleet.bases, dict(pool.headers)
            await closed_loop(bases, biz, headers, options.connections, 2.0, numbers)
            with client_collector_held():
                done, answers, _ = await closed_loop(
                    bases, biz, headers, options.connections, options.seconds, numbers
                )
            max_rate = done / options.seconds
            rss_max = fleet.peak_rss_mb()
            half = max_rate / 2
            with client_collector_held():
                half_answers, latencies = await open_loop(
                    bases, biz, headers, half, options.seconds, numbers
                )
            rss_half = fleet.peak_rss_mb()
        first, second, keys = await capture(fleet, biz)
    resources = [uuid.UUID(r) for r in biz.resource_ids]
    replay = Replay(resources, 1)
    script = pgbench_script(first, second, keys, replay)
    if options.show_script:
        print(script)
    defines = {
        **replay.defines,
        "k": "0",
        "nclients": str(options.connections),
        "nres": str(len(resources)),
        "dbase": str(PGBENCH_DAYS),
        "resources": "{" + ",".join(biz.resource_ids) + "}",
    }
    tps, processed, _ = pgbench(
        libpq(app_role_url(url)),
        script,
        clients=options.connections,
        seconds=round(options.seconds),
        defines=defines,
    )
    statements = sum(1 for kind, _, _ in second if kind == "sql")
    transactions = sum(1 for kind, _, _ in second if kind == "BEGIN")
    p50 = statistics.median(latencies) * 1000
    p99 = percentile(latencies, 0.99) * 1000
    ratio = max_rate / tps
    print(
        f"checkout over HTTP (POST /api/v1/bookings, sandbox, Idempotency-Key on each),"
        f" {options.processes} API processes, {options.connections} keep-alive connections,"
        f" {options.seconds:.0f} s per phase, {options.resources} resources"
    )
    print(f"  max     : {max_rate:8.1f} bookings/s   answers {answers}")
    print(
        f"  at half : {half:8.1f} req/s   p50 {p50:6.1f} ms   p99 {p99:6.1f} ms"
        f"   answers {half_answers}"
    )
    print(
        f"  pgbench : {tps:8.1f} tx/s (the request's {statements} statements in"
        f" {transactions} transactions, {processed} replays, {options.connections} clients)"
    )
    print(f"  ratio HTTP/pgbench: {ratio:.2f}   (goal >= {RATIO_GOAL})")
    print(f"  p99 at half / limit: {p99 / P99_LIMIT_MS:.2f}   (p99 <= {P99_LIMIT_MS:.0f} ms)")
    print(
        "  API peak RSS (MB): at max "
        + ", ".join(f"{v:.0f}" for v in rss_max)
        + "; after half "
        + ", ".join(f"{v:.0f}" for v in rss_half)
    )
    label = f"checkout over HTTP, {options.processes} API processes, vs pgbench"
    result("checkout_http.rate", max_rate, tps, "/s", ">=", label, target=RATIO_GOAL)
    result("checkout_http.p99", p99, P99_LIMIT_MS, "ms", "<=", "checkout over HTTP p99 at half max")
    rss = max([*rss_max, *rss_half])
    result("checkout_http.api_rss", rss, None, "MB", None, "checkout over HTTP: API peak RSS")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--processes", type=int, default=2, help="API processes")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--resources", type=int, default=64)
    parser.add_argument("--show-script", action="store_true", help="print the pgbench script")
    options = parser.parse_args()

    async def run() -> None:
        async with scratch_database("reckon_bench_checkout_http") as url:
            await bench(url, options)

    uvloop.run(run())


if __name__ == "__main__":
    main()
