"""Worker wiring for the outbox: the relay as a background task and the janitor cron job.

worker.py builds the Dispatcher from the registry (app/worker/registry.py) into JobDeps, with
the RelayConfig (tests shorten the lease); the handlers get the same JobDeps as ctx.deps.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from arq.cron import cron
from sqlalchemy import text

from app import traces
from app.outbox.dispatch import HandlerContext
from app.outbox.relay import Relay, libpq_url, new_worker_id
from app.worker.context import WorkerContext, context_of

log = structlog.get_logger()

JANITOR = "outbox.purge"
DELIVERED_RETENTION = timedelta(days=7)
PURGE_CHUNK = 5000


def build_relay(context: WorkerContext) -> Relay:
    deps = context.deps
    handler_context = HandlerContext(
        sessions=context.sessions,
        redis=context.redis,
        namespace=context.settings.redis_namespace,
        worker_id=new_worker_id(),
        deps=deps,
    )
    relay = Relay(
        context.engine,
        deps.dispatcher,
        handler_context,
        config=deps.relay,
        listen_url=libpq_url(context.settings.runtime_database_url),
        metrics=deps.relay_metrics,
    )
    traces.instrument_engine(relay.engine)
    return relay


async def run_relay(context: WorkerContext) -> None:
    relay = build_relay(context)
    log.info(
        "outbox.relay_started",
        worker_id=relay.worker_id,
        topics=relay.dispatcher.topics,
        channels=relay.dispatcher.channels,
    )
    stopper = asyncio.create_task(_stop_when(context, relay))
    try:
        await relay.run()
    finally:
        stopper.cancel()


async def _stop_when(context: WorkerContext, relay: Relay) -> None:
    await context.stopping.wait()
    relay.stop()


async def purge_delivered(ctx: dict[str, Any]) -> int:
    """Delete delivered rows past retention and expired idempotency keys, in chunks."""
    context = context_of(ctx)
    now = datetime.now(UTC)
    idempotency_before = now - timedelta(hours=context.settings.idempotency_ttl_hours)
    total = 0
    for sql, before in (
        ("SELECT outbox_purge_delivered(:before, :limit)", now - DELIVERED_RETENTION),
        ("SELECT idempotency_purge_expired(:before, :limit)", idempotency_before),
    ):
        while True:
            async with context.engine.begin() as connection:
                deleted = int(
                    (
                        await connection.execute(
                            text(sql), {"before": before, "limit": PURGE_CHUNK}
                        )
                    ).scalar_one()
                )
            total += deleted
            if deleted < PURGE_CHUNK:
                break
    log.info("outbox.purged", deleted=total)
    return total


BACKGROUND = [run_relay]
CRON_JOBS = [cron(purge_delivered, name=JANITOR, minute={7, 37}, run_at_startup=False, unique=True)]
