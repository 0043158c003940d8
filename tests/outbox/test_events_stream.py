from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn
from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.edge.asgi import create_app
from app.events.live import channel
from app.outbox.dispatch import Dispatcher
from app.settings import Settings
from app.worker.jobs import events as event_jobs
from tests.factories import Business, sign_up
from tests.outbox.conftest import RelayFactory, stage_one

Client = AsyncTestClient[Litestar]


@pytest.fixture
async def server_url(settings: Settings) -> AsyncIterator[str]:
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await asyncio.wait_for(task, 10)


class Stream:
    def __init__(self, response: httpx.Response) -> None:
        self._lines = response.aiter_lines()

    async def next_event(self, timeout: float = 5.0) -> dict[str, Any]:
        return await asyncio.wait_for(self._read(), timeout)

    async def _read(self) -> dict[str, Any]:
        fields: dict[str, str] = {}
        async for line in self._lines:
            if not line:
                if "data" in fields:
                    return {
                        "id": int(fields["id"]),
                        "event": fields["event"],
                        "data": json.loads(fields["data"]),
                    }
                fields = {}
                continue
            name, _, value = line.partition(":")
            if name:
                fields[name] = value.lstrip()
        raise AssertionError("stream ended")


@contextlib.asynccontextmanager
async def open_stream(
    http: httpx.AsyncClient,
    business: Business,
    redis: Redis,
    namespace: str,
    last_event_id: int | None = None,
) -> AsyncIterator[Stream]:
    headers = dict(business.headers)
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    name = channel(namespace, business.tenant_id)
    before = dict(await redis.pubsub_numsub(name))[name.encode()]
    async with http.stream("GET", "/api/v1/events/stream", headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        stream = Stream(response)
        for _ in range(200):
            if dict(await redis.pubsub_numsub(name))[name.encode()] > before:
                break
            await asyncio.sleep(0.01)
        yield stream


async def test_sse_streams_only_the_callers_tenant_and_replays_after_last_event_id(
    client: Client,
    server_url: str,
    sessions: async_sessionmaker[AsyncSession],
    make_relay: RelayFactory,
    redis: Redis,
    settings: Settings,
) -> None:
    salon, cabins = await sign_up(client), await sign_up(client)
    dispatcher = Dispatcher()
    event_jobs.register_handlers(dispatcher)
    dispatcher.register("invoice.send", _ignore)
    relay = make_relay(dispatcher)
    ns = settings.redis_namespace
    booking = uuid.uuid4()
    async with httpx.AsyncClient(base_url=server_url, timeout=10) as http:
        async with (
            open_stream(http, salon, redis, ns) as salon_stream,
            open_stream(http, cabins, redis, ns) as cabins_stream,
        ):
            # The other tenant's event is published first: if it leaked, it would arrive first.
            theirs = await stage_one(sessions, cabins.tenant_id, "booking.placed", uuid.uuid4())
            await relay.drain()
            await stage_one(sessions, salon.tenant_id, "invoice.send", booking)
            mine = await stage_one(
                sessions, salon.tenant_id, "booking.placed", booking, {"status": "confirmed"}
            )
            await relay.drain()
            first = await salon_stream.next_event()
            assert first["data"]["id"] == str(mine)
            assert first["event"] == "booking.placed"
            assert first["data"]["payload"] == {"status": "confirmed"}
            other = await cabins_stream.next_event()
            assert other["data"]["id"] == str(theirs)

        # Missed while disconnected: replayed from the table on reconnect.
        missed = await stage_one(sessions, salon.tenant_id, "booking.cancelled", booking)
        await relay.drain()
        async with open_stream(http, salon, redis, ns, last_event_id=first["id"]) as again:
            replayed = await again.next_event()
            assert (replayed["data"]["id"], replayed["event"]) == (str(missed), "booking.cancelled")
            live = await stage_one(sessions, salon.tenant_id, "booking.completed", booking)
            await relay.drain()
            assert (await again.next_event())["data"]["id"] == str(live)
        async with open_stream(http, cabins, redis, ns, last_event_id=0) as theirs_again:
            replay = await theirs_again.next_event()
            assert replay["data"]["id"] == str(theirs)
            with pytest.raises(TimeoutError):
                await theirs_again.next_event(timeout=0.5)


async def _ignore(*_: object) -> None:
    return None
