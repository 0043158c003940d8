"""Outage and shutdown tests run the real API and worker as subprocesses against a throwaway
PostgreSQL cluster of their own (they stop it hard; the suite's server is never touched)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from app.cli.migrate import upgrade
from tests.infra import ROOT
from tests.resilience.services import ThrowawayPostgres, free_port

TZ = ZoneInfo("Africa/Cairo")


@pytest.fixture(autouse=True)
def clean_tables() -> Iterator[None]:
    """These tests bring their own cluster: skip the suite's cleanup."""
    yield


@pytest.fixture(scope="module")
def cluster() -> Iterator[ThrowawayPostgres]:
    server = ThrowawayPostgres()
    try:
        server.start()
        upgrade(server.url)
        yield server
    finally:
        server.destroy()


class Stack:
    """`reckon serve` and `reckon worker` as subprocesses, logs in `logs`."""

    def __init__(self, database_url: str, redis_url: str, logs: Path, **extra: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.logs = logs
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TEST_", "SMTP_"))}
        for name in ("APP_DATABASE_URL", "BENCH_DATABASE_URL", "OTEL_EXPORTER_OTLP_ENDPOINT"):
            env.pop(name, None)
        env.update(
            DATABASE_URL=database_url,
            REDIS_URL=redis_url,
            REDIS_NAMESPACE=f"reckon-resilience-{uuid.uuid4().hex[:8]}",
            RECKON_ENV="development",
            LOG_JSON="false",
            PUBLIC_BASE_URL=self.base,
            PUBLIC_RATE_LIMIT_PER_MINUTE="100000",
            **extra,
        )
        self.env = env
        self.children: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, role: str) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "app.cli.main", role]
        if role == "serve":
            command += ["--port", str(self.port)]
        with (self.logs / f"{role}.log").open("ab") as out:
            child = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        self.children[role] = child
        return child

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            child = self.children["serve"]
            assert child.poll() is None, self.tail("serve")
            try:
                if httpx.get(f"{self.base}/health/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"the API did not get ready:\n{self.tail('serve')}")

    def log(self, role: str) -> str:
        path = self.logs / f"{role}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def tail(self, role: str) -> str:
        return self.log(role)[-4000:]

    def stop_all(self) -> None:
        for child in self.children.values():
            if child.poll() is None:
                child.kill()
                child.wait()


@pytest.fixture
def stack_factory(tmp_path: Path) -> Iterator[Any]:
    made: list[Stack] = []

    def make(database_url: str, redis_url: str, **extra: str) -> Stack:
        stack = Stack(database_url, redis_url, tmp_path, **extra)
        made.append(stack)
        return stack

    yield make
    for stack in made:
        stack.stop_all()


def open_shop(base: str, *, capacity: int = 1) -> dict[str, Any]:
    """Sign up a business with one branch, one resource and one paid 60-minute service."""
    slug = f"res-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=base, timeout=10) as http:
        signup = http.post(
            "/api/v1/signup",
            json={
                "business_name": "Resilience Salon",
                "slug": slug,
                "email": f"owner@{slug}.example.com",
                "password": "correct horse battery",
                "currency": "EGP",
                "timezone": "Africa/Cairo",
            },
        )
        assert signup.status_code == 201, signup.text
        headers = {"Authorization": f"Bearer {signup.json()['access_token']}"}
        branch = http.post(
            "/api/v1/branches", json={"name": "Main", "timezone": "Africa/Cairo"}, headers=headers
        ).json()
        resource = http.post(
            "/api/v1/resources",
            json={
                "name": "Chair",
                "kind": "staff",
                "capacity": capacity,
                "branch_ids": [branch["id"]],
            },
            headers=headers,
        ).json()
        weekly = [
            {"weekday": day, "start": "08:00", "end": "20:00", "branch_id": branch["id"]}
            for day in range(7)
        ]
        schedule = http.put(
            f"/api/v1/resources/{resource['id']}/schedule",
            json={"weekly": weekly, "overrides": []},
            headers=headers,
        )
        assert schedule.status_code == 200, schedule.text
        service = http.post(
            "/api/v1/services",
            json={
                "name": "Haircut",
                "policy": "time_slot",
                "pricing": "fixed",
                "duration_minutes": 60,
                "slot_step_minutes": 60,
                "price": {"amount_minor": 20_000, "currency": "EGP"},
                "resource_ids": [resource["id"]],
            },
            headers=headers,
        )
        assert service.status_code == 201, service.text
    return {
        "headers": headers,
        "branch_id": branch["id"],
        "resource_id": resource["id"],
        "service_id": service.json()["id"],
    }


def booking_body(shop: dict[str, Any], n: int) -> dict[str, Any]:
    """Booking n: a slot of its own (n-th hour from 08:00, two days on)."""
    day = datetime.now(TZ).date() + timedelta(days=2 + n // 12)
    start = datetime(day.year, day.month, day.day, 8 + n % 12, tzinfo=TZ)
    return {
        "service_id": shop["service_id"],
        "branch_id": shop["branch_id"],
        "resource_id": shop["resource_id"],
        "start": start.isoformat(),
        "customer": {"name": f"Customer {n}", "phone": "+201001234567"},
        "payment": {"provider": "sandbox"},
    }
