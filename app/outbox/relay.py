"""The relay: claims due outbox rows across tenants, dispatches them, records the outcome.

Wakes on LISTEN/NOTIFY and polls as a fallback, so a lost notification only delays. Rows are
leased (locked_until), not locked for the duration of a handler: a worker that dies leaves
its rows to be claimed again when the lease runs out. Delivery is at least once.

Order: a row is claimable only when every earlier row of its aggregate is delivered. A dead
row therefore holds back its aggregate's later events until it is retried (API or CLI):
delivering a booking's "cancelled" before its "confirmed" would be worse than waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import structlog
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.outbox.dispatch import Dispatcher, HandlerContext
from app.outbox.errors import PermanentError, RetryableError
from app.outbox.metrics import RelayMetrics
from app.outbox.models import NOTIFY_CHANNEL, OutboxEvent

log = structlog.get_logger()

Aggregate = tuple[uuid.UUID, str, uuid.UUID]


@dataclass(frozen=True, slots=True)
class RelayConfig:
    batch_size: int = 200
    lanes: int = 2
    concurrency: int = 32
    # A lease must outlast any handler; handlers are cut off before it runs out.
    lease_seconds: float = 30.0
    poll_interval: float = 1.0
    max_attempts: int = 10
    backoff_base: float = 1.0
    backoff_cap: float = 600.0


def backoff_seconds(attempts: int, config: RelayConfig, rng: random.Random) -> float:
    """Exponential backoff with equal jitter: half fixed, half random, capped."""
    delay = min(config.backoff_cap, config.backoff_base * 2 ** max(attempts - 1, 0))
    return float(delay / 2 + rng.uniform(0, delay / 2))


def libpq_url(sqlalchemy_url: str) -> str:
    return (
        make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(hide_password=False)
    )


def new_worker_id() -> str:
    return f"relay-{uuid.uuid4().hex[:12]}"


@dataclass
class _Batch:
    delivered: list[OutboxEvent] = field(default_factory=list)
    released: list[OutboxEvent] = field(default_factory=list)


class Relay:
    def __init__(
        self,
        engine: AsyncEngine,
        dispatcher: Dispatcher,
        ctx: HandlerContext,
        *,
        config: RelayConfig | None = None,
        listen_url: str | None = None,
        metrics: RelayMetrics | None = None,
        seed: int | None = None,
    ) -> None:
        # Bookkeeping statements are single calls of the outbox_* functions: autocommit and no
        # pre-ping save round trips. They also skip the WAL flush wait: a lease or a
        # "delivered" mark lost in a database crash only means the row is delivered again,
        # which at-least-once delivery allows; the flush was most of a claim's latency.
        self.engine = create_async_engine(
            engine.url,
            isolation_level="AUTOCOMMIT",
            pool_pre_ping=False,
            pool_size=4,
            max_overflow=8,
            connect_args={"options": "-c synchronous_commit=off"},
        )
        self.dispatcher = dispatcher
        self.ctx = ctx
        self.config = config or RelayConfig()
        self.listen_url = listen_url
        self.metrics = metrics or RelayMetrics()
        self.worker_id = ctx.worker_id
        self._rng = random.Random(seed)  # noqa: S311 - jitter, not security
        self._wake = asyncio.Event()

    async def close(self) -> None:
        await self.engine.dispose()

    async def run(self) -> None:
        """Forever: drain what is due, then sleep until notified or the poll interval."""
        listener = asyncio.create_task(self._listen()) if self.listen_url else None
        try:
            while True:
                try:
                    await self.drain()
                except Exception:
                    log.exception("outbox.relay_failed", worker_id=self.worker_id)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.config.poll_interval)
                self._wake.clear()
        finally:
            if listener is not None:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await listener
            await self.close()

    async def drain(self) -> int:
        """Claim and handle until nothing is due. Lanes overlap one batch's database round
        trips with another's handlers; SKIP LOCKED keeps them from sharing rows."""
        lanes = await asyncio.gather(*(self._drain_lane() for _ in range(self.config.lanes)))
        return sum(lanes)

    async def _drain_lane(self) -> int:
        total = 0
        while True:
            claimed = await self.run_once()
            total += claimed
            if claimed < self.config.batch_size:
                return total

    async def run_once(self) -> int:
        events = await self.claim()
        if events:
            await self.process(events)
        return len(events)

    async def claim(self) -> list[OutboxEvent]:
        async with self.engine.connect() as connection:
            rows = await connection.execute(
                text("SELECT * FROM outbox_claim(:worker, :limit, :lease)"),
                {
                    "worker": self.worker_id,
                    "limit": self.config.batch_size,
                    "lease": self.config.lease_seconds,
                },
            )
            events = [
                OutboxEvent(
                    tenant_id=r.tenant_id,
                    id=r.id,
                    seq=r.seq,
                    topic=r.topic,
                    aggregate_type=r.aggregate_type,
                    aggregate_id=r.aggregate_id,
                    payload=r.payload,
                    created_at=r.created_at,
                    attempts=r.attempts,
                )
                for r in rows
            ]
        events.sort(key=lambda event: event.seq)
        return events

    async def process(self, events: Sequence[OutboxEvent]) -> None:
        """Aggregates run concurrently; the events of one aggregate strictly in seq order."""
        groups: dict[Aggregate, list[OutboxEvent]] = {}
        for event in events:
            groups.setdefault(event.aggregate, []).append(event)
        deadline = time.monotonic() + self.config.lease_seconds * 0.8
        batch = _Batch()
        gate = asyncio.Semaphore(self.config.concurrency)

        async def run_group(group: list[OutboxEvent]) -> None:
            async with gate:
                await self._run_group(group, deadline, batch)

        try:
            await asyncio.gather(*(run_group(group) for group in groups.values()))
        finally:
            await self._settle(batch)

    async def _run_group(self, group: list[OutboxEvent], deadline: float, batch: _Batch) -> None:
        for index, event in enumerate(group):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not await self._attempt(event, remaining, batch):
                # Later events of this aggregate must wait for this one: hand them back.
                start = index if remaining <= 0 else index + 1
                batch.released.extend(group[start:])
                return

    async def _attempt(self, event: OutboxEvent, budget: float, batch: _Batch) -> bool:
        with structlog.contextvars.bound_contextvars(
            outbox_id=str(event.id),
            topic=event.topic,
            tenant_id=str(event.tenant_id),
            attempt=event.attempts,
        ):
            try:
                async with asyncio.timeout(budget):
                    await self.dispatcher.dispatch(self.ctx, event)
            except PermanentError as error:
                await self._fail(event, error, dead=True)
                return False
            except RetryableError as error:
                await self._fail(event, error, retry_after=error.retry_after)
                return False
            except Exception as error:  # a bug or an unclassified failure: retry, loudly
                await self._fail(event, error)
                return False
            batch.delivered.append(event)
            latency = (datetime.now(UTC) - event.created_at).total_seconds()
            self.metrics.delivered(latency, event.attempts)
            log.info("outbox.delivered", latency_ms=round(latency * 1000, 1))
            return True

    async def _fail(
        self,
        event: OutboxEvent,
        error: BaseException,
        *,
        dead: bool = False,
        retry_after: float | None = None,
    ) -> None:
        dead = dead or event.attempts >= self.config.max_attempts
        delay = (
            retry_after
            if retry_after is not None
            else backoff_seconds(event.attempts, self.config, self._rng)
        )
        retry_at = datetime.now(UTC) + timedelta(seconds=0 if dead else delay)
        message = f"{type(error).__name__}: {error}"
        async with self.engine.connect() as connection:
            await connection.execute(
                text("SELECT outbox_mark_failed(:tenant_id, :id, :error, :retry_at, :dead)"),
                {
                    "tenant_id": event.tenant_id,
                    "id": event.id,
                    "error": message,
                    "retry_at": retry_at,
                    "dead": dead,
                },
            )
        self.metrics.failed(dead)
        if dead:
            log.warning("outbox.dead", error=message)
        else:
            log.info("outbox.retry_scheduled", error=message, retry_in_s=round(delay, 3))

    async def _settle(self, batch: _Batch) -> None:
        statements: list[tuple[str, list[OutboxEvent]]] = [
            ("SELECT outbox_mark_delivered(:tenant_ids, :ids)", batch.delivered),
            ("SELECT outbox_release(:tenant_ids, :ids)", batch.released),
        ]
        async with self.engine.connect() as connection:
            for sql, events in statements:
                if events:
                    await connection.execute(text(sql), _id_arrays(events))

    async def _listen(self) -> None:
        assert self.listen_url is not None
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.listen_url, autocommit=True
                ) as connection:
                    await connection.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    # Anything committed while we were not listening is picked up now.
                    self._wake.set()
                    async for _ in connection.notifies():
                        self._wake.set()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("outbox.listen_failed", error=f"{type(error).__name__}: {error}")
                await asyncio.sleep(1.0)


def _id_arrays(events: Sequence[OutboxEvent]) -> dict[str, Any]:
    return {
        "tenant_ids": [event.tenant_id for event in events],
        "ids": [event.id for event in events],
    }
