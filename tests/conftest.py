"""Shared fixtures: real services, the migrated database, the app and an HTTP client."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.cli.embedded import EmbeddedServices
from app.db import create_engine, session_factory
from app.edge.asgi import create_app
from app.settings import Settings, load_settings
from tests import infra
from tests.inbox import support as inbox_support

STRIPE_WEBHOOK_SECRET = "whsec_reckon_test_secret"
KASHIER_API_KEY = "kashier-payment-api-key-test"


@pytest.fixture(scope="session")
def base_urls() -> Iterator[tuple[str, str]]:
    embedded = EmbeddedServices(Path(infra.ROOT / ".data" / "test"))
    try:
        yield infra.base_urls(embedded)
    finally:
        embedded.stop()


@pytest.fixture(scope="session")
def database_url(base_urls: tuple[str, str]) -> Iterator[str]:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    url = infra.create_worker_database(base_urls[0], worker)
    try:
        yield url
    finally:
        infra.drop_database(base_urls[0], url)


@pytest.fixture(scope="session")
def settings(database_url: str, base_urls: tuple[str, str]) -> Settings:
    return load_settings(
        database_url,
        base_urls[1],
        environment="test",
        log_json=True,
        redis_namespace=f"reckon-test-{uuid.uuid4().hex[:8]}",
        public_rate_limit_per_minute=1000,
        stripe_webhook_secret=STRIPE_WEBHOOK_SECRET,
        kashier_api_key=KASHIER_API_KEY,
        checkout_wait_seconds=0.0,
    )


@pytest.fixture(autouse=True)
def clean_tables(database_url: str) -> Iterator[None]:
    yield
    infra.truncate_all(database_url)


@pytest.fixture(autouse=True)
def inbox_database(database_url: str) -> None:
    """Where the inbox helpers (tests/inbox/support.py) find the database to drain."""
    inbox_support.DATABASE["url"] = database_url


@pytest.fixture(scope="session")
async def app_engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings.runtime_database_url, pool_size=20, max_overflow=120)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
async def owner_engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """The migration owner (superuser here): for assertions that must see every tenant."""
    engine = create_engine(settings.database_url, pool_size=5, max_overflow=5)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def sessions(app_engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return session_factory(app_engine)


@pytest.fixture(scope="session")
async def app(settings: Settings) -> Litestar:
    return create_app(settings)


@pytest.fixture(scope="session")
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


@pytest.fixture(scope="session")
async def live_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app served by uvicorn on a loopback port, and an httpx client for it.

    Litestar's test client runs requests one at a time through a portal; races need real
    concurrent requests on real parallel database connections, as in production."""
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings),
            host="127.0.0.1",
            port=0,
            log_level="warning",
            # Longer than any test: a kept-alive connection the server closes while the
            # client reuses it would surface as a ReadError that says nothing about the app.
            timeout_keep_alive=600,
        )
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", timeout=60.0, limits=limits
    ) as http:
        yield http
    server.should_exit = True
    await serving
