"""Calendar handler fixtures: a shop with a connected resource, Google behind respx."""

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
from app.worker.config import GoogleConfig
from tests.tenant_settings.support import World, handler_context, make_world

API = "https://gcal.test/calendar/v3"
TOKEN_URL = "https://oauth2.test/token"
CLIENT_ID = "1234-reckon.apps.googleusercontent.com"


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
def google() -> Iterator[respx.MockRouter]:
    # assert_all_mocked: any request to a route not declared fails the test.
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as router:
        yield router


@pytest.fixture
async def world(owner_engine: AsyncEngine, settings: Settings) -> World:
    return await make_world(owner_engine, settings.secret_key, resources=2)


@pytest.fixture
def ctx(sessions: Any, redis: Redis, http: httpx.AsyncClient, world: World) -> HandlerContext:
    config = GoogleConfig(
        client_id=CLIENT_ID, client_secret="platform-secret", api_base=API, token_url=TOKEN_URL
    )
    return handler_context(sessions, redis, http, world.box, google=config)
