"""Shared pieces of the HTTP benchmarks: API processes (`reckon serve`) on free ports against
a scratch database, a business opened through the API, keep-alive clients spread over the
processes, and the processes' peak RSS.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from _common import ROOT

from app.settings import Settings, load_settings

READY_TIMEOUT = 60.0
PASSWORD = "correct horse battery"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_url() -> str:
    return (
        os.environ.get("REDIS_URL")
        or os.environ.get("TEST_REDIS_URL")
        or "redis://127.0.0.1:6379/0"
    )


def peak_rss_mb(pid: int) -> float:
    """VmHWM: the process's peak resident set so far."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def spawn(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A child in its own process group (stopped with its children), output to `log`."""
    with log.open("ab") as out:
        return subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


@dataclass
class Fleet:
    """`count` API processes, each `python -m app.cli.main serve` on its own port."""

    ports: list[int]
    children: list[subprocess.Popen[bytes]]
    logs: Path
    env: dict[str, str]

    def settings(self) -> Settings:
        """The processes' settings, for an in-process copy of the app (statement capture)."""
        return load_settings(
            self.env["DATABASE_URL"],
            self.env["REDIS_URL"],
            secret_key=self.env["SECRET_KEY"],
            redis_namespace=self.env["REDIS_NAMESPACE"],
            public_base_url=self.env["PUBLIC_BASE_URL"],
            public_rate_limit_per_minute=int(self.env["PUBLIC_RATE_LIMIT_PER_MINUTE"]),
            environment="development",
            log_json=True,
        )

    @property
    def bases(self) -> list[str]:
        return [f"http://127.0.0.1:{port}" for port in self.ports]

    def peak_rss_mb(self) -> list[float]:
        return [peak_rss_mb(child.pid) for child in self.children if child.poll() is None]

    def tail(self) -> str:
        return "\n".join(
            path.read_text(errors="replace")[-2000:] for path in sorted(self.logs.glob("*.log"))
        )


@asynccontextmanager
async def api_processes(url: str, count: int = 2) -> AsyncIterator[Fleet]:
    namespace = f"reckon-bench-{uuid.uuid4().hex[:8]}"
    ports = [free_port() for _ in range(count)]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEST_", "SMTP_"))}
    env.pop("APP_DATABASE_URL", None)
    env.update(
        DATABASE_URL=url,
        REDIS_URL=redis_url(),
        REDIS_NAMESPACE=namespace,
        RECKON_ENV="development",
        LOG_JSON="true",
        LOG_LEVEL="WARNING",
        PUBLIC_BASE_URL=f"http://127.0.0.1:{ports[0]}",
        PUBLIC_RATE_LIMIT_PER_MINUTE="10000000",
        SECRET_KEY=secrets.token_urlsafe(48),
    )
    with tempfile.TemporaryDirectory(prefix="reckon-bench-http-") as scratch:
        logs = Path(scratch)
        children = [
            spawn(
                [sys.executable, "-m", "app.cli.main", "serve", "--port", str(port)],
                env,
                logs / f"api{index}.log",
            )
            for index, port in enumerate(ports)
        ]
        fleet = Fleet(ports, children, logs, env)
        try:
            await _wait_ready(fleet)
            yield fleet
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
            await _forget(namespace)


async def _wait_ready(fleet: Fleet) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    async with httpx.AsyncClient(timeout=2) as client:
        for base, child in zip(fleet.bases, fleet.children, strict=True):
            while True:
                if child.poll() is not None:
                    raise RuntimeError(f"an API process exited:\n{fleet.tail()}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"/health/ready did not answer:\n{fleet.tail()}")
                try:
                    if (await client.get(f"{base}/health/ready")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)


async def _forget(namespace: str) -> None:
    from redis.asyncio import Redis

    redis = Redis.from_url(redis_url())
    try:
        keys = [key async for key in redis.scan_iter(f"{namespace}*")]
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()


@dataclass
class Clients:
    """One keep-alive httpx client per API process; requests go round-robin."""

    http: list[httpx.AsyncClient]
    headers: dict[str, str] = field(default_factory=dict)
    _turn: Iterator[int] = field(default_factory=itertools.count)

    def next(self) -> httpx.AsyncClient:
        return self.http[next(self._turn) % len(self.http)]

    async def post(
        self, path: str, body: Any, key: str | None = None, client: httpx.AsyncClient | None = None
    ) -> httpx.Response:
        headers = dict(self.headers)
        if key is not None:
            headers["Idempotency-Key"] = key
        return await (client or self.next()).post(path, json=body, headers=headers)


@asynccontextmanager
async def clients(fleet: Fleet, connections: int, seconds: float = 60.0) -> AsyncIterator[Clients]:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    opened = [
        httpx.AsyncClient(base_url=base, timeout=seconds, limits=limits) for base in fleet.bases
    ]
    try:
        yield Clients(opened)
    finally:
        for client in opened:
            await client.aclose()


@dataclass(frozen=True)
class Business:
    token: str
    tenant_id: str
    branch_id: str
    service_id: str
    resource_ids: list[str]


async def _created(client: Clients, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(path, body, client=client.http[0])
    if response.status_code != 201:
        raise RuntimeError(f"{path}: {response.status_code} {response.text}")
    return dict(response.json())


async def open_business(
    client: Clients,
    *,
    resources: int,
    capacity: int = 1,
    timezone: str = "UTC",
    hours: tuple[str, str] = ("00:00", "23:59"),
    duration: int = 60,
    step: int | None = None,
    max_advance_days: int | None = None,
) -> Business:
    """Sign up, one branch, `resources` resources open every day, one time-slot service."""
    slug = f"bench-{uuid.uuid4().hex[:8]}"
    signup = {
        "business_name": "Bench Salon",
        "slug": slug,
        "email": f"owner@{slug}.example.com",
        "password": PASSWORD,
        "currency": "EGP",
        "timezone": timezone,
    }
    data = await _created(client, "/api/v1/signup", signup)
    client.headers["Authorization"] = f"Bearer {data['access_token']}"
    tenant_id = str(data["tenant_id"])
    branch = await _created(client, "/api/v1/branches", {"name": "Main", "timezone": timezone})
    resource_ids = []
    for number in range(resources):
        body = {"name": f"Chair {number}", "kind": "staff", "capacity": capacity}
        resource = await _created(
            client, "/api/v1/resources", {**body, "branch_ids": [branch["id"]]}
        )
        weekly = [
            {"weekday": day, "start": hours[0], "end": hours[1], "branch_id": branch["id"]}
            for day in range(7)
        ]
        schedule = await client.http[0].put(
            f"/api/v1/resources/{resource['id']}/schedule",
            headers=client.headers,
            json={"weekly": weekly, "overrides": []},
        )
        schedule.raise_for_status()
        resource_ids.append(resource["id"])
    service: dict[str, Any] = {
        "name": "Haircut",
        "policy": "time_slot",
        "pricing": "fixed",
        "duration_minutes": duration,
        "slot_step_minutes": step or duration,
        "price": {"amount_minor": 20_000, "currency": "EGP"},
        "resource_ids": resource_ids,
    }
    if max_advance_days is not None:
        service["max_advance_days"] = max_advance_days
    created = await _created(client, "/api/v1/services", service)
    return Business(data["access_token"], tenant_id, branch["id"], created["id"], resource_ids)
