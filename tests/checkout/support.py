"""Shared pieces of the money-path tests: a shop with a priced service, bookings made over
HTTP, outbox rows run through their real handlers, and ledger reads."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.outbox.dispatch import Dispatcher, HandlerContext
from app.outbox.models import OutboxEvent
from app.settings import Settings
from app.worker.deps import JobDeps
from tests.factories import Business, make_catalog, sign_up

Client = AsyncTestClient[Litestar]
CAIRO = ZoneInfo("Africa/Cairo")
PRICE = 20_000


@dataclass
class Shop:
    business: Business
    service_id: str
    branch_id: str
    resource_id: str


async def open_shop(client: Client, **service: Any) -> Shop:
    business = await sign_up(client)
    fields: dict[str, Any] = {
        "cancellation_policy": {
            "tiers": [
                {"hours_before": 24, "refund_bps": 10_000},
                {"hours_before": 2, "refund_bps": 5_000},
            ],
            "no_show_fee_bps": 10_000,
        },
        "commission_bps": 3_000,
        **service,
    }
    ids = await make_catalog(
        client, business, price_minor=PRICE, start="08:00", end="20:00", **fields
    )
    enabled = await client.put(
        "/api/v1/settings/providers",
        headers=business.headers,
        json={"enabled": ["cash", "sandbox", "stripe", "kashier"]},
    )
    assert enabled.status_code == 200, enabled.text
    return Shop(business, ids["service_id"], ids["branch_id"], ids["resource_id"])


def local_slot(days_ahead: int, hour: int) -> datetime:
    day = datetime.now(CAIRO).date() + timedelta(days=days_ahead)
    return datetime(day.year, day.month, day.day, hour, tzinfo=CAIRO)


async def book(
    client: Client,
    shop: Shop,
    *,
    provider: str = "sandbox",
    days_ahead: int = 3,
    hour: int = 10,
    **extra: Any,
) -> dict[str, Any]:
    body = {
        "service_id": shop.service_id,
        "branch_id": shop.branch_id,
        "resource_id": shop.resource_id,
        "start": local_slot(days_ahead, hour).isoformat(),
        "customer": {
            "name": "Layla Hassan",
            "email": "layla@example.com",
            "phone": "+201001234567",
        },
        "payment": {"provider": provider},
        **extra,
    }
    response = await client.post("/api/v1/bookings", json=body, headers=shop.business.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def get_booking(client: Client, shop: Shop, booking_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/bookings/{booking_id}", headers=shop.business.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def balance(owner: AsyncEngine, tenant_id: uuid.UUID, code: str) -> int:
    async with owner.connect() as connection:
        value = await connection.scalar(
            text(
                "SELECT coalesce(sum(p.amount_minor), 0) FROM postings p JOIN ledger_accounts a "
                "ON a.tenant_id = p.tenant_id AND a.id = p.account_id "
                "WHERE a.tenant_id = :t AND a.code = :c"
            ),
            {"t": tenant_id, "c": code},
        )
    return int(value or 0)


async def unbalanced_entries(owner: AsyncEngine) -> int:
    async with owner.connect() as connection:
        value = await connection.scalar(
            text(
                "SELECT count(*) FROM (SELECT entry_id, currency FROM postings "
                "GROUP BY entry_id, currency HAVING sum(amount_minor) <> 0) x"
            )
        )
    return int(value or 0)


async def count(owner: AsyncEngine, sql: str, **params: Any) -> int:
    async with owner.connect() as connection:
        return int((await connection.scalar(text(sql), params)) or 0)


async def run_outbox(
    owner: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    dispatcher: Dispatcher,
    topic_prefix: str,
    deps: JobDeps | None = None,
) -> int:
    """Run the pending outbox rows whose topic starts with `topic_prefix` through the real
    handlers, as the relay would (in commit order), and mark them delivered."""
    async with owner.connect() as connection:
        rows = (
            await connection.execute(
                text(
                    "SELECT * FROM outbox WHERE status = 'pending' AND topic LIKE :p ORDER BY seq"
                ),
                {"p": topic_prefix + "%"},
            )
        ).all()
    redis = Redis.from_url(settings.redis_url)
    ctx = HandlerContext(
        sessions=sessions,
        redis=redis,
        namespace=settings.redis_namespace,
        worker_id="test",
        deps=deps or JobDeps(),
    )
    try:
        for row in rows:
            event = OutboxEvent(
                tenant_id=row.tenant_id,
                id=row.id,
                seq=row.seq,
                topic=row.topic,
                aggregate_type=row.aggregate_type,
                aggregate_id=row.aggregate_id,
                payload=row.payload,
                created_at=row.created_at,
                attempts=row.attempts + 1,
            )
            await dispatcher.dispatch(ctx, event)
            async with owner.begin() as connection:
                await connection.execute(
                    text(
                        "UPDATE outbox SET status = 'delivered', delivered_at = now() "
                        "WHERE tenant_id = :t AND id = :i"
                    ),
                    {"t": row.tenant_id, "i": row.id},
                )
    finally:
        await redis.aclose()
    return len(rows)


def now() -> datetime:
    return datetime.now(UTC)


async def relay_due(owner: AsyncEngine, relay: Any, topic: str) -> None:
    """One pass of `relay` over `topic`'s rows as if every retry delay had passed; rows of
    other topics (booking events, notifications, invoices) count as sent."""
    async with owner.begin() as connection:
        await connection.execute(
            text(
                "UPDATE outbox SET status = 'delivered', delivered_at = now() "
                "WHERE status = 'pending' AND topic <> :topic"
            ),
            {"topic": topic},
        )
        await connection.execute(
            text("UPDATE outbox SET available_at = now() WHERE status = 'pending'")
        )
        await connection.execute(
            text("UPDATE outbox_deliveries SET available_at = now() WHERE status = 'pending'")
        )
    await relay.run_once()
