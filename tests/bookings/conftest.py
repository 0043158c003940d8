"""A session factory for races: its own bounded pool, so a hundred concurrent attempts queue
for connections instead of exhausting the server's max_connections (100 here, shared with
other test runs). Up to RACE_CONNECTIONS attempts hold a connection at the same moment."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from app.db import session_factory
from app.settings import Settings

RACE_CONNECTIONS = 40


@pytest.fixture(scope="session")
async def race_sessions(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_async_engine(
        settings.runtime_database_url, pool_size=RACE_CONNECTIONS, max_overflow=0, pool_timeout=120
    )
    yield session_factory(engine)
    await engine.dispose()
