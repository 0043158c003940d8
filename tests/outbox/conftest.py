"""Outbox test helpers: tenants inserted directly, staging, and relays on the test database."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.db import tenant_transaction
from app.outbox.dispatch import Dispatcher, HandlerContext
from app.outbox.relay import Relay, RelayConfig, libpq_url, new_worker_id
from app.outbox.service import stage
from app.settings import Settings

FAST = RelayConfig(
    batch_size=50,
    concurrency=16,
    lease_seconds=10,
    poll_interval=0.05,
    max_attempts=5,
    backoff_base=0.01,
    backoff_cap=0.05,
)


async def make_tenant(owner_engine: AsyncEngine) -> uuid.UUID:
    tenant_id = uuid.uuid4()
    async with owner_engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO tenants (id, slug, name, currency, timezone) "
                "VALUES (:id, :slug, 'Test', 'EGP', 'Africa/Cairo')"
            ),
            {"id": tenant_id, "slug": f"t-{tenant_id.hex[:12]}"},
        )
    return tenant_id


async def stage_one(
    sessions: async_sessionmaker[AsyncSession],
    tenant_id: uuid.UUID,
    topic: str,
    aggregate_id: uuid.UUID,
    payload: dict[str, Any] | None = None,
    aggregate_type: str = "booking",
) -> uuid.UUID:
    async with tenant_transaction(sessions, tenant_id) as session:
        return await stage(session, tenant_id, topic, aggregate_type, aggregate_id, payload or {})


async def outbox_rows(owner_engine: AsyncEngine) -> list[Any]:
    async with owner_engine.connect() as connection:
        return list(
            await connection.execute(
                text(
                    "SELECT id, seq, topic, status, attempts, last_error, aggregate_id "
                    "FROM outbox ORDER BY seq"
                )
            )
        )


RelayFactory = Callable[..., Relay]


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[Redis]:
    client = Redis.from_url(settings.redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def make_relay(
    app_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis,
    settings: Settings,
) -> AsyncIterator[RelayFactory]:
    built: list[Relay] = []

    def build(
        dispatcher: Dispatcher, config: RelayConfig = FAST, *, redis_client: Redis | None = None
    ) -> Relay:
        ctx = HandlerContext(
            sessions=sessions,
            redis=redis_client or redis,
            namespace=settings.redis_namespace,
            worker_id=new_worker_id(),
        )
        relay = Relay(
            app_engine,
            dispatcher,
            ctx,
            config=config,
            listen_url=libpq_url(settings.runtime_database_url),
            seed=7,
        )
        built.append(relay)
        return relay

    yield build
    for relay in built:
        await relay.close()
