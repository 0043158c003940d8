"""An applier cancelled while a NOTIFY wakes it stops (the worker stops it by cancelling):
its sleep between drains does not swallow the cancellation (app.waiting.woken)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import create_engine, session_factory
from app.settings import app_role_url
from app.worker.jobs.inbox import Applier
from tests.inbox.support import owner_url
from tests.infra import libpq
from tests.stopping import stops_when_cancelled_as_woken


async def test_an_applier_cancelled_as_it_is_woken_stops(owner_engine: AsyncEngine) -> None:
    url = app_role_url(owner_url(owner_engine))
    engine = create_engine(url, pool_size=2)
    try:
        for _ in range(5):
            applier = Applier(engine, session_factory(engine), listen_url=libpq(url))
            assert await stops_when_cancelled_as_woken(applier.run, applier._wake)
    finally:
        await engine.dispose()
