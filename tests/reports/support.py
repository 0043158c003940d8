"""Helpers for report tests: bookings written as the owner by SQL, so past and fixed dates
(and every final status) can be set up directly."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.factories import Business

Client = AsyncTestClient[Litestar]


async def insert_booking(
    owner_engine: AsyncEngine,
    tenant_id: uuid.UUID,
    catalog: dict[str, Any],
    start: datetime,
    *,
    hours: float = 1,
    end: datetime | None = None,
    status: str = "confirmed",
    party_size: int = 1,
    resource_id: str | None = None,
    exclusive: bool = True,
) -> uuid.UUID:
    booking_id = uuid.uuid4()
    end = end or start + timedelta(hours=hours)
    async with owner_engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO bookings (tenant_id, id, branch_id, service_id, resource_id, "
                "customer_name, party_size, starts_at, ends_at, blocked, exclusive, status, "
                "hold_expires_at, unit_price_minor, pricing, quantity, total_minor, currency, "
                "payment_provider) VALUES (:t, :id, :b, :s, :r, 'Layla Hassan', :party, "
                ":start, :end, tstzrange(:start, :end, '[)'), :exclusive, :status, :hold, "
                "10000, 'fixed', 1, 10000, 'EGP', 'cash')"
            ),
            {
                "t": tenant_id,
                "id": booking_id,
                "b": uuid.UUID(catalog["branch_id"]),
                "s": uuid.UUID(catalog["service_id"]),
                "r": uuid.UUID(resource_id or catalog["resource_id"]),
                "party": party_size,
                "start": start,
                "end": end,
                "exclusive": exclusive,
                "status": status,
                "hold": start if status == "pending_payment" else None,
            },
        )
    return booking_id


async def add_time_off(
    client: Client, business: Business, resource_id: str, start: datetime, end: datetime
) -> None:
    response = await client.post(
        f"/api/v1/resources/{resource_id}/time-off",
        headers=business.headers,
        json={"start": start.isoformat(), "end": end.isoformat(), "reason": "leave"},
    )
    assert response.status_code == 201, response.text


async def occupancy(
    client: Client, business: Business, start: str, end: str, group_by: str | None = None
) -> dict[str, Any]:
    params = {"from": start, "to": end}
    if group_by:
        params["group_by"] = group_by
    response = await client.get(
        "/api/v1/reports/occupancy", params=params, headers=business.headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body
