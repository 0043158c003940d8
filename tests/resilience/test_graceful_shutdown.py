"""SIGTERM: the API stops accepting, finishes the request in flight and exits; the worker
finishes the delivery that fits its grace period, hands back the one that does not (no lease
left behind) and exits within seconds."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
import uuid
from typing import Any

import httpx
import psycopg

from tests.resilience.conftest import booking_body, open_shop
from tests.resilience.services import ThrowawayPostgres

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _refused(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_sigterm_lets_the_in_flight_booking_finish_and_refuses_new_connections(
    cluster: ThrowawayPostgres, stack_factory: Any
) -> None:
    stack = stack_factory(cluster.url, REDIS_URL)
    api = stack.start("serve")
    stack.wait_ready()
    # Capacity 2: placing a booking locks the resource row, which the test holds first.
    shop = open_shop(stack.base, capacity=2)
    answer: dict[str, httpx.Response] = {}

    def book() -> None:
        answer["booking"] = httpx.post(
            f"{stack.base}/api/v1/bookings",
            json=booking_body(shop, 0),
            headers={**shop["headers"], "Idempotency-Key": f"slow-{uuid.uuid4()}"},
            timeout=30,
        )

    with psycopg.connect(cluster.conninfo) as holder:
        holder.execute("SELECT id FROM resources WHERE id = %s FOR UPDATE", (shop["resource_id"],))
        request = threading.Thread(target=book)
        request.start()
        deadline = time.monotonic() + 5
        with psycopg.connect(cluster.conninfo, autocommit=True) as watcher:
            while True:  # the booking's transaction waits on our lock
                row = watcher.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                ).fetchone()
                if row is not None and row[0] > 0:
                    break
                assert time.monotonic() < deadline, "the booking never waited on the lock"
                time.sleep(0.02)
        api.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 3
        while not _refused(stack.port):
            assert time.monotonic() < deadline, "still accepting connections after SIGTERM"
            time.sleep(0.05)
        assert api.poll() is None, "exited with a request in flight"
        holder.rollback()  # the lock goes; the booking proceeds
    request.join(timeout=20)
    assert answer["booking"].status_code == 201, answer["booking"].text
    # uvicorn re-raises the signal once it has shut down cleanly: death by SIGTERM, not a crash.
    assert api.wait(timeout=10) in (0, -signal.SIGTERM), stack.tail("serve")
    assert "Traceback" not in stack.tail("serve"), stack.tail("serve")
    with psycopg.connect(cluster.conninfo) as connection:
        row = connection.execute(
            "SELECT count(*) FROM bookings WHERE id = %s", (answer["booking"].json()["id"],)
        ).fetchone()
    assert row is not None and row[0] == 1


def _stage_slow(conninfo: str, tenant_id: uuid.UUID, seconds: float) -> uuid.UUID:
    event_id = uuid.uuid4()
    with psycopg.connect(conninfo) as connection:
        connection.execute(
            "INSERT INTO outbox (tenant_id, id, aggregate_type, aggregate_id, topic, payload) "
            "VALUES (%s, %s, 'test', %s, 'test.slow', %s)",
            (tenant_id, event_id, uuid.uuid4(), json.dumps({"seconds": seconds})),
        )
        connection.execute("SELECT pg_notify('outbox', '')")
    return event_id


def _rows(conninfo: str, ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple[str, Any, int]]:
    with psycopg.connect(conninfo) as connection:
        rows = connection.execute(
            "SELECT id, status, locked_until, attempts FROM outbox WHERE id = ANY(%s)", (ids,)
        ).fetchall()
    return {row[0]: (row[1], row[2], row[3]) for row in rows}


def test_sigterm_worker_finishes_short_deliveries_releases_long_ones_and_exits(
    cluster: ThrowawayPostgres, stack_factory: Any
) -> None:
    stack = stack_factory(cluster.url, REDIS_URL, RECKON_TEST_SLOW_TOPIC="1")
    stack.start("serve")
    stack.wait_ready()
    open_shop(stack.base)
    with psycopg.connect(cluster.conninfo) as connection:
        row = connection.execute("SELECT id FROM tenants ORDER BY created_at DESC").fetchone()
    assert row is not None
    tenant_id = row[0]
    worker = stack.start("worker")
    time.sleep(1.0)  # the worker is up and listening
    short = _stage_slow(cluster.conninfo, tenant_id, 1.5)
    long = _stage_slow(cluster.conninfo, tenant_id, 120)
    deadline = time.monotonic() + 20
    while True:  # both claimed: leased by the worker
        rows = _rows(cluster.conninfo, [short, long])
        if all(rows[i][1] is not None for i in (short, long)):
            break
        assert time.monotonic() < deadline, (rows, stack.tail("worker"))
        time.sleep(0.05)

    worker.send_signal(signal.SIGTERM)
    began = time.monotonic()
    assert worker.wait(timeout=15) == 0, stack.tail("worker")
    assert time.monotonic() - began < 12, time.monotonic() - began

    rows = _rows(cluster.conninfo, [short, long])
    assert rows[short][0] == "delivered", rows
    status, locked_until, attempts = rows[long]
    # Handed back at once, the attempt the shutdown cut short not charged.
    assert (status, locked_until, attempts) == ("pending", None, 0), rows
