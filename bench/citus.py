"""Reckon on a Citus cluster, next to the same run on one PostgreSQL.

    CITUS_URL=postgresql://postgres@127.0.0.1:9700/postgres \\
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/citus.py [--bookings 400] [--workers 16] [--racers 24]
            [--citus-workers 1,2]

CITUS_URL is a superuser on the coordinator of a cluster you run (the official
citusdata/citus images, see compose.citus.yaml, or a managed service); the workers must be
registered there already (citus_add_node). For each of the two servers this creates a fresh
database (on Citus: on the coordinator and every worker, with the extension and the nodes
registered), runs `alembic upgrade head` (0031 distributes on Citus and does nothing on
PostgreSQL), then:

1. the money path end to end, through the same HTTP routes and use cases the tests use, in
   two businesses: sign-up, catalog, a sandbox checkout captured by its signed webhook, a
   paid booking cancelled and refunded through the outbox handler, commission paid out
   (run + mark paid), a Stripe day reconciled against the ledger; then the ledger balances
   and neither business sees the other's rows;
2. the booking contention race: `racers` concurrent checkouts of one slot, exactly one wins;
3. checkout throughput: `bookings` checkouts (booking, payment, ledger entry, outbox, audit
   in one transaction) from `workers` concurrent tasks over as many connections, spread over
   `businesses` businesses.

`--citus-workers 1,2` repeats the Citus run with only the first worker registered, then with
two, in fresh databases: what the second machine buys, measured.

For every server that runs on this machine (coordinator, each worker, the plain PostgreSQL)
it also prints the CPU seconds its PostgreSQL processes spent, over the whole run and over
the throughput phase, and per checkout: how the database work divides between the nodes
(bench/_pg_cpu.py says how it is counted). A node elsewhere shows n/a. The figure is the
whole server's, so give the plain run a server nothing else is using.

Redis comes from REDIS_URL (default redis://127.0.0.1:6379/0). The databases are dropped at
the end unless --keep.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import respx
from litestar.testing import AsyncTestClient
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from _pg_cpu import NOT_HERE, Server, locate, measure  # noqa: E402

from app.audit import trail as audit  # noqa: E402
from app.bookings.placing import place_booking  # noqa: E402
from app.cli.migrate import upgrade  # noqa: E402
from app.db import create_engine, session_factory  # noqa: E402
from app.edge.asgi import create_app  # noqa: E402
from app.errors import DomainError  # noqa: E402
from app.gateways.accounts import Providers  # noqa: E402
from app.gateways.reconciliation_run import reconcile_day  # noqa: E402
from app.integrations.stripe_client import StripeGateway  # noqa: E402
from app.settings import Settings, load_settings, normalise_database_url  # noqa: E402
from tests.bookings.setup import Shop as UseCaseShop  # noqa: E402
from tests.bookings.setup import make_shop  # noqa: E402
from tests.checkout.support import (  # noqa: E402
    PRICE,
    balance,
    book,
    count,
    get_booking,
    open_shop,
    run_outbox,
    unbalanced_entries,
)
from tests.checkout.test_money_path import pay_on_sandbox_page, refunds_dispatcher  # noqa: E402
from tests.factories import PASSWORD  # noqa: E402
from tests.infra import libpq, with_database  # noqa: E402
from tests.payouts.helpers import paid_stripe_payout  # noqa: E402
from tests.reconciliation.conftest import STRIPE_API, FakeStripe  # noqa: E402
from tests.reconciliation.test_runs import clean_stripe_day  # noqa: E402
from tests.reconciliation.world import DAY_START, make_world  # noqa: E402

NOW = datetime(2030, 1, 1, tzinfo=UTC)
FIRST_DAY = datetime(2030, 2, 1, 10, tzinfo=UTC)
SANDBOX = "http://127.0.0.1:8000"
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"


# -- databases ---------------------------------------------------------------------------


def create_plain_database(base: str, name: str) -> str:
    with psycopg.connect(libpq(with_database(base, "postgres")), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return with_database(base, name)


def drop_plain_database(base: str, name: str) -> None:
    with psycopg.connect(libpq(with_database(base, "postgres")), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def citus_nodes(base: str) -> tuple[tuple[str, int], list[tuple[str, int]]]:
    """(coordinator, workers) as the coordinator's maintenance database knows them."""
    with psycopg.connect(libpq(base), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT nodename, nodeport, groupid FROM pg_dist_node "
            "WHERE noderole = 'primary' AND isactive ORDER BY groupid, nodeport"
        ).fetchall()
    workers = [(r[0], r[1]) for r in rows if r[2] != 0]
    coordinator = [(r[0], r[1]) for r in rows if r[2] == 0]
    if not workers:
        raise SystemExit("CITUS_URL: no worker is registered (run citus_add_node first)")
    if not coordinator:
        host = make_url(base).host or "127.0.0.1"
        coordinator = [(host, make_url(base).port or 5432)]
    return coordinator[0], workers


