"""Helpers for integration handler tests: bookings written as the owner, provider settings
saved through the use case, outbox events and handler contexts built by hand."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.gateways.accounts import Providers
from app.integrations.crypto import SecretBox
from app.outbox.dispatch import HandlerContext
from app.outbox.models import OutboxEvent
from app.tenancy.service import Principal
from app.tenant_settings.service import update_provider_settings
from app.worker.deps import JobDeps
from tests.bookings.setup import Shop, make_shop

START = datetime(2030, 1, 2, 8, 0, tzinfo=UTC)  # 10:00 in Cairo


def owner_of(tenant_id: uuid.UUID) -> Principal:
    return Principal(uuid.uuid4(), tenant_id, "owner", "owner@example.com")


async def make_booking(
    owner_engine: AsyncEngine,
    shop: Shop,
    *,
    start: datetime = START,
    phone: str | None = "+20 100 123 4567",
    locale: str = "en",
    status: str = "confirmed",
    resource_id: uuid.UUID | None = None,
    created_at: datetime | None = None,
    version: int = 1,
) -> uuid.UUID:
    booking_id = uuid.uuid4()
    end = start + timedelta(hours=1)
    async with owner_engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO bookings (tenant_id, id, branch_id, service_id, resource_id, "
                "customer_name, customer_email, customer_phone, customer_locale, starts_at, "
                "ends_at, blocked, exclusive, status, hold_expires_at, unit_price_minor, "
                "pricing, quantity, total_minor, currency, payment_provider, version, "
                "created_at) VALUES (:t, :id, :b, :s, :r, 'Layla Hassan', 'layla@example.com', "
                ":phone, :locale, :start, :end, tstzrange(:start, :end, '[)'), true, :status, "
                ":hold, 10000, 'fixed', 1, 10000, 'EGP', 'cash', :version, :created)"
            ),
            {
                "t": shop.tenant_id,
                "id": booking_id,
                "b": shop.branch_id,
                "s": shop.service_id,
                "r": resource_id or shop.resource_id,
                "phone": phone,
                "locale": locale,
                "start": start,
                "end": end,
                "status": status,
                "hold": start if status == "pending_payment" else None,
                "version": version,
                "created": created_at or start - timedelta(days=7),
            },
        )
    return booking_id


async def move_booking(
    owner_engine: AsyncEngine,
    tenant_id: uuid.UUID,
    booking_id: uuid.UUID,
    *,
    start: datetime | None = None,
    resource_id: uuid.UUID | None = None,
    status: str | None = None,
) -> None:
    """Change a booking as the bookings domain would (bumping its version)."""
    sets = ["version = version + 1"]
    params: dict[str, Any] = {"t": tenant_id, "id": booking_id}
    if start is not None:
        sets += ["starts_at = :s", "ends_at = :e", "blocked = tstzrange(:s, :e, '[)')"]
        params |= {"s": start, "e": start + timedelta(hours=1)}
    if resource_id is not None:
        sets.append("resource_id = :r")
        params["r"] = resource_id
    if status is not None:
        sets.append("status = :status")
        params["status"] = status
    async with owner_engine.begin() as connection:
        await connection.execute(
            text(f"UPDATE bookings SET {', '.join(sets)} WHERE tenant_id = :t AND id = :id"),
            params,
        )


async def enable(
    sessions: async_sessionmaker[AsyncSession],
    box: SecretBox,
    tenant_id: uuid.UUID,
    providers: Sequence[str],
    credentials: dict[str, dict[str, str | None]] | None = None,
) -> None:
    async with sessions() as session:
        await update_provider_settings(
            session,
            owner_of(tenant_id),
            box,
            datetime.now(UTC),
            enabled=[*providers, "cash"],
            credentials=credentials,
        )


def booking_event(
    tenant_id: uuid.UUID,
    topic: str,
    booking_id: uuid.UUID,
    *,
    version: int = 1,
    attempts: int = 1,
    event_id: uuid.UUID | None = None,
) -> OutboxEvent:
    return OutboxEvent(
        tenant_id=tenant_id,
        id=event_id or uuid.uuid4(),
        seq=1,
        topic=topic,
        aggregate_type="booking",
        aggregate_id=booking_id,
        payload={"event": topic, "booking_id": str(booking_id), "version": version},
        created_at=datetime.now(UTC),
        attempts=attempts,
    )


def handler_context(
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis,
    http: httpx.AsyncClient,
    box: SecretBox,
    **wired: Any,
) -> HandlerContext[JobDeps]:
    """A handler context wired like the worker's: `wired` sets JobDeps fields (google=...,
    whatsapp=...)."""
    return HandlerContext(
        sessions=sessions,
        redis=redis,
        namespace="reckon-test",
        worker_id="test-worker",
        deps=JobDeps(providers=Providers(http=http, secret_box=box), **wired),
    )


@dataclass
class World:
    shop: Shop
    box: SecretBox


async def make_world(owner_engine: AsyncEngine, secret_key: str, resources: int = 1) -> World:
    return World(await make_shop(owner_engine, resources=resources), SecretBox(secret_key))
