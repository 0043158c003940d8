"""The API's pool keeps the connections a burst made it open (app.db.service_engine): the next
burst finds them, instead of starting a PostgreSQL backend for each connection beyond the
pool's usual size, as SQLAlchemy's overflow did (it closes those when they come back)."""

from __future__ import annotations

from litestar import Litestar
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

BURST = 20  # more than the 10 an engine keeps by default


async def backends_of_a_burst(engine: AsyncEngine) -> set[int]:
    """BURST connections held at once, as many concurrent requests hold them; their backends."""
    connections = [await engine.connect() for _ in range(BURST)]
    try:
        return {
            (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            for connection in connections
        }
    finally:
        for connection in connections:
            await connection.close()


async def test_a_second_burst_finds_the_connections_the_first_opened(app: Litestar) -> None:
    engine: AsyncEngine = app.state.engine
    first = await backends_of_a_burst(engine)
    second = await backends_of_a_burst(engine)
    assert len(first) == BURST
    assert second == first, f"{len(second - first)} new backends started for the second burst"
