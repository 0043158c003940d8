"""The inbox applier: applies stored provider events after the edge acknowledged them.

Runs as a background task of the worker, like the outbox relay: wakes on LISTEN reckon_inbox
(the edge NOTIFYs after storing an event at an idle inbox) and polls as a fallback, so a lost
notification only delays. Each round claims due rows with SKIP LOCKED under a lease
(`inbox_claim`): at most the oldest unfinished event of each payment, so one payment's events
apply in arrival order while different payments apply in parallel, and several appliers share
the work. An attempt that raises (lock contention beyond its retries, a bug, the database going
away) is retried with exponential backoff and jitter; after `max_attempts` the event is marked
dead: visible in the inbox (status 'dead', last_error) and logged (`inbox.dead`), holding back
only its own payment's later events until `retry_dead` revives it. A killed applier's claims
are picked up again when their lease ends, and applying twice is harmless
(payment_events.apply_stored locks the row and finds it done).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import structlog
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.bookings.payment_events import apply_stored
from app.outbox.relay import libpq_url
from app.payments import inbox
from app.worker.config import ApplierConfig
from app.worker.context import WorkerContext

log = structlog.get_logger()

RECHECK_SECONDS = 0.02


def backoff_seconds(attempts: int, config: ApplierConfig, rng: random.Random) -> float:
    """Exponential backoff with equal jitter: half fixed, half random, capped."""
    delay = min(config.backoff_cap, config.backoff_base * 2 ** max(attempts - 1, 0))
    return float(delay / 2 + rng.uniform(0, delay / 2))


class Applier:
    def __init__(
        self,
        engine: AsyncEngine,
        sessions: async_sessionmaker[AsyncSession],
        *,
        config: ApplierConfig | None = None,
        listen_url: str | None = None,
        seed: int | None = None,
    ) -> None:
        self.config = config or ApplierConfig()
        # Claims and failure marks are single statements: autocommit saves round trips.
        self.bookkeeping = create_async_engine(
            engine.url, isolation_level="AUTOCOMMIT", pool_pre_ping=False, pool_size=2
        )
        self.sessions = sessions
        self.listen_url = listen_url
        self.worker_id = f"inbox-{uuid.uuid4().hex[:12]}"
        self._rng = random.Random(seed)  # noqa: S311 - jitter, not security
        self._wake = asyncio.Event()
        self._gate = asyncio.Semaphore(self.config.concurrency)

    async def close(self) -> None:
        await self.bookkeeping.dispose()

    async def run(self) -> None:
        """Forever: apply what is due, then sleep until notified or the poll interval."""
        listener = asyncio.create_task(self._listen()) if self.listen_url else None
        try:
            while True:
                self._wake.clear()
                try:
                    await self.drain()
                except Exception:
                    log.exception("inbox.applier_failed", worker_id=self.worker_id)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.config.poll_interval)
        finally:
            if listener is not None:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await listener
            await self.close()

    async def drain(self) -> int:
        """Claim and apply until nothing is due; returns how many attempts were made. After
        work, one more look a moment later: an event stored while ours was still unclaimed
        sent no NOTIFY (see migration 0032's inbox_wake) and may be claimable only just
        after our last empty claim."""
        total = 0
        looked_again = False
        while True:
            claimed = await self.run_once()
            total += claimed
            if claimed:
                looked_again = False
                continue
            if total == 0 or looked_again:
                return total
            looked_again = True
            await asyncio.sleep(RECHECK_SECONDS)

    async def run_once(self) -> int:
        async with self.bookkeeping.connect() as connection:
            claimed = await inbox.claim(
                connection, self.worker_id, self.config.batch_size, self.config.lease_seconds
            )
        if claimed:
            await asyncio.gather(*(self._guarded(item) for item in claimed))
        return len(claimed)

    async def _guarded(self, item: inbox.Claimed) -> None:
        async with self._gate:
            await self.apply(item)

    async def apply(self, item: inbox.Claimed) -> None:
        with structlog.contextvars.bound_contextvars(
            inbox_id=str(item.id), provider=item.provider, event_id=item.event_id
        ):
            try:
                async with asyncio.timeout(self.config.lease_seconds * 0.8):
                    async with self.sessions() as session:
                        result = await apply_stored(session, item, datetime.now(UTC))
            except Exception as error:
                await self._failed(item, error)
                return
            log.info("inbox.applied", status=result.status, detail=result.detail)

    async def _failed(self, item: inbox.Claimed, error: BaseException) -> None:
        dead = item.attempts >= self.config.max_attempts
        delay = 0.0 if dead else backoff_seconds(item.attempts, self.config, self._rng)
        message = f"{type(error).__name__}: {error}"
        if dead:
            log.warning("inbox.dead", error=message, attempts=item.attempts)
        else:
            log.info("inbox.retry_scheduled", error=message, retry_in_s=round(delay, 3))
        async with self.bookkeeping.connect() as connection:
            await inbox.fail(
                connection,
                item.id,
                error=message,
                retry_at=datetime.now(UTC) + timedelta(seconds=delay),
                dead=dead,
            )

    async def _listen(self) -> None:
        assert self.listen_url is not None
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.listen_url, autocommit=True
                ) as connection:
                    await connection.execute(f"LISTEN {inbox.NOTIFY_CHANNEL}")
                    # Anything stored while we were not listening is picked up now.
                    self._wake.set()
                    async for _ in connection.notifies():
                        self._wake.set()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("inbox.listen_failed", error=f"{type(error).__name__}: {error}")
                await asyncio.sleep(1.0)


def build_applier(context: WorkerContext) -> Applier:
    return Applier(
        context.engine,
        context.sessions,
        config=context.deps.applier,
        listen_url=libpq_url(context.settings.runtime_database_url),
    )


async def run_applier(context: WorkerContext) -> None:
    applier = build_applier(context)
    log.info("inbox.applier_started", worker_id=applier.worker_id)
    await applier.run()


BACKGROUND = [run_applier]
