from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections import defaultdict
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.db import tenant_transaction
from app.outbox.service import stage
from app.settings import Settings
from tests.infra import ROOT
from tests.outbox.conftest import make_tenant
from tests.outbox.sink import SINK_URL_ENV, TOPIC, Sink

ROWS = 5000
AGGREGATES = 250

WORKER = """
import os
from dataclasses import replace

import worker
from app.outbox.relay import RelayConfig
from app.settings import load_settings
from app.worker.deps import JobDeps
from tests.outbox import sink

settings = load_settings(os.environ["W_DB"], os.environ["W_REDIS"], environment="test",
                         redis_namespace=os.environ["W_NS"])
config = RelayConfig(batch_size=100, concurrency=32, lease_seconds=2, poll_interval=0.2)


def customize(deps: JobDeps) -> JobDeps:
    sink.register_handlers(deps.dispatcher)
    return replace(deps, relay=config)


worker.build_worker(settings, customize=customize).run()
"""


def start_worker(settings: Settings, sink_url: str, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        SINK_URL_ENV: sink_url,
        "W_DB": settings.database_url,
        "W_REDIS": settings.redis_url,
        "W_NS": settings.redis_namespace,
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-c", WORKER], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=out
        )


async def delivered_count(owner_engine: AsyncEngine) -> int:
    async with owner_engine.connect() as connection:
        return int(
            (
                await connection.execute(
                    text("SELECT count(*) FROM outbox WHERE status = 'delivered'")
                )
            ).scalar_one()
        )


async def test_sigkilled_worker_mid_drain_loses_nothing_and_effects_apply_once(
    owner_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    tmp_path: Path,
) -> None:
    tenant_id = await make_tenant(owner_engine)
    staged: dict[str, tuple[str, int]] = {}
    aggregates = [uuid.uuid4() for _ in range(AGGREGATES)]

    async def stage_chunk(start: int) -> None:
        async with tenant_transaction(sessions, tenant_id) as session:
            for n in range(start, start + 500):
                aggregate = aggregates[n % AGGREGATES]
                event_id = await stage(session, tenant_id, TOPIC, "booking", aggregate, {"n": n})
                staged[str(event_id)] = (str(aggregate), n)

    for start in range(0, ROWS, 500):
        await stage_chunk(start)

    sink = Sink()
    url = await sink.start()
    log = tmp_path / "worker.log"
    first = start_worker(settings, url, log)
    try:
        for _ in range(600):
            if sum(sink.requests.values()) >= 1500 or first.poll() is not None:
                break
            await asyncio.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.wait()
        assert first.returncode == -signal.SIGKILL, log.read_text()
        assert await delivered_count(owner_engine) < ROWS

        second = start_worker(settings, url, log)
        try:
            # Up to 4 minutes: the killed worker's leases run out after 30 s, and a loaded
            # 2-core machine (two pytest workers at once) drains far slower than an idle one.
            for _ in range(2400):
                if await delivered_count(owner_engine) == ROWS:
                    break
                await asyncio.sleep(0.1)
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=20)
    finally:
        if first.poll() is None:
            first.kill()
        await sink.stop()

    assert await delivered_count(owner_engine) == ROWS, log.read_text()[-3000:]
    # Every row reached the sink, with its own id as the key; nothing foreign arrived.
    assert set(sink.requests) == set(staged)
    assert len(sink.effects) == ROWS
    duplicates = sum(sink.requests.values()) - ROWS
    print(f"crash test: {sum(sink.requests.values())} requests, {duplicates} duplicates")
    # Duplicates are retries of the same key, and effects landed in per-aggregate order.
    order: dict[str, list[int]] = defaultdict(list)
    for key in sink.first_seen:
        aggregate, n = staged[key]
        order[aggregate].append(n)
    assert all(ns == sorted(ns) for ns in order.values())
    assert sum(len(ns) for ns in order.values()) == ROWS
