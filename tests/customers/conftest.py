"""A bounded pool for the customer races (as tests/bookings/conftest.py does for slots)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from app.db import session_factory
from app.settings import Settings

RACE_CONNECTIONS = 30


@pytest.fixture(scope="session")
async def race_sessions(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_async_engine(
        settings.runtime_database_url, pool_size=RACE_CONNECTIONS, max_overflow=0, pool_timeout=120
    )
    yield session_factory(engine)
    await engine.dispose()
