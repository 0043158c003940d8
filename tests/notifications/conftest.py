"""WhatsApp handler fixtures: a shop, Meta's Graph API behind respx."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import respx
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from app.outbox.dispatch import HandlerContext
from app.settings import Settings
from app.worker.config import WhatsAppConfig
from tests.tenant_settings.support import World, handler_context, make_world

GRAPH = "https://graph.test"
PLATFORM_PHONE_ID = "100000000000001"


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[Redis]:
    client = Redis.from_url(settings.redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def meta() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as router:
        yield router


@pytest.fixture
async def world(owner_engine: AsyncEngine, settings: Settings) -> World:
    return await make_world(owner_engine, settings.secret_key)


@pytest.fixture
def ctx(sessions: Any, redis: Redis, http: httpx.AsyncClient, world: World) -> HandlerContext:
    config = WhatsAppConfig(
        access_token="platform-token",
        phone_number_id=PLATFORM_PHONE_ID,
        api_base=GRAPH,
        api_version="v21.0",
    )
    return handler_context(sessions, redis, http, world.box, whatsapp=config)
