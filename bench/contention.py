"""Contention, side by side: N concurrent requests for one slot over HTTP, capacity 1 then 5,
answered by Reckon and by the two strategies comparable systems use.

    .venv/bin/python bench/contention.py [--requests 500] [--processes 2]

Reckon: POST /api/v1/bookings on `processes` API processes (`python -m app.cli.main serve`),
each request with its own Idempotency-Key, all for the same resource and start (the database
decides: row lock + exclusion constraint / recount; see app/bookings/placing.py).

The two comparisons are implemented here and nowhere else, served the same way (`processes`
uvicorn processes of a bare ASGI app in this file, same database, same client: one keep-alive
connection per request from the lean HTTP/1.1 client of bench/_rawhttp.py),
each booking written to a table of their own:
- redis-lock: SET NX PX 30000 on the slot's key (exponential backoff with jitter while it is
  held, 10 s to get it), then check-then-insert (count, insert if below capacity) in one
  transaction, then release (compare-and-delete).
- cas: a slot row (taken, version); read it, refuse when full, else
  UPDATE ... SET taken = taken + 1, version = version + 1 WHERE version = <read>; on 0 rows
  retry (up to 20 times, backoff with jitter); the booking is inserted in the same
  transaction as the winning update.

Per strategy and capacity: throughput (requests / burst wall time), p50/p99/max latency,
winners, 5xx, wrong outcomes (bookings in the table other than capacity: over- or under-
booked, a request gave up while room was left; 201s the table does not hold) and answers
slower than 2 s. Also the servers' CPU per request (from /proc), and peak RSS.

Goal (issue 16), Reckon: exactly capacity winners, 0 5xx, every answer within 2 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import client_collector_held, percentile, scratch_database
from _http import (
    Business,
    api_processes,
    clients,
    free_port,
    open_business,
    peak_rss_mb,
    redis_url,
    spawn,
)
from _rawhttp import Connection, Tally, post_bytes, request_bytes, send
from _results import result

DEADLINE_SECONDS = 2.0
LOCK_TTL_MS = 30_000
LOCK_WAIT_SECONDS = 10.0
CAS_RETRIES = 20
TZ = ZoneInfo("UTC")

TABLES = """
CREATE TABLE IF NOT EXISTS cmp_slots (
    id uuid PRIMARY KEY, capacity int NOT NULL, taken int NOT NULL DEFAULT 0,
    version int NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS cmp_bookings (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(), slot_id uuid NOT NULL, customer text NOT NULL,
    strategy text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX IF NOT EXISTS ix_cmp_bookings_slot ON cmp_bookings (slot_id);
"""
RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


# --- The comparison servers: a bare ASGI app, one uvicorn process each ---------------------


class StrategyApp:
    """POST /book {"strategy", "slot", "capacity", "customer"} -> 201 | 409 | 503."""

    def __init__(self, url: str, namespace: str) -> None:
        self.url, self.namespace = url, namespace
        self.engine: Any = None
        self.redis: Any = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        ask = json.loads(body)
        try:
            if ask["strategy"] == "redis-lock":
                status = await self.redis_lock(ask)
            else:
                status = await self.cas(ask)
        except Exception as error:
            status = 500
            print(f"{type(error).__name__}: {error}", file=sys.stderr)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": b"{}"})

    async def _lifespan(self, receive: Any, send: Any) -> None:
        from redis.asyncio import Redis

        from app.db import create_engine

        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.engine = create_engine(self.url)  # the API's pool: 10 + 20 overflow
                self.redis = Redis.from_url(redis_url())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.engine.dispose()
                await self.redis.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _check_then_insert(self, ask: dict[str, Any]) -> int:
        from sqlalchemy import text

        async with self.engine.begin() as connection:
            taken = (
                await connection.execute(
                    text("SELECT count(*) FROM cmp_bookings WHERE slot_id = :s"),
                    {"s": ask["slot"]},
                )
            ).scalar_one()
            if taken >= ask["capacity"]:
                return 409
            await connection.execute(
                text(
                    "INSERT INTO cmp_bookings (slot_id, customer, strategy) "
                    "VALUES (:s, :c, 'redis-lock')"
                ),
                {"s": ask["slot"], "c": str(ask["customer"])},
            )
            return 201

    async def redis_lock(self, ask: dict[str, Any]) -> int:
        key, token = f"{self.namespace}:lock:{ask['slot']}", uuid.uuid4().hex
        deadline, delay = time.monotonic() + LOCK_WAIT_SECONDS, 0.005
        while not await self.redis.set(key, token, nx=True, px=LOCK_TTL_MS):
            if time.monotonic() > deadline:
                return 503
            await asyncio.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(delay * 2, 0.1)
        try:
            return await self._check_then_insert(ask)
        finally:
            await self.redis.eval(RELEASE, 1, key, token)

    async def cas(self, ask: dict[str, Any]) -> int:
        from sqlalchemy import text

        delay = 0.002
        for _ in range(CAS_RETRIES):
            async with self.engine.begin() as connection:
                taken, version = (
                    await connection.execute(
                        text("SELECT taken, version FROM cmp_slots WHERE id = :s"),
                        {"s": ask["slot"]},
                    )
                ).one()
                if taken >= ask["capacity"]:
                    return 409
                swapped = await connection.execute(
                    text(
                        "UPDATE cmp_slots SET taken = taken + 1, version = version + 1 "
                        "WHERE id = :s AND version = :v"
                    ),
                    {"s": ask["slot"], "v": version},
                )
                if swapped.rowcount == 1:
                    await connection.execute(
                        text(
                            "INSERT INTO cmp_bookings (slot_id, customer, strategy) "
                            "VALUES (:s, :c, 'cas')"
                        ),
                        {"s": ask["slot"], "c": str(ask["customer"])},
                    )
                    return 201
            await asyncio.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(delay * 2, 0.05)
        return 409  # gave up: counted as wrong when room was left


def serve_strategies(url: str, namespace: str, port: int) -> None:
    import uvicorn

    uvicorn.run(
        StrategyApp(url, namespace),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="on",
    )


@dataclass
class StrategyServers:
    ports: list[int]
    children: list[subprocess.Popen[bytes]]

    @property
    def bases(self) -> list[str]:
        return [f"http://127.0.0.1:{port}" for port in self.ports]


@asynccontextmanager
async def strategy_processes(url: str, count: int) -> AsyncIterator[StrategyServers]:
    namespace = f"reckon-bench-cmp-{uuid.uuid4().hex[:8]}"
    ports = [free_port() for _ in range(count)]
    env = {**os.environ, "CMP_DATABASE_URL": url, "CMP_NAMESPACE": namespace}
    with tempfile.TemporaryDirectory(prefix="reckon-bench-cmp-") as scratch:
        log = Path(scratch) / "servers.log"
        children = [
            spawn([sys.executable, __file__, "--serve", str(port)], env, log) for port in ports
        ]
        servers = StrategyServers(ports, children)
        try:
            deadline = time.monotonic() + 30
            async with httpx.AsyncClient(timeout=2) as http:
                for base in servers.bases:
                    while True:
                        try:
                            await http.get(base)
                            break
                        except httpx.TransportError:
                            if time.monotonic() > deadline:
                                raise RuntimeError(log.read_text(errors="replace")) from None
                            await asyncio.sleep(0.1)
            yield servers
        finally:
            for child in children:
                if child.poll() is None:
                    os.killpg(child.pid, signal.SIGTERM)
            for child in children:
                try:
                    child.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(child.pid, signal.SIGKILL)
                    child.wait()


# --- The burst ---------------------------------------------------------------------------


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
    return total / os.sysconf("SC_CLK_TCK")


@dataclass
class Burst:
    strategy: str
    capacity: int
    answers: Counter[int]
    latencies: list[float]
    wall: float
    stored: int
    cpu_ms: float

    @property
    def winners(self) -> int:
        return self.answers[201]

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.answers.items() if status >= 500)

    @property
    def late(self) -> int:
        return sum(1 for latency in self.latencies if latency > DEADLINE_SECONDS)

    @property
    def wrong(self) -> int:
        """Over- or under-booked, and 201s the table does not hold (or the reverse)."""
        return abs(self.stored - self.capacity) + abs(self.winners - self.stored)

    @property
    def ok(self) -> bool:
        return (
            self.winners == self.capacity
            and self.server_errors == 0
            and self.wrong == 0
            and self.late == 0
        )


async def burst(
    bases: list[str],
    pids: list[int],
    requests: int,
    build: Callable[[int], bytes],
) -> tuple[Counter[int], list[float], float, float]:
    """`requests` at once, each on a keep-alive connection of its own (the lean client of
    _rawhttp.py: httpx's own CPU on the same two cores delayed the answers it timed), spread
    over the servers. Every connection is opened and warmed with one GET /health/live first
    (it loads the servers' code paths); the requests are built before the clock starts."""
    connections = [Connection(bases[i % len(bases)]) for i in range(requests)]
    tally = Tally()
    try:
        await asyncio.gather(
            *(
                send(c, request_bytes("GET", c_base, "/health/live"), tally)
                for c, c_base in ((c, bases[i % len(bases)]) for i, c in enumerate(connections))
            )
        )
        built = [build(n) for n in range(requests)]
        answers: Counter[int] = Counter()
        latencies: list[float] = []
        start = asyncio.Event()
        failures: Counter[str] = Counter()

        async def one(n: int) -> None:
            await start.wait()
            began = time.perf_counter()
            try:
                status = (await send(connections[n], built[n], tally, tries=1)).status
            except (OSError, asyncio.IncompleteReadError) as error:
                status = 599  # no answer at all: counted with the 5xx
                failures[type(error).__name__] += 1
            latencies.append(time.perf_counter() - began)
            answers[status] += 1

        tasks = [asyncio.create_task(one(n)) for n in range(requests)]
        await asyncio.sleep(0.2)
        cpu = cpu_seconds(pids)
        with client_collector_held():
            began = time.perf_counter()
            start.set()
            await asyncio.gather(*tasks)
            wall = time.perf_counter() - began
        if failures:
            print(f"  (no answer: {dict(failures)})")
        return answers, latencies, wall, (cpu_seconds(pids) - cpu) * 1000 / requests
    finally:
        for connection in connections:
            await connection.close()


async def reckon_burst(
    fleet_bases: list[str], pids: list[int], url: str, biz: Business, capacity: int, requests: int
) -> Burst:
    day = datetime.now(TZ).date() + timedelta(days=3)
    start = datetime(day.year, day.month, day.day, 10, tzinfo=TZ)
    headers = {"Authorization": f"Bearer {biz.token}", "Content-Type": "application/json"}

    def build(n: int) -> bytes:
        body = {
            "service_id": biz.service_id,
            "branch_id": biz.branch_id,
            "resource_id": biz.resource_ids[0],
            "start": start.isoformat(),
            "customer": {"name": f"Customer {n}", "phone": "+201001234567"},
            "payment": {"provider": "cash"},
        }
        key = {"Idempotency-Key": str(uuid.uuid4())}
        return post_bytes(
            fleet_bases[0], "/api/v1/bookings", json.dumps(body).encode(), {**headers, **key}
        )

    answers, latencies, wall, cpu = await burst(fleet_bases, pids, requests, build)
    stored = await _scalar(
        url,
        "SELECT count(*) FROM bookings WHERE resource_id = %s AND starts_at = %s "
        "AND status IN ('pending_payment', 'confirmed', 'checked_in')",
        (biz.resource_ids[0], start),
    )
    return Burst("reckon", capacity, answers, latencies, wall, stored, cpu)


async def strategy_burst(
    servers: StrategyServers, url: str, strategy: str, capacity: int, requests: int
) -> Burst:
    slot = str(uuid.uuid4())
    await _execute(url, "INSERT INTO cmp_slots (id, capacity) VALUES (%s, %s)", (slot, capacity))

    def build(n: int) -> bytes:
        ask = {"strategy": strategy, "slot": slot, "capacity": capacity, "customer": n}
        json_type = {"Content-Type": "application/json"}
        return post_bytes(servers.bases[0], "/book", json.dumps(ask).encode(), json_type)

    pids = [child.pid for child in servers.children]
    answers, latencies, wall, cpu = await burst(servers.bases, pids, requests, build)
    stored = await _scalar(url, "SELECT count(*) FROM cmp_bookings WHERE slot_id = %s", (slot,))
    return Burst(strategy, capacity, answers, latencies, wall, stored, cpu)


async def _scalar(url: str, sql: str, params: tuple[Any, ...]) -> int:
    import psycopg

    from tests.infra import libpq

    async with await psycopg.AsyncConnection.connect(libpq(url)) as connection:
        row = await (await connection.execute(sql, params)).fetchone()
        return int(row[0]) if row else 0


async def _execute(url: str, sql: str, params: tuple[Any, ...] = ()) -> None:
    import psycopg

    from tests.infra import libpq

    async with await psycopg.AsyncConnection.connect(libpq(url), autocommit=True) as connection:
        await connection.execute(sql, params)


def report(
    results: list[Burst], requests: int, processes: int, rss: dict[str, list[float]]
) -> None:
    print(
        f"contention: {requests} concurrent requests for one slot over HTTP,"
        f" {processes} server processes per strategy, keep-alive connections"
    )
    print(
        f"  {'strategy':10} {'cap':>3} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7}"
        f" {'winners':>7} {'5xx':>4} {'wrong':>5} {'> 2 s':>5} {'CPU ms/req':>10}  answers"
    )
    for r in results:
        print(
            f"  {r.strategy:10} {r.capacity:>3} {requests / r.wall:7.0f}"
            f" {statistics.median(r.latencies) * 1000:7.0f}"
            f" {percentile(r.latencies, 0.99) * 1000:7.0f} {max(r.latencies) * 1000:7.0f}"
            f" {r.winners:>7} {r.server_errors:>4} {r.wrong:>5} {r.late:>5} {r.cpu_ms:10.1f}"
            f"  {dict(sorted(r.answers.items()))}"
        )
    for r in results:
        if r.strategy == "reckon":
            print(
                f"  reckon capacity {r.capacity}: winners {r.winners}/{r.capacity}, 5xx"
                f" {r.server_errors}, slowest {max(r.latencies):.2f} s; slowest/limit"
                f" {max(r.latencies) / DEADLINE_SECONDS:.2f} (<= {DEADLINE_SECONDS:.0f} s)"
                f"  {'OK' if r.ok else 'NOT MET'}"
            )
    for name, values in rss.items():
        print(f"  {name} peak RSS (MB): " + ", ".join(f"{v:.0f}" for v in values))
    for r in results:
        name = f"contention.{r.strategy}.c{r.capacity}"
        label = f"contention {r.strategy}, capacity {r.capacity}"
        # Goals for Reckon; the comparison strategies are reported beside it.
        goal = "<=" if r.strategy == "reckon" else None
        if goal:
            slowest = max(r.latencies)
            result(name + ".slowest", slowest, DEADLINE_SECONDS, "s", goal, f"{label}: slowest")
        result(name + ".rate", requests / r.wall, None, "req/s", None, f"{label}: req/s")
        p99 = percentile(r.latencies, 0.99) * 1000
        result(name + ".p99", p99, None, "ms", None, f"{label}: p99")
        wrong = r.wrong + r.server_errors
        result(name + ".wrong", wrong, 0, "", goal, f"{label}: wrong outcomes + 5xx")
    if "API" in rss:
        result("contention.api_rss", max(rss["API"]), None, "MB", None, "contention: API peak RSS")


async def bench(url: str, options: argparse.Namespace) -> None:
    await _execute(url, TABLES)
    results: list[Burst] = []
    rss: dict[str, list[float]] = {}
    async with api_processes(url, options.processes) as fleet:
        pids = [child.pid for child in fleet.children]
        for capacity in options.capacities:
            async with clients(fleet, 4) as setup:
                biz = await open_business(setup, resources=1, capacity=capacity)
            results.append(
                await reckon_burst(fleet.bases, pids, url, biz, capacity, options.requests)
            )
        rss["API"] = fleet.peak_rss_mb()
    async with strategy_processes(url, options.processes) as servers:
        for strategy in ("redis-lock", "cas"):
            for capacity in options.capacities:
                results.append(
                    await strategy_burst(servers, url, strategy, capacity, options.requests)
                )
        rss["comparison servers"] = [peak_rss_mb(c.pid) for c in servers.children]
    report(results, options.requests, options.processes, rss)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--capacities", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.serve:
        serve_strategies(os.environ["CMP_DATABASE_URL"], os.environ["CMP_NAMESPACE"], options.serve)
        return

    async def run() -> None:
        async with scratch_database("reckon_bench_contention") as url:
            await bench(url, options)

    uvloop.run(run())


if __name__ == "__main__":
    main()
