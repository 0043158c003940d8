"""The pool's liveness check (app.db.create_engine): a connection back in the pool moments
ago is used without a ping's round trip, and one the server has ended since is still never
handed out - as with a ping on every checkout."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.db import PING_AFTER_IDLE, create_engine, needs_ping
from app.settings import Settings


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings.runtime_database_url, pool_size=1, max_overflow=0)
    yield engine
    await engine.dispose()


async def backend_pid(connection: AsyncConnection) -> int:
    return int((await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def test_a_healthy_connection_back_moments_ago_needs_no_ping(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await backend_pid(connection)
        raw = (await connection.get_raw_connection()).driver_connection
        assert raw is not None
        assert not needs_ping(raw, 0.0)
        assert needs_ping(raw, PING_AFTER_IDLE)


async def test_a_connection_the_server_ended_is_replaced_before_use(
    engine: AsyncEngine, owner_engine: AsyncEngine
) -> None:
    async with engine.connect() as connection:
        first = await backend_pid(connection)
    async with owner_engine.connect() as owner:
        ended = await owner.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
    assert ended
    # The server's goodbye reaches the socket within moments; the checkout below comes well
    # before PING_AFTER_IDLE, so only the socket tells it the connection is gone.
    await asyncio.sleep(0.05)
    async with engine.connect() as connection:
        second = await backend_pid(connection)
    assert second != first