def create_citus_database(base: str, name: str, worker_count: int | None = None) -> str:
    """A database on the coordinator and on every worker, the extension in each, the nodes
    registered in the new one (Citus keeps its metadata per database): all the cluster's
    workers, or the first `worker_count` of them."""
    coordinator, workers = citus_nodes(base)
    if worker_count is not None:
        if not 1 <= worker_count <= len(workers):
            raise SystemExit(f"--citus-workers {worker_count}: the cluster has {len(workers)}")
        workers = workers[:worker_count]
    with psycopg.connect(libpq(base), autocommit=True) as conn:
        conn.execute(
            "SELECT * FROM master_run_on_worker(%s, %s, %s, false)",
            (
                [w[0] for w in workers],
                [w[1] for w in workers],
                [f'CREATE DATABASE "{name}"'] * len(workers),
            ),
        )
        conn.execute(f'CREATE DATABASE "{name}"')
    url = with_database(base, name)
    with psycopg.connect(libpq(url), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION citus")
        conn.execute(
            "SELECT * FROM master_run_on_worker(%s, %s, %s, true)",
            (
                [w[0] for w in workers],
                [w[1] for w in workers],
                ["CREATE EXTENSION IF NOT EXISTS citus"] * len(workers),
            ),
        )
        conn.execute("SELECT citus_set_coordinator_host(%s, %s)", coordinator)
        for worker in workers:
            conn.execute("SELECT citus_add_node(%s, %s)", worker)
    return url


def citus_servers(url: str) -> list[Server]:
    """The coordinator and the workers this database has registered, each located."""
    with psycopg.connect(libpq(url), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT nodename, nodeport, groupid FROM pg_dist_node "
            "WHERE noderole = 'primary' AND isactive ORDER BY groupid, nodeport"
        ).fetchall()
    return [locate("worker" if g else "coordinator", url, h, p) for h, p, g in rows]


def plain_server(url: str) -> list[Server]:
    parsed = make_url(url)
    return [locate("server", url, parsed.host or "127.0.0.1", parsed.port or 5432)]


def drop_citus_database(base: str, name: str) -> None:
    with psycopg.connect(libpq(base), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(
            "SELECT * FROM run_command_on_workers(%s)",
            (f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',),
        )


# -- measuring -------------------------------------------------------------------------------


@dataclass
class Report:
    label: str
    steps: list[tuple[str, str, float]] = field(default_factory=list)
    figures: dict[str, str] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    # phase ("run", "throughput") -> server -> CPU seconds (None: not on this machine)
    cpu: dict[str, dict[str, float | None]] = field(default_factory=dict)
    checkouts: int = 0
    tenants: list[uuid.UUID] = field(default_factory=list)  # the throughput phase's

    @contextmanager
    def step(self, name: str) -> Iterator[dict[str, str]]:
        note: dict[str, str] = {"result": "ok"}
        started = time.perf_counter()
        try:
            yield note
        except Exception as exc:  # reported, then the run goes on
            note["result"] = f"FAILED: {type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
            self.failures.append(name)
        self.steps.append((name, note["result"], (time.perf_counter() - started) * 1000))


def check(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


# -- the money path --------------------------------------------------------------------------


async def money_path(
    report: Report,
    settings: Settings,
    owner: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    app = create_app(settings)
    async with AsyncTestClient(app=app) as client:
        shops = []
        for n in (1, 2):
            with report.step(f"business {n}: sign-up, catalog, providers (HTTP)") as note:
                shops.append(await open_shop(client))
                note["result"] = f"ok, tenant {shops[-1].business.tenant_id}"
        for n, shop in enumerate(shops, 1):
            with report.step(f"business {n}: sign-in by email (login_emails directory)") as note:
                token = await client.post(
                    "/api/v1/auth/token", json={"email": shop.business.email, "password": PASSWORD}
                )
                check(token.status_code == 200, token.text)
                bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}
                me = (await client.get("/api/v1/me", headers=bearer)).json()
                check(me["tenant_id"] == str(shop.business.tenant_id), f"signed in to {me}")
                note["result"] = "ok, the owner of this business"
        with report.step("business 1: add a user, change their email, sign in with it") as note:
            headers = shops[0].business.headers
            email = f"staff-{uuid.uuid4().hex[:8]}@example.com"
            created = await client.post(
                "/api/v1/users",
                headers=headers,
                json={"email": email, "password": PASSWORD, "role": "staff"},
            )
            check(created.status_code == 201, created.text)
            moved = await client.patch(
                f"/api/v1/users/{created.json()['id']}",
                headers=headers,
                json={"email": "moved-" + email},
            )
            check(moved.status_code == 200, moved.text)
            codes = []
            for address in (email, "moved-" + email):
                signed = await client.post(
                    "/api/v1/auth/token", json={"email": address, "password": PASSWORD}
                )
                codes.append(signed.status_code)
            check(codes == [401, 200], f"old, new email: {codes}")
            note["result"] = "ok, the old email refused (401), the new one signs in"
        for n, shop in enumerate(shops, 1):
            tenant = shop.business.tenant_id
            with report.step(f"business {n}: checkout + capture by signed webhook") as note:
                placed = await book(client, shop)
                await pay_on_sandbox_page(client, placed["payment"]["checkout_url"])
                booking = await get_booking(client, shop, placed["id"])
                check(booking["status"] == "confirmed", f"booking is {booking['status']}")
                captured = await balance(owner, tenant, "clearing:sandbox")
                check(captured == PRICE, f"clearing:sandbox = {captured}")
                note["result"] = f"ok, confirmed, clearing:sandbox = {captured}"
            with report.step(f"business {n}: cancel a paid booking, refund via outbox") as note:
                paid = await book(client, shop, days_ahead=5)
                await pay_on_sandbox_page(client, paid["payment"]["checkout_url"])
                cancelled = await client.post(
                    f"/api/v1/bookings/{paid['id']}/cancel",
                    headers=shop.business.headers,
                    json={},
                )
                check(cancelled.status_code == 200, cancelled.text)
                handled = await run_outbox(
                    owner, sessions, settings, refunds_dispatcher(), "payment.refund"
                )
                after = await get_booking(client, shop, paid["id"])
                check(after["payment"]["status"] == "refunded", str(after["payment"]))
                note["result"] = f"ok, {handled} refund handled, payment refunded"
        for n, shop in enumerate(shops, 1):
            tenant = shop.business.tenant_id
            world = await make_world(owner, tenant_id=tenant, resources=1)
            with report.step(f"business {n}: commission, payout run, mark paid") as note:
                payout = await paid_stripe_payout(
                    sessions, world, amount=4_200, transfer_id=f"tr_{n}"
                )
                check(payout.status == "paid", payout.status)
                note["result"] = f"ok, payout {payout.amount_minor} {payout.currency} paid"
            with report.step(f"business {n}: reconcile a Stripe day") as note:
                fake = FakeStripe()
                await clean_stripe_day(owner, sessions, world, fake)
                async with httpx.AsyncClient(timeout=5.0) as http:
                    with respx.mock(assert_all_called=False) as router:
                        router.get(f"{STRIPE_API}/v1/balance_transactions").mock(
                            side_effect=fake.respond
                        )
                        providers = Providers(
                            stripe=StripeGateway("sk_test_123", http, api_base=STRIPE_API)
                        )
                        run = await reconcile_day(
                            sessions, tenant, "stripe", DAY_START.date(), providers
                        )
                check(run.run.status == "completed", run.run.status)
                note["result"] = (
                    f"ok, {run.run.matched} matched, {run.run.discrepancies} discrepancies "
                    f"({run.run.provider_records} provider records)"
                )
        with report.step("ledger: every entry balances; businesses see only their rows") as note:
            unbalanced = await unbalanced_entries(owner)
            check(unbalanced == 0, f"{unbalanced} unbalanced entries")
            entries = await count(owner, "SELECT count(*) FROM journal_entries")
            seen = []
            for shop in shops:
                listed = await client.get(
                    "/api/v1/bookings",
                    headers=shop.business.headers,
                    params={"from": "2020-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"},
                )
                check(listed.status_code == 200, listed.text)
                tenants = {b.get("tenant_id", str(shop.business.tenant_id)) for b in listed.json()}
                check(tenants == {str(shop.business.tenant_id)}, f"saw {tenants}")
                seen.append(len(listed.json()))
            note["result"] = f"ok, {entries} entries balanced; bookings seen per business {seen}"


# -- contention and throughput -------------------------------------------------------------


async def checkout(
    sessions: async_sessionmaker[AsyncSession], shop: UseCaseShop, start: datetime, **kw: Any
) -> bool:
    request = shop.request(start, provider="sandbox", **kw)
    async with sessions() as session:
        placed = await place_booking(
            session, shop.tenant_id, audit.SYSTEM, request, NOW, sandbox_base_url=SANDBOX
        )
    return bool(placed.payments)


async def race(
    report: Report, owner: AsyncEngine, sessions: async_sessionmaker[AsyncSession], racers: int
) -> None:
    shop = await make_shop(owner, hours=(datetime.min.time(), datetime.max.time()))
    start = FIRST_DAY + timedelta(days=200)
    with report.step(f"contention: {racers} concurrent checkouts of one slot") as note:

        async def one() -> str:
            try:
                await checkout(sessions, shop, start)
                return "won"
            except DomainError as exc:
                return type(exc).__name__

        outcomes = await asyncio.gather(*(one() for _ in range(racers)))
        won = outcomes.count("won")
        held = await count(
            owner,
            "SELECT count(*) FROM bookings WHERE tenant_id = :t AND status <> 'expired'",
            t=shop.tenant_id,
        )
        check(won == 1 and held == 1, f"{won} won, {held} stored: {outcomes}")
        losers = sorted({o for o in outcomes if o != "won"})
        note["result"] = f"ok, 1 won, {racers - 1} refused ({', '.join(losers)})"


async def throughput(
    report: Report,
    owner: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    servers: list[Server],
    total: int,
    workers: int,
    businesses: int,
) -> None:
    resources = 16
    shops = [
        await make_shop(
            owner, resources=resources, hours=(datetime.min.time(), datetime.max.time())
        )
        for _ in range(businesses)
    ]
    for shop in shops:  # warm-up: plans, pools, caches
        await checkout(sessions, shop, FIRST_DAY - timedelta(days=30), resource_id=shop.resource_id)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(total):
        queue.put_nowait(n)
    latencies: list[float] = []

    async def work() -> None:
        while not queue.empty():
            n = queue.get_nowait()
            shop = shops[n % businesses]
            k = n // businesses
            start = FIRST_DAY + timedelta(days=k // resources)
            began = time.perf_counter()
            await checkout(sessions, shop, start, resource_id=shop.resource_ids[k % resources])
            latencies.append(time.perf_counter() - began)

    with report.step(
        f"throughput: {total} checkouts, {workers} workers, {businesses} businesses"
    ) as note:
        began = time.perf_counter()
        with measure(servers) as used:
            await asyncio.gather(*(work() for _ in range(workers)))
        elapsed = time.perf_counter() - began
        report.cpu["throughput"], report.checkouts = used, total
        report.tenants = [shop.tenant_id for shop in shops]
        latencies.sort()
        rate = total / elapsed
        p50 = latencies[len(latencies) // 2] * 1000
        p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] * 1000
        report.figures["checkouts/s"] = f"{rate:.0f}"
        report.figures["p50 ms"] = f"{p50:.1f}"
        report.figures["p99 ms"] = f"{p99:.1f}"
        unbalanced = await unbalanced_entries(owner)
        check(unbalanced == 0, f"{unbalanced} unbalanced entries")
        note["result"] = f"ok, {rate:.0f} checkouts/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms"


# -- one server ------------------------------------------------------------------------------


async def run_on(
    label: str, url: str, servers: list[Server], redis_url: str, args: argparse.Namespace
) -> Report:
    report = Report(label)
    settings = load_settings(
        url,
        redis_url,
        environment="test",
        log_json=True,
        redis_namespace=f"reckon-citus-bench-{uuid.uuid4().hex[:8]}",
        public_rate_limit_per_minute=100_000,
        stripe_webhook_secret="whsec_reckon_bench_secret",
        kashier_api_key="kashier-bench-key",
        checkout_wait_seconds=0.0,
    )
    pool = max(args.workers, args.racers) + 4
    owner = create_engine(settings.database_url, pool_size=4, max_overflow=4)
    app_engine = create_engine(settings.runtime_database_url, pool_size=pool, max_overflow=8)
    sessions = session_factory(app_engine)
    try:
        with measure(servers) as used:
            await money_path(report, settings, owner, sessions)
            await race(report, owner, sessions, args.racers)
            await throughput(
                report, owner, sessions, servers, args.bookings, args.workers, args.businesses
            )
        report.cpu["run"] = used
    finally:
        await app_engine.dispose()
        await owner.dispose()
    return report


def describe_cluster(url: str) -> str:
    with psycopg.connect(libpq(url), autocommit=True) as conn:
        version = conn.execute("SELECT citus_version()").fetchone()
        nodes = conn.execute(
            "SELECT count(*) FILTER (WHERE groupid <> 0) FROM pg_dist_node"
        ).fetchone()
        tables = conn.execute(
            "SELECT count(*) FILTER (WHERE partmethod = 'h'), "
            "count(*) FILTER (WHERE partmethod = 'n'), "
            "count(DISTINCT colocationid) FILTER (WHERE partmethod = 'h') FROM pg_dist_partition"
        ).fetchone()
        shards = conn.execute(
            "SELECT count(*) FROM pg_dist_shard s JOIN pg_dist_partition p USING (logicalrelid) "
            "WHERE p.partmethod = 'h'"
        ).fetchone()
    assert version and nodes and tables and shards
    workers = f"{nodes[0]} worker" + ("s" if nodes[0] != 1 else "")
    return (
        f"{str(version[0]).split(' on ')[0]}, {workers}; {tables[0]} tables "
        f"distributed on tenant_id in {tables[2]} colocation group, {tables[1]} reference "
        f"tables, {shards[0]} shards"
    )


def businesses_per_worker(url: str, only: list[uuid.UUID] | None = None) -> str:
    """Where each business's shard group landed: what each worker holds (of `only`)."""
    with psycopg.connect(libpq(url), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT n.nodename || ':' || n.nodeport, count(*) FROM tenants t "
            "JOIN pg_dist_placement p "
            "  ON p.shardid = get_shard_id_for_distribution_column('bookings', t.id) "
            "JOIN pg_dist_node n ON n.groupid = p.groupid "
            "WHERE %(only)s::uuid[] IS NULL OR t.id = ANY(%(only)s::uuid[]) "
            "GROUP BY 1 ORDER BY 1",
            {"only": only},
        ).fetchall()
    return ", ".join(f"{count} on {node}" for node, count in rows)


def print_reports(reports: list[Report]) -> None:
    for report in reports:
        print(f"\n== {report.label}")
        for name, result, ms in report.steps:
            print(f"  {name:<66} {ms:8.0f} ms  {result}")
    print("\n== side by side")
    keys = ["checkouts/s", "p50 ms", "p99 ms"]
    print(f"  {'':<30}" + "".join(f"{k:>14}" for k in keys))
    for report in reports:
        row = "".join(f"{report.figures.get(k, '-'):>14}" for k in keys)
        print(f"  {report.label[:30]:<30}{row}")
    print_cpu(reports)


def print_cpu(reports: list[Report]) -> None:
    """Each server's CPU seconds over the whole run and the throughput phase, and per
    checkout in that phase: how the database work divides between the nodes."""
    print("\n== database CPU per server (its PostgreSQL processes, from /proc)")
    heads = ["run s", "throughput s", "ms/checkout"]
    print(f"  {'':<58}" + "".join(f"{h:>14}" for h in heads))
    for report in reports:
        print(f"  {report.label.split(';')[0]}")
        run, phase = report.cpu.get("run", {}), report.cpu.get("throughput", {})
        for server in phase or run:
            whole, used = run.get(server), phase.get(server)
            if whole is None and used is None:
                print(f"    {server:<56}{NOT_HERE:>42}")
                continue
            per = used * 1000 / report.checkouts if used is not None and report.checkouts else None
            cells = [
                "-" if whole is None else f"{whole:.1f}",
                "-" if used is None else f"{used:.1f}",
                "-" if per is None else f"{per:.1f}",
            ]
            print(f"    {server:<56}" + "".join(f"{c:>14}" for c in cells))


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bookings", type=int, default=400)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--businesses", type=int, default=8)
    parser.add_argument("--racers", type=int, default=24)
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    parser.add_argument("--citus-only", action="store_true")
    parser.add_argument(
        "--citus-workers",
        default="",
        help="comma-separated worker counts, one Citus run each on the first N workers "
        "(e.g. 1,2: what the second machine buys); default: one run on all of them",
    )
    args = parser.parse_args()
    citus = os.environ.get("CITUS_URL", "")
    if not citus:
        print("CITUS_URL is not set: the coordinator of a Citus cluster, as a superuser")
        return 2
    citus = normalise_database_url(citus)
    plain = normalise_database_url(os.environ.get("DATABASE_URL") or DEFAULT_PG)
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    name = f"reckon_citus_bench_{uuid.uuid4().hex[:8]}"
    reports = []

    counts: list[int | None] = [int(c) for c in args.citus_workers.split(",") if c.strip()]
    if not counts:
        counts = [None]  # every registered worker
    for worker_count in counts:
        started = time.perf_counter()
        url = create_citus_database(citus, name, worker_count)
        try:
            upgrade(url)
            migrated = time.perf_counter() - started
            cluster = describe_cluster(url)
            report = await run_on("Citus: " + cluster, url, citus_servers(url), redis_url, args)
            report.steps.insert(
                0, ("create database on every node + migrate + distribute", "ok", migrated * 1000)
            )
            with report.step("placement: businesses per worker") as note:
                note["result"] = (
                    f"{businesses_per_worker(url)}; of the throughput phase's "
                    f"{len(report.tenants)}: {businesses_per_worker(url, report.tenants)}"
                )
            reports.append(report)
        finally:
            if not args.keep:
                drop_citus_database(citus, name)
    if not args.citus_only:
        started = time.perf_counter()
        url = create_plain_database(plain, name)
        try:
            upgrade(url)
            migrated = time.perf_counter() - started
            report = await run_on(
                "PostgreSQL (one server)", url, plain_server(url), redis_url, args
            )
            report.steps.insert(0, ("create database + migrate", "ok", migrated * 1000))
            reports.append(report)
        finally:
            if not args.keep:
                drop_plain_database(plain, name)
    print_reports(reports)
    failed = [f"{r.label}: {f}" for r in reports for f in r.failures]
    if failed:
        print("\nFAILED:\n  " + "\n  ".join(failed))
        return 1
    print("\nall steps passed on both")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
