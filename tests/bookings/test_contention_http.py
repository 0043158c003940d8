"""One slot, many customers at once, over HTTP: each POST /api/v1/bookings with its own
Idempotency-Key, all sent together on parallel connections to a real server. Exactly
`capacity` bookings are made, every loser gets 409 slot_unavailable and nothing answers 5xx.
(bench/contention.py fires 500 at two API processes, times every answer against the 2 s
goal, and compares with a Redis lock and optimistic compare-and-swap.)"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.factories import make_catalog, sign_up

REQUESTS = 200
CAIRO = ZoneInfo("Africa/Cairo")
# httpx scans every connection of its pool for each request: several small pools.
CONNECTIONS_PER_CLIENT = 10
LIMITS = httpx.Limits(
    max_connections=CONNECTIONS_PER_CLIENT, max_keepalive_connections=CONNECTIONS_PER_CLIENT
)


@pytest.fixture
def client(live_client: httpx.AsyncClient) -> httpx.AsyncClient:
    return live_client


async def race(
    client: httpx.AsyncClient, capacity: int
) -> tuple[Counter[str], uuid.UUID, datetime]:
    business = await sign_up(client)  # type: ignore[arg-type]
    ids = await make_catalog(
        client,  # type: ignore[arg-type]
        business,
        capacity=capacity,
        start="08:00",
        end="20:00",
    )
    day = datetime.now(CAIRO).date() + timedelta(days=3)
    start = datetime(day.year, day.month, day.day, 10, tzinfo=CAIRO)
    pool = [
        httpx.AsyncClient(base_url=client.base_url, timeout=120, limits=LIMITS)
        for _ in range(REQUESTS // CONNECTIONS_PER_CLIENT)
    ]

    async def one(n: int) -> str:
        body = {
            "service_id": ids["service_id"],
            "branch_id": ids["branch_id"],
            "resource_id": ids["resource_id"],
            "start": start.isoformat(),
            "customer": {"name": f"Customer {n}", "phone": "+201001234567"},
            "payment": {"provider": "cash"},
        }
        headers = {**business.headers, "Idempotency-Key": f"race-{uuid.uuid4()}"}
        response = await pool[n % len(pool)].post("/api/v1/bookings", json=body, headers=headers)
        kind = ""
        if response.status_code != 201 and response.content:
            kind = str(response.json().get("type", "")).rsplit("/", 1)[-1]
        return f"{response.status_code} {kind}".strip()

    try:
        answers = await asyncio.gather(*(one(n) for n in range(REQUESTS)))
    finally:
        for http in pool:
            await http.aclose()
    return Counter(answers), business.tenant_id, start


async def active_on_slot(owner: AsyncEngine, tenant_id: uuid.UUID, start: datetime) -> int:
    async with owner.connect() as connection:
        found = await connection.execute(
            text(
                "SELECT count(*) FROM bookings WHERE tenant_id = :t AND starts_at = :start "
                "AND status IN ('pending_payment', 'confirmed', 'checked_in')"
            ),
            {"t": tenant_id, "start": start},
        )
        return int(found.scalar_one())


@pytest.mark.parametrize("capacity", [1, 5])
async def test_concurrent_requests_for_one_slot_make_exactly_capacity_bookings(
    client: httpx.AsyncClient, owner_engine: AsyncEngine, capacity: int
) -> None:
    answers, tenant_id, start = await race(client, capacity)
    assert answers == Counter({"201": capacity, "409 slot_unavailable": REQUESTS - capacity})
    assert await active_on_slot(owner_engine, tenant_id, start) == capacity
