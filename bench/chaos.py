"""Chaos harness (issue 17): clients book, pay, cancel and refund over HTTP while the API and
the worker are SIGKILLed at random moments, PostgreSQL is restarted (crash stop) and Redis is
stopped for a while; at the end nothing is lost, duplicated or left undone, and the books
balance.

    .venv/bin/python bench/chaos.py [--bookings 200] [--clients 8] [--kills 10]
        [--pg-restarts 1] [--redis-outages 1] [--redis-outage-seconds 30] [--seed 1]

Starts its own throwaway PostgreSQL cluster (initdb into a temporary directory, a free port,
migrated; the machine's server is never touched) and its own redis-server, then
`python -m app.cli.main serve --port <free>` and `... worker` against them. Every provider and
notification API base points at a loopback sink that answers like the provider and records
each call by its idempotency key (WhatsApp has none: the message's recipient, template and
parameters stand in for it); a key called twice is a duplicate effect. Every POST carries an
Idempotency-Key and is retried with the same key until it gets a definite answer: 2xx (303
from the sandbox page), or a 4xx other than 409 idempotency_key_in_progress / contention and
429. A process that exits on its own is restarted (as a supervisor would) and counted. Exit
status 0 when every check holds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT
from chaos_sink import Sink

from app.cli.migrate import upgrade
from tests.resilience.services import ThrowawayPostgres, ThrowawayRedis

TZ = ZoneInfo("Africa/Cairo")
PRICE = 20_000
RESOURCES = 10
FIRST_HOUR, HOURS_PER_DAY = 8, 12  # slots 08:00..19:00 on 08:00-20:00 working hours
RETRYABLE_CONFLICTS = {"idempotency_key_in_progress", "contention"}
REQUEST_DEADLINE = 120.0  # per request, across every retry: past it the key has no answer
READY_TIMEOUT = 60.0
DRAIN_TIMEOUT = 90.0  # a killed worker's leases run out after 30 s


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Processes:
    """The API and the worker, each in its own process group, logs in `logs`."""

    def __init__(self, env: dict[str, str], port: int, logs: Path) -> None:
        self.env, self.port, self.logs = env, port, logs
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.exits: dict[str, int] = {"api": 0, "worker": 0}  # exited on their own
        self.busy = asyncio.Lock()  # chaos and the supervisor take turns
        self.supervised = False
        self.commands = {
            "api": [sys.executable, "-m", "app.cli.main", "serve", "--port", str(port)],
            "worker": [sys.executable, "-m", "app.cli.main", "worker"],
        }

    def start(self, role: str) -> None:
        with (self.logs / f"{role}.log").open("ab") as out:
            self.children[role] = subprocess.Popen(
                self.commands[role],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self, role: str) -> None:
        child = self.children[role]
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
        child.wait()

    def alive(self, role: str) -> bool:
        return role in self.children and self.children[role].poll() is None

    async def wait_ready(self, *, require_ready: bool = True) -> None:
        """Until /health/ready answers 200 (or, during an outage, /health/live does)."""
        deadline = time.monotonic() + READY_TIMEOUT
        path = "/health/ready" if require_ready else "/health/live"
        async with httpx.AsyncClient(timeout=2) as client:
            while time.monotonic() < deadline:
                if not self.alive("api"):
                    if not self.supervised:
                        raise RuntimeError(f"the API exited:\n{self.tail('api')}")
                    await asyncio.sleep(0.2)  # the supervisor restarts it
                    continue
                try:
                    response = await client.get(f"http://127.0.0.1:{self.port}{path}")
                    if response.status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError(f"/health/ready did not answer:\n{self.tail('api')}")

    def tail(self, role: str) -> str:
        path = self.logs / f"{role}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def stop_all(self) -> None:
        for role in list(self.children):
            self.kill(role)

    async def supervise(self, done: asyncio.Event) -> None:
        """Restart a process that exited on its own (as systemd or Kubernetes would)."""
        self.supervised = True
        while not done.is_set():
            await asyncio.sleep(0.5)
            async with self.busy:
                for role in ("api", "worker"):
                    if role in self.children and not self.alive(role):
                        self.exits[role] += 1
                        self.start(role)


@dataclass
class Tally:
    requests: int = 0
    retries: int = 0
    undefined: list[str] = field(default_factory=list)  # keys without a definite answer
    created: dict[str, str] = field(default_factory=dict)  # booking key -> id of its 201
    other_answers: dict[str, int] = field(default_factory=dict)  # "<status> <type>" -> count
    paid: set[str] = field(default_factory=set)  # booking ids whose pay got 2xx/303
    cancelled: set[str] = field(default_factory=set)
    refunded: set[str] = field(default_factory=set)
    kills: dict[str, int] = field(default_factory=lambda: {"api": 0, "worker": 0})
    kills_during_traffic: int = 0
    pg_restarts: int = 0
    pg_down_seconds: float = 0.0
    redis_outages: int = 0
    redis_down_seconds: float = 0.0
    unavailable_answers: int = 0  # 503s seen (retried)
    drain_seconds: float = 0.0


class Client:
    def __init__(self, http: httpx.AsyncClient, headers: dict[str, str], tally: Tally) -> None:
        self.http, self.headers, self.tally = http, headers, tally

    async def send(
        self, method: str, url: str, key: str | None, body: Any = None
    ) -> httpx.Response | None:
        """The request, repeated with the same key until its answer is definite; None if the
        deadline passes first."""
        headers = dict(self.headers)
        if key is not None:
            headers["Idempotency-Key"] = key
        deadline = time.monotonic() + REQUEST_DEADLINE
        while True:
            self.tally.requests += 1
            try:
                response = await self.http.request(method, url, json=body, headers=headers)
                if not _retryable(response):
                    return response
                self.tally.unavailable_answers += response.status_code == 503
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.tally.undefined.append(key or f"{method} {url}")
                return None
            self.tally.retries += 1
            await asyncio.sleep(random.uniform(0.05, 0.25))


def _retryable(response: httpx.Response) -> bool:
    if response.status_code >= 500 or response.status_code == 429:
        return True
    if response.status_code == 409:
        kind = response.json().get("type", "") if response.content else ""
        return str(kind).rsplit("/", 1)[-1] in RETRYABLE_CONFLICTS
    return False


def _answer(response: httpx.Response) -> str:
    kind = ""
    if response.headers.get("content-type", "").endswith("json"):
        kind = str(response.json().get("type", "")).rsplit("/", 1)[-1]
    return f"{response.status_code} {kind}".strip()


async def open_business(client: Client) -> dict[str, Any]:
    """Sign up, a branch, RESOURCES capacity-1 resources and one time-slot service on them."""
    slug = f"chaos-{uuid.uuid4().hex[:8]}"
    signup = {
        "business_name": "Chaos Salon",
        "slug": slug,
        "email": f"owner@{slug}.example.com",
        "password": "correct horse battery",
        "currency": "EGP",
        "timezone": "Africa/Cairo",
    }
    data = await _created(client, "/api/v1/signup", signup)
    client.headers["Authorization"] = f"Bearer {data['access_token']}"
    await _enable_whatsapp(client)
    branch = await _created(
        client, "/api/v1/branches", {"name": "Main", "timezone": "Africa/Cairo"}
    )
    resource_ids = []
    for number in range(RESOURCES):
        body = {"name": f"Chair {number}", "kind": "staff", "capacity": 1}
        resource = await _created(
            client, "/api/v1/resources", {**body, "branch_ids": [branch["id"]]}
        )
        weekly = [
            {"weekday": day, "start": "08:00", "end": "20:00", "branch_id": branch["id"]}
            for day in range(7)
        ]
        schedule = await client.http.put(
            f"/api/v1/resources/{resource['id']}/schedule",
            headers=client.headers,
            json={"weekly": weekly, "overrides": []},
        )
        schedule.raise_for_status()
        resource_ids.append(resource["id"])
    service = {
        "name": "Haircut",
        "policy": "time_slot",
        "pricing": "fixed",
        "duration_minutes": 60,
        "slot_step_minutes": 60,
        "price": {"amount_minor": PRICE, "currency": "EGP"},
        "resource_ids": resource_ids,
        "cancellation_policy": {"tiers": [{"hours_before": 24, "refund_bps": 10_000}]},
    }
    created = await _created(client, "/api/v1/services", service)
    return {"branch_id": branch["id"], "service_id": created["id"], "resource_ids": resource_ids}


async def _enable_whatsapp(client: Client) -> None:
    """Booking messages go out over WhatsApp, i.e. to the sink (the worker's API base)."""
    current = await client.http.get("/api/v1/settings/providers", headers=client.headers)
    current.raise_for_status()
    enabled = sorted({*current.json()["enabled"], "whatsapp"})
    updated = await client.http.put(
        "/api/v1/settings/providers", headers=client.headers, json={"enabled": enabled}
    )
    if updated.status_code != 200:
        raise RuntimeError(f"enabling whatsapp: {updated.status_code} {updated.text}")


async def _created(client: Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.http.post(path, json=body, headers=client.headers)
    if response.status_code != 201:
        raise RuntimeError(f"{path}: {response.status_code} {response.text}")
    return dict(response.json())


def booking_body(shop: dict[str, Any], n: int) -> dict[str, Any]:
    """Booking n gets a slot of its own: no two keys compete for a resource."""
    per_resource = n // RESOURCES
    day = datetime.now(TZ).date() + timedelta(days=2 + per_resource // HOURS_PER_DAY)
    hour = FIRST_HOUR + per_resource % HOURS_PER_DAY
    start = datetime(day.year, day.month, day.day, hour, tzinfo=TZ)
    return {
        "service_id": shop["service_id"],
        "branch_id": shop["branch_id"],
        "resource_id": shop["resource_ids"][n % RESOURCES],
        "start": start.isoformat(),
        # One phone per customer: two customers' identical messages would read as one sent twice.
        "customer": {"name": f"Customer {n}", "phone": f"+2010{n:08d}"},
        "payment": {"provider": "sandbox"},
    }


async def checkout_url(client: Client, booking: dict[str, Any]) -> str | None:
    """The replay of a booking whose process died before the URL was added holds none: poll."""
    deadline = time.monotonic() + READY_TIMEOUT
    while not booking["payment"].get("checkout_url"):
        if time.monotonic() > deadline:
            return None
        await asyncio.sleep(0.2)
        response = await client.send("GET", f"/api/v1/bookings/{booking['id']}", None)
        if response is None or response.status_code != 200:
            return None
        booking = response.json()
    return str(booking["payment"]["checkout_url"])


async def run_booking(client: Client, shop: dict[str, Any], run: str, n: int, plan: str) -> None:
    tally, key = client.tally, f"{run}-book-{n}"
    response = await client.send("POST", "/api/v1/bookings", key, booking_body(shop, n))
    if response is None or response.status_code != 201:
        if response is not None:
            answer = _answer(response)
            tally.other_answers[answer] = tally.other_answers.get(answer, 0) + 1
        return
    booking = response.json()
    booking_id = str(booking["id"])
    tally.created[key] = booking_id
    if plan.startswith("pay"):
        url = await checkout_url(client, booking)
        if url is None:
            tally.undefined.append(f"{key} (no checkout_url)")
            return
        path = "/" + url.split("://", 1)[1].split("/", 1)[1] + "/pay"
        paid = await client.send("POST", path, f"{run}-pay-{n}")
        if paid is None or paid.status_code not in (200, 201, 303):
            return
        tally.paid.add(booking_id)
    if plan.endswith("cancel"):
        done = await client.send("POST", f"/api/v1/bookings/{booking_id}/cancel", f"{run}-c-{n}")
        if done is not None and done.status_code == 200:
            tally.cancelled.add(booking_id)
    elif plan.endswith("refund"):
        body = {"amount_minor": PRICE // 2, "reason": "chaos"}
        url = f"/api/v1/bookings/{booking_id}/refunds"
        done = await client.send("POST", url, f"{run}-r-{n}", body)
        if done is not None and done.status_code == 201:
            tally.refunded.add(booking_id)


def plans(rng: random.Random, count: int) -> list[str]:
    choices = ["pay", "pay", "pay+cancel", "pay+refund", "cancel", "none"]
    return [rng.choice(choices) for _ in range(count)]


async def chaos(
    processes: Processes,
    rng: random.Random,
    kills: int,
    tally: Tally,
    traffic: asyncio.Event,
    kill_gap: float = 1.0,
) -> None:
    """SIGKILL the API or the worker at random moments, restarting it each time."""
    for _ in range(kills):
        await asyncio.sleep(rng.uniform(0.3, 1.5) * kill_gap)
        role = rng.choice(["api", "worker"])
        async with processes.busy:
            processes.kill(role)
            tally.kills[role] += 1
            tally.kills_during_traffic += not traffic.is_set()
            await asyncio.sleep(rng.uniform(0.0, 0.5))
            processes.start(role)
        if role == "api":
            await processes.wait_ready(require_ready=False)


async def restart_postgres(
    postgres: ThrowawayPostgres,
    rng: random.Random,
    count: int,
    tally: Tally,
    gap: float,
    traffic: asyncio.Event,
) -> None:
    """Crash-stop PostgreSQL (pg_ctl -m immediate) and start it again, up to `count` times
    while the clients run."""
    for _ in range(count):
        await _pause(rng.uniform(gap / 2, gap * 1.5), traffic)
        if traffic.is_set():
            return
        began = time.monotonic()
        await asyncio.to_thread(postgres.stop, "immediate")
        await asyncio.sleep(rng.uniform(1.0, 3.0))
        await asyncio.to_thread(postgres.start)
        tally.pg_restarts += 1
        tally.pg_down_seconds += time.monotonic() - began


async def stop_redis(
    redis: ThrowawayRedis,
    rng: random.Random,
    count: int,
    seconds: float,
    tally: Tally,
    gap: float,
    traffic: asyncio.Event,
) -> None:
    """Stop Redis for `seconds`, up to `count` times while the clients run (a fresh, empty
    server comes back)."""
    for _ in range(count):
        await _pause(rng.uniform(gap / 2, gap * 1.5), traffic)
        if traffic.is_set():
            return
        began = time.monotonic()
        await asyncio.to_thread(redis.stop)
        await asyncio.sleep(seconds)
        await asyncio.to_thread(redis.start)
        tally.redis_outages += 1
        tally.redis_down_seconds += time.monotonic() - began


async def _pause(seconds: float, traffic: asyncio.Event) -> None:
    """Sleep, cut short when the clients are done."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(traffic.wait(), seconds)


async def drain(conninfo: str) -> tuple[int, int]:
    """Wait until no outbox row or delivery is pending and due; returns (pending due, pending
    later) as last seen."""
    due_sql = (
        "SELECT (SELECT count(*) FROM outbox WHERE status = 'pending' AND available_at <= now())"
        " + (SELECT count(*) FROM outbox_deliveries WHERE status = 'pending'"
        " AND available_at <= now()),"
        " (SELECT count(*) FROM outbox WHERE status = 'pending' AND available_at > now())"
    )
    deadline = time.monotonic() + DRAIN_TIMEOUT
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as connection:
        while True:
            row = await (await connection.execute(due_sql)).fetchone()
            assert row is not None
            due, later = int(row[0]), int(row[1])
            if due == 0 or time.monotonic() > deadline:
                return due, later
            await asyncio.sleep(0.5)


async def verify(conninfo: str, tally: Tally, drained: tuple[int, int]) -> list[tuple[str, bool]]:
    ids = list(tally.created.values())
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as connection:

        async def scalar(sql: str, *params: Any) -> int:
            row = await (await connection.execute(sql, params)).fetchone()
            return int(row[0]) if row and row[0] is not None else 0

        lost = len(ids) - await scalar("SELECT count(*) FROM bookings WHERE id = ANY(%s)", ids)
        bookings = await scalar("SELECT count(*) FROM bookings")
        rows = await (
            await connection.execute(
                "SELECT b.id::text, b.status, p.status, p.captured_minor, p.amount_minor "
                "FROM bookings b JOIN payments p ON p.tenant_id = b.tenant_id "
                "AND p.booking_id = b.id WHERE b.id = ANY(%s)",
                ([uuid.UUID(i) for i in tally.paid],),
            )
        ).fetchall()
        unbalanced = await scalar(
            "SELECT count(*) FROM (SELECT currency FROM postings GROUP BY currency "
            "HAVING sum(amount_minor) <> 0) x"
        )
        dead = await scalar(
            "SELECT (SELECT count(*) FROM outbox WHERE status = 'dead')"
            " + (SELECT count(*) FROM outbox_deliveries WHERE status = 'dead')"
        )
    unpaid = [
        booking_id
        for booking_id, status, payment, captured, amount in rows
        if not (status == "confirmed" or (status == "cancelled" and booking_id in tally.cancelled))
        or payment not in ("succeeded", "partially_refunded", "refunded")
        or captured != amount
    ]
    unpaid += [i for i in tally.paid if i not in {r[0] for r in rows}]
    return [
        (f"responses lost: {lost} (every 201 is a booking with its id)", lost == 0),
        (
            f"duplicate bookings: {bookings - len(tally.created)} "
            f"({bookings} bookings, {len(tally.created)} keys answered 201, "
            f"{len(set(ids))} distinct ids)",
            bookings == len(tally.created) == len(set(ids)),
        ),
        (f"keys without a definite answer: {len(tally.undefined)}", not tally.undefined),
        (
            f"paid bookings not confirmed+captured: {len(unpaid)} of {len(tally.paid)}",
            not unpaid,
        ),
        (f"currencies whose postings do not sum to zero: {unbalanced}", unbalanced == 0),
        (f"outbox pending and due after drain: {drained[0]}", drained[0] == 0),
        (f"outbox dead rows/deliveries: {dead}", dead == 0),
    ]


async def traffic(
    processes: Processes,
    servers: tuple[ThrowawayPostgres, ThrowawayRedis],
    shop: dict[str, Any],
    args: argparse.Namespace,
    tally: Tally,
    token: str,
) -> float:
    """Clients and chaos together; returns the clients' wall time."""
    postgres, redis = servers
    rng = random.Random(args.seed)
    queue: asyncio.Queue[tuple[int, str]] = asyncio.Queue()
    for n, plan in enumerate(plans(rng, args.bookings)):
        queue.put_nowait((n, plan))
    run = uuid.uuid4().hex[:8]
    done = asyncio.Event()
    base = f"http://127.0.0.1:{processes.port}"

    async def client_task() -> None:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            client = Client(http, {"Authorization": f"Bearer {token}"}, tally)
            while not queue.empty():
                n, plan = queue.get_nowait()
                await run_booking(client, shop, run, n, plan)

    began = time.monotonic()
    gap = args.outage_gap
    disruptions = [
        chaos(processes, random.Random(args.seed + 1), args.kills, tally, done, args.kill_gap),
        restart_postgres(
            postgres, random.Random(args.seed + 2), args.pg_restarts, tally, gap, done
        ),
        stop_redis(
            redis,
            random.Random(args.seed + 3),
            args.redis_outages,
            args.redis_outage_seconds,
            tally,
            gap,
            done,
        ),
    ]
    chaos_tasks = [asyncio.create_task(job) for job in disruptions]
    await asyncio.gather(*(client_task() for _ in range(args.clients)))
    elapsed = time.monotonic() - began
    done.set()
    await asyncio.gather(*chaos_tasks)
    return elapsed


async def main_async(args: argparse.Namespace) -> int:
    tally = Tally()
    sink = Sink()
    sink.start()
    postgres, redis = ThrowawayPostgres(), ThrowawayRedis()
    try:
        await asyncio.to_thread(postgres.start)
        await asyncio.to_thread(upgrade, postgres.url)
        redis.start()
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TEST_", "SMTP_"))}
        for name in ("APP_DATABASE_URL", "OTEL_EXPORTER_OTLP_ENDPOINT"):
            env.pop(name, None)
        env.update(
            DATABASE_URL=postgres.url,
            REDIS_URL=redis.url,
            REDIS_NAMESPACE=f"reckon-chaos-{uuid.uuid4().hex[:8]}",
            RECKON_ENV="development",
            LOG_JSON="false",
            PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
            PUBLIC_RATE_LIMIT_PER_MINUTE="100000",
            # Nothing leaves the machine: every provider's API is the sink.
            STRIPE_API_BASE=sink.url,
            KASHIER_API_BASE=sink.url,
            GOOGLE_CALENDAR_API_BASE=sink.url,
            GOOGLE_TOKEN_URL=f"{sink.url}/token",
            WHATSAPP_API_BASE=sink.url,
            WHATSAPP_ACCESS_TOKEN="chaos-token",
            WHATSAPP_PHONE_NUMBER_ID="100200300",
        )
        with tempfile.TemporaryDirectory(prefix="reckon-chaos-") as scratch:
            logs = Path(args.logs or scratch)
            await asyncio.to_thread(logs.mkdir, parents=True, exist_ok=True)
            processes = Processes(env, port, logs)
            try:
                checks, elapsed = await _run(processes, (postgres, redis), sink, args, tally)
            except BaseException:
                print(f"--- api log ---\n{processes.tail('api')}\n--- worker log ---")
                print(processes.tail("worker"))
                raise
            finally:
                processes.stop_all()
        _report(args, tally, processes, sink, checks, elapsed)
    finally:
        redis.stop()
        await asyncio.to_thread(postgres.destroy)
        sink.stop()
    return 0 if all(ok for _, ok in checks) else 1


async def _run(
    processes: Processes,
    servers: tuple[ThrowawayPostgres, ThrowawayRedis],
    sink: Sink,
    args: argparse.Namespace,
    tally: Tally,
) -> tuple[list[tuple[str, bool]], float]:
    processes.start("api")
    processes.start("worker")
    await processes.wait_ready()
    base = f"http://127.0.0.1:{processes.port}"
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        owner = Client(http, {}, Tally())
        shop = await open_business(owner)
        token = owner.headers["Authorization"].removeprefix("Bearer ")
    finished = asyncio.Event()
    supervisor = asyncio.create_task(processes.supervise(finished))
    try:
        elapsed = await traffic(processes, servers, shop, args, tally, token)
        await processes.wait_ready()
        began = time.monotonic()
        drained = await drain(servers[0].conninfo)
        tally.drain_seconds = time.monotonic() - began
    finally:
        finished.set()
        await supervisor
    checks = await verify(servers[0].conninfo, tally, drained)
    duplicates = sink.duplicates
    for key in list(duplicates)[:10]:  # what was sent twice, and when: for on-call to follow
        print(f"  duplicate {key}: " + "; ".join(sink.seen.get(key, [])), flush=True)
    checks.append(
        (
            f"duplicate effects: {len(duplicates)} ({sum(sink.calls.values())} provider and "
            f"notification calls, {len(sink.calls)} distinct effects, {sink.replays} retries "
            "under an idempotency key answered as before)",
            not duplicates,
        )
    )
    return checks, elapsed


def _report(
    args: argparse.Namespace,
    tally: Tally,
    processes: Processes,
    sink: Sink,
    checks: list[tuple[str, bool]],
    elapsed: float,
) -> None:
    others = ", ".join(f"{k}: {v}" for k, v in sorted(tally.other_answers.items())) or "none"
    rows = [
        ("keys (bookings)", f"{args.bookings}"),
        ("clients", f"{args.clients}"),
        ("201 created", f"{len(tally.created)}"),
        ("other definite answers", others),
        (
            "paid / cancelled / refunded",
            f"{len(tally.paid)} / {len(tally.cancelled)} / {len(tally.refunded)}",
        ),
        ("requests (incl. retries)", f"{tally.requests}"),
        ("retries", f"{tally.retries}"),
        ("definite answers/s", f"{(tally.requests - tally.retries) / elapsed:.1f}"),
        ("kills api / worker", f"{tally.kills['api']} / {tally.kills['worker']}"),
        ("kills during traffic", f"{tally.kills_during_traffic}"),
        (
            "postgres restarts (s down)",
            f"{tally.pg_restarts} ({tally.pg_down_seconds:.1f})",
        ),
        (
            "redis outages (s down)",
            f"{tally.redis_outages} ({tally.redis_down_seconds:.1f})",
        ),
        (
            "exits on their own api / worker",
            f"{processes.exits['api']} / {processes.exits['worker']}",
        ),
        ("503 answers (retried)", f"{tally.unavailable_answers}"),
        ("sink calls by endpoint", ", ".join(f"{k}: {v}" for k, v in sink.paths.items())),
        ("seconds (client traffic)", f"{elapsed:.1f}"),
        ("requests/s (incl. retries)", f"{tally.requests / elapsed:.1f}"),
        ("seconds to drain the outbox", f"{tally.drain_seconds:.1f}"),
    ]
    width = max(len(name) for name, _ in rows)
    print(f"\nchaos run, seed {args.seed}")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    print("\nchecks")
    for text, ok in checks:
        print(f"  {'ok  ' if ok else 'FAIL'}  {text}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--bookings", type=int, default=200)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--kills", type=int, default=10)
    # Mean seconds between kills (about 1 s apart by default).
    parser.add_argument("--kill-gap", type=float, default=1.0)
    parser.add_argument("--pg-restarts", type=int, default=1)
    parser.add_argument("--redis-outages", type=int, default=1)
    parser.add_argument("--redis-outage-seconds", type=float, default=30.0)
    # Mean seconds between one PostgreSQL restart (or Redis outage) and the next.
    parser.add_argument("--outage-gap", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--logs", help="keep the API's and the worker's logs in this directory")
    args = parser.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C: the cluster, Redis and the processes started are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
