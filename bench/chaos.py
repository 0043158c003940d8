"""Chaos harness (issue 17): clients book, pay, cancel and refund over HTTP while the API and
the worker are SIGKILLed at random moments and restarted; at the end nothing is lost,
duplicated or left undone, and the books balance.

    .venv/bin/python bench/chaos.py [--bookings 200] [--clients 8] [--kills 10] [--seed 1]

Starts `python -m app.cli.main serve --port <free>` and `... worker` against a fresh
migrated scratch database (DATABASE_URL / BENCH_DATABASE_URL / TEST_DATABASE_URL as the owner,
default the local PostgreSQL; dropped afterwards) and the local Redis (REDIS_URL /
TEST_REDIS_URL, under a namespace of its own). Every POST carries an Idempotency-Key and is
retried with the same key until it gets a definite answer: 2xx (303 from the sandbox page), or
a 4xx other than 409 idempotency_key_in_progress / contention and 429. Exit status 0 when
every check holds.
"""

from __future__ import annotations

import argparse
import asyncio
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
from redis.asyncio import Redis

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, scratch_database

from tests.infra import libpq

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

    async def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        async with httpx.AsyncClient(timeout=2) as client:
            while time.monotonic() < deadline:
                if not self.alive("api"):
                    raise RuntimeError(f"the API exited:\n{self.tail('api')}")
                try:
                    response = await client.get(f"http://127.0.0.1:{self.port}/health/ready")
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
        "customer": {"name": f"Customer {n}", "phone": "+201001234567"},
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
    processes: Processes, rng: random.Random, kills: int, tally: Tally, traffic: asyncio.Event
) -> None:
    """SIGKILL the API or the worker at random moments, restarting it each time."""
    for _ in range(kills):
        await asyncio.sleep(rng.uniform(0.3, 1.5))
        role = rng.choice(["api", "worker"])
        processes.kill(role)
        tally.kills[role] += 1
        tally.kills_during_traffic += not traffic.is_set()
        await asyncio.sleep(rng.uniform(0.0, 0.5))
        processes.start(role)
        if role == "api":
            await processes.wait_ready()


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
    processes: Processes, shop: dict[str, Any], args: argparse.Namespace, tally: Tally, token: str
) -> float:
    """Clients and chaos together; returns the clients' wall time."""
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
    killer = asyncio.create_task(
        chaos(processes, random.Random(args.seed + 1), args.kills, tally, done)
    )
    await asyncio.gather(*(client_task() for _ in range(args.clients)))
    elapsed = time.monotonic() - began
    done.set()
    await killer
    return elapsed


async def main_async(args: argparse.Namespace) -> int:
    redis_url = os.environ.get("REDIS_URL") or os.environ.get("TEST_REDIS_URL")
    redis_url = redis_url or "redis://127.0.0.1:6379/0"
    namespace = f"reckon-chaos-{uuid.uuid4().hex[:8]}"
    tally = Tally()
    async with scratch_database("reckon_chaos") as url:
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TEST_", "SMTP_"))}
        env.pop("APP_DATABASE_URL", None)
        env.update(
            DATABASE_URL=url,
            REDIS_URL=redis_url,
            REDIS_NAMESPACE=namespace,
            RECKON_ENV="development",
            LOG_JSON="false",
            PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
            PUBLIC_RATE_LIMIT_PER_MINUTE="100000",
        )
        with tempfile.TemporaryDirectory(prefix="reckon-chaos-") as logs:
            processes = Processes(env, port, Path(logs))
            try:
                checks, elapsed = await _run(processes, args, tally, libpq(url))
            except BaseException:
                print(f"--- api log ---\n{processes.tail('api')}\n--- worker log ---")
                print(processes.tail("worker"))
                raise
            finally:
                processes.stop_all()
                await _forget(redis_url, namespace)
    _report(args, tally, checks, elapsed)
    return 0 if all(ok for _, ok in checks) else 1


async def _run(
    processes: Processes, args: argparse.Namespace, tally: Tally, conninfo: str
) -> tuple[list[tuple[str, bool]], float]:
    processes.start("api")
    processes.start("worker")
    await processes.wait_ready()
    base = f"http://127.0.0.1:{processes.port}"
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        owner = Client(http, {}, Tally())
        shop = await open_business(owner)
        token = owner.headers["Authorization"].removeprefix("Bearer ")
    elapsed = await traffic(processes, shop, args, tally, token)
    for role in ("api", "worker"):  # the final restart: both up whatever the last kill hit
        if not processes.alive(role):
            processes.start(role)
    await processes.wait_ready()
    began = time.monotonic()
    drained = await drain(conninfo)
    tally.drain_seconds = time.monotonic() - began
    return await verify(conninfo, tally, drained), elapsed


async def _forget(redis_url: str, namespace: str) -> None:
    redis = Redis.from_url(redis_url)
    try:
        async for key in redis.scan_iter(match=f"{namespace}*"):
            await redis.delete(key)
    finally:
        await redis.aclose()


def _report(
    args: argparse.Namespace, tally: Tally, checks: list[tuple[str, bool]], elapsed: float
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
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    test_url = os.environ.get("TEST_DATABASE_URL")
    if test_url and not (os.environ.get("DATABASE_URL") or os.environ.get("BENCH_DATABASE_URL")):
        os.environ["BENCH_DATABASE_URL"] = test_url
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
