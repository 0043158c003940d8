"""PostgreSQL goes down under a running API and worker: requests get 503 + Retry-After
within a second (no hang, no 500), readiness names postgres, and when it comes back the same
processes book again and deliver what is staged after the recovery."""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

import httpx
import psycopg

from app.edge.asgi import sandbox_secret
from app.integrations import sandbox
from app.settings import load_settings
from tests.resilience.conftest import booking_body, open_shop
from tests.resilience.services import ThrowawayPostgres

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
SECRET_KEY = "resilience-outage-" + "s" * 40


def _deliver(base: str, database_url: str, event_id: str) -> httpx.Response:
    """A signed sandbox capture of a payment nobody has: the acknowledgement only stores it."""
    event = {
        "id": event_id,
        "type": "payment.succeeded",
        "data": {"tenant_id": str(uuid.uuid4()), "payment_id": str(uuid.uuid4())},
    }
    secret = sandbox_secret(load_settings(database_url, REDIS_URL, secret_key=SECRET_KEY))
    raw, header = sandbox.signed_event(event, secret, int(time.time()))
    return httpx.post(
        f"{base}/webhooks/sandbox",
        content=raw,
        headers={sandbox.SIGNATURE_HEADER: header, "content-type": "application/json"},
        timeout=10,
    )


def _post_booking(base: str, shop: dict[str, Any], n: int, key: str) -> httpx.Response:
    return httpx.post(
        f"{base}/api/v1/bookings",
        json=booking_body(shop, n),
        headers={**shop["headers"], "Idempotency-Key": key},
        timeout=10,
    )


def _undelivered(conninfo: str, booking_id: str) -> tuple[int, int]:
    """(rows staged for the booking, rows of it not delivered yet)."""
    with psycopg.connect(conninfo) as connection:
        row = connection.execute(
            "SELECT count(*), count(*) FILTER (WHERE status <> 'delivered') FROM outbox "
            "WHERE aggregate_id = %s OR payload->>'booking_id' = %s",
            (booking_id, booking_id),
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _wait_delivered(conninfo: str, booking_id: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    staged, open_rows = _undelivered(conninfo, booking_id)
    while (staged == 0 or open_rows) and time.monotonic() < deadline:
        time.sleep(0.1)
        staged, open_rows = _undelivered(conninfo, booking_id)
    assert staged > 0 and open_rows == 0, (staged, open_rows)


def test_postgres_down_answers_503_fast_and_everything_recovers_without_restart(
    cluster: ThrowawayPostgres, stack_factory: Any
) -> None:
    stack = stack_factory(cluster.url, REDIS_URL, SECRET_KEY=SECRET_KEY)
    api, worker = stack.start("serve"), stack.start("worker")
    stack.wait_ready()
    shop = open_shop(stack.base)
    first = _post_booking(stack.base, shop, 0, "before-outage")
    assert first.status_code == 201, first.text
    # The acknowledgement's own connections are pooled now, to be found dead below.
    stored = _deliver(stack.base, cluster.url, "evt_sandbox_before_outage")
    assert stored.json()["status"] == "accepted", stored.text
    _wait_delivered(cluster.conninfo, first.json()["id"], 20)

    cluster.stop("immediate")
    try:
        for attempt in range(3):  # dead pooled connections, then refused connects
            began = time.monotonic()
            during = _post_booking(stack.base, shop, 1, "during-outage")
            elapsed = time.monotonic() - began
            assert during.status_code == 503, (attempt, during.status_code, during.text)
            assert elapsed < 1.0, (attempt, elapsed)
            assert during.headers["content-type"].startswith("application/problem+json")
            assert int(during.headers["retry-after"]) >= 1
            assert during.json()["type"] == "dependency_unavailable"
            assert during.json()["dependency"] == "postgres"

        for attempt in range(2):  # a webhook: its pooled connection dead, then refused
            began = time.monotonic()
            webhook = _deliver(stack.base, cluster.url, "evt_sandbox_during_outage")
            assert webhook.status_code == 503, (attempt, webhook.text)
            assert time.monotonic() - began < 1.0, attempt
            assert webhook.json()["dependency"] == "postgres"

        began = time.monotonic()
        read = httpx.get(
            f"{stack.base}/api/v1/bookings/{first.json()['id']}",
            headers=shop["headers"],
            timeout=10,
        )
        assert read.status_code == 503 and time.monotonic() - began < 1.0, read.text

        began = time.monotonic()
        ready = httpx.get(f"{stack.base}/health/ready", timeout=10)
        assert time.monotonic() - began < 1.5
        assert ready.status_code == 503
        assert ready.json()["down"] == ["postgres"]
        assert ready.json()["checks"]["redis"] == "ok"
        time.sleep(1.5)  # the relay and its listener notice, and back off
    finally:
        cluster.start()

    deadline = time.monotonic() + 15
    while True:
        after = _post_booking(stack.base, shop, 1, "during-outage")
        if after.status_code == 201 or time.monotonic() > deadline:
            break
        assert after.status_code == 503, after.text
        time.sleep(0.2)
    assert after.status_code == 201, after.text
    assert httpx.get(f"{stack.base}/health/ready", timeout=5).json()["down"] == []
    # The delivery refused during the outage stored nothing: delivered again, it is stored now.
    again = _deliver(stack.base, cluster.url, "evt_sandbox_during_outage")
    assert again.status_code == 200 and again.json()["status"] == "accepted", again.text
    second = _post_booking(stack.base, shop, 2, "after-outage")
    assert second.status_code == 201, second.text

    # Staged after the recovery, delivered by the same worker: its relay and listener are back.
    _wait_delivered(cluster.conninfo, second.json()["id"], 20)
    _wait_delivered(cluster.conninfo, after.json()["id"], 20)
    assert api.poll() is None and worker.poll() is None
    # The listener reconnects on its own backoff (up to a few seconds after PostgreSQL is
    # back; polling delivered meanwhile): wait for it, and read the whole log, not a tail.
    deadline = time.monotonic() + 15
    while "outbox.listen_restored" not in stack.log("worker") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "outbox.listen_restored" in stack.log("worker"), stack.tail("worker")
    assert "internal_error" not in stack.tail("serve")
    assert "request.failed" not in stack.tail("serve"), stack.tail("serve")
