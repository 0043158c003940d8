"""Python CPU per request on the two hottest HTTP paths, measured in-process as thread CPU time
(so other load on a shared machine does not change the figure, unlike rates and latencies).

    .venv/bin/python bench/http_cpu.py [--requests 400] [--warmup 50] [--profile bookings]

An in-process copy of the app (create_app, its lifespan run) on a scratch migrated database;
a business opened through the API as in bench/checkout_http.py. Then, one request at a time,
straight into the ASGI app (no server, no socket: what is counted is the app's own work plus a
few microseconds of building the ASGI scope):

- `bookings`: POST /api/v1/bookings with the owner's bearer token and an Idempotency-Key of
  its own, a sandbox-paid booking in a slot nobody else takes (201);
- `webhooks`: POST /webhooks/sandbox, a signed sandbox capture, 1 in 10 a duplicate of an
  earlier one (200 accepted / duplicate).

The event loop and the psycopg connections run on this one thread, so its CPU time is all the
Python a request costs; PostgreSQL's own work is in its processes and is not counted.
`--profile NAME` runs that path's measured requests under cProfile and prints the top of it.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import logging
import pstats
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, scratch_database
from _http import Clients, open_business, redis_url
from _results import result
from checkout_http import booking_body, slot
from webhooks import sign_all, synthetic, with_duplicates

from app.edge.asgi import create_app, sandbox_secret
from app.integrations import sandbox
from app.settings import load_settings

Call = Callable[[int], Awaitable[int]]
LABELS = {"bookings": "POST /api/v1/bookings", "webhooks": "webhook acknowledgement"}


async def asgi(
    app: Litestar, method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes
) -> int:
    """One request straight into the ASGI app; returns the status."""
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-length", str(len(body)).encode()),
            *headers,
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.Event().wait()  # a disconnect never comes
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])

    await app(scope, receive, send)  # type: ignore[arg-type]
    return status


async def measure(
    name: str, call: Call, requests: int, warmup: int, expected: set[int], profile: bool
) -> float:
    """Thread CPU ms per request over `requests` sequential calls after `warmup`."""
    for n in range(warmup):
        status = await call(n)
        assert status in expected, (name, status)
    profiler = cProfile.Profile(time.thread_time) if profile else None
    cpu: list[float] = []
    began_wall = time.perf_counter()
    began_cpu = time.thread_time()
    if profiler is not None:
        profiler.enable()
    for n in range(warmup, warmup + requests):
        before = time.thread_time()
        status = await call(n)
        cpu.append(time.thread_time() - before)
        assert status in expected, (name, status)
    if profiler is not None:
        profiler.disable()
    total = (time.thread_time() - began_cpu) * 1000 / requests
    wall = (time.perf_counter() - began_wall) * 1000 / requests
    print(
        f"  {name:9}: {total:6.2f} ms thread CPU per request (median"
        f" {statistics.median(cpu) * 1000:.2f}, {requests} requests, {wall:.2f} ms wall each)"
    )
    if profiler is not None:
        show(pstats.Stats(profiler), requests)
    return total


def package_of(path: str) -> str:
    """`sqlalchemy`, `app/edge`, `stdlib` (asyncio, selectors...) or `builtins` (C calls)."""
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/")[0]
    if f"{ROOT}/app/" in path:
        return "/".join(path.split(f"{ROOT}/", 1)[1].split("/")[:2])
    if path == "~":
        return "builtins"
    return "stdlib" if "/lib/python3" in path else path


def show(stats: pstats.Stats, requests: int) -> None:
    """Self time per package (what each layer costs), then the top functions."""
    by_package: dict[str, float] = {}
    for (path, _, _), (_, _, self_time, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        by_package[package_of(path)] = by_package.get(package_of(path), 0.0) + self_time
    total = sum(by_package.values()) * 1000 / requests
    print(f"  self time per package, ms per request (profiled, so inflated: {total:.2f} in all):")
    for package, seconds in sorted(by_package.items(), key=lambda kv: -kv[1])[:25]:
        print(f"    {seconds * 1000 / requests:6.2f}  {package}")
    stats.sort_stats("tottime").print_stats(40)


async def bench(url: str, options: argparse.Namespace) -> None:
    settings = load_settings(
        url,
        redis_url(),
        secret_key="bench-http-cpu-" + "k" * 40,
        redis_namespace=f"reckon-bench-{uuid.uuid4().hex[:8]}",
        public_base_url="http://127.0.0.1:8000",
        public_rate_limit_per_minute=10_000_000,
        environment="development",
        log_json=True,
    )
    app = create_app(settings)
    async with AsyncTestClient(app=app) as client:
        biz = await open_business(Clients([client]), resources=64)
        auth = [(b"authorization", f"Bearer {biz.token}".encode())]
        json_type = [(b"content-type", b"application/json")]

        async def book(n: int) -> int:
            resource, start = slot(biz, n)
            body = json.dumps(booking_body(biz, resource, start, n)).encode()
            key = [(b"idempotency-key", str(uuid.uuid4()).encode())]
            return await asgi(app, "POST", "/api/v1/bookings", [*auth, *json_type, *key], body)

        total = options.warmup + options.requests
        secret = sandbox_secret(settings)
        deliveries = sign_all(with_duplicates(synthetic(total), 16)[:total], secret)

        async def deliver(n: int) -> int:
            raw, header = deliveries[n]
            signature = [(sandbox.SIGNATURE_HEADER.lower().encode(), header.encode())]
            return await asgi(app, "POST", "/webhooks/sandbox", [*json_type, *signature], raw)

        print(f"Python CPU per request, in-process ASGI, sequential ({sys.version.split()[0]})")
        paths: dict[str, tuple[Call, set[int]]] = {
            "bookings": (book, {201}),
            "webhooks": (deliver, {200}),
        }
        for name in options.paths:
            call, expected = paths[name]
            ms = await measure(
                name, call, options.requests, options.warmup, expected, options.profile == name
            )
            label = f"Python CPU per request, {LABELS[name]} (in-process)"
            result(f"http_cpu.{name}", ms, None, "ms", None, label)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument(
        "--paths", nargs="+", choices=["bookings", "webhooks"], default=["bookings", "webhooks"]
    )
    parser.add_argument("--profile", choices=["bookings", "webhooks"])
    options = parser.parse_args()
    logging.getLogger("httpx").setLevel(logging.WARNING)

    async def run() -> None:
        async with scratch_database("reckon_bench_http_cpu") as url:
            await bench(url, options)

    asyncio.run(run())


if __name__ == "__main__":
    main()
