"""The inbox applier: applies stored provider events after the edge acknowledged them.

Runs as a background task of the worker, like the outbox relay: wakes on LISTEN reckon_inbox
(the edge NOTIFYs after storing an event at an idle inbox) and polls as a fallback, so a lost
notification only delays. Each round claims due rows with SKIP LOCKED under a lease
(`inbox_claim`): at most the oldest unfinished event of each payment, so one payment's events
apply in arrival order while different payments apply in parallel, and several appliers share
the work. Plain-looking captures that name the same business are applied in groups of up to
`capture_group`, one transaction each (payment_events.apply_captures); whatever a group leaves
is applied alone. While one claim is applied, events stored since are claimed alongside (at
most two claims in flight). An attempt that raises (lock contention beyond its retries, a bug,
the database going away) is retried with exponential backoff and jitter; after
`max_attempts` the event is marked dead: visible in the inbox (status 'dead', last_error)
and logged (`inbox.dead`), holding back only its own payment's later events until
`retry_dead` revives it. A killed applier's claims are picked up again when their lease
ends, and applying twice is harmless (payment_events.apply_stored locks the row and finds it
done).
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

from app.bookings.payment_events import (
    CaptureGroup,
    apply_captures,
    apply_stored,
    capture_groups,
)
from app.outbox.relay import libpq_url
from app.payments import inbox
from app.waiting import woken
from app.worker.config import ApplierConfig
from app.worker.context import WorkerContext

log = structlog.get_logger()

RECHECK_SECONDS = 0.02
CLAIMS_IN_FLIGHT = 2


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
                await woken(self._wake, self.config.poll_interval)
        finally:
            if listener is not None:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await listener
            await self.close()

    async def drain(self) -> int:
        """Claim and apply until nothing is due; returns how many attempts were made.

        While a claim's events are applied, events stored since (the edge's wake) are claimed
        alongside, and a full claim is followed by the next one at once: up to two claims in
        flight, so a slow event (a business's first capture opens its ledger accounts) holds
        back no event that came after it. After work, one more look a moment later: an event
        stored while ours was still unclaimed sent no NOTIFY (see migration 0032's
        inbox_wake) and may be claimable only just after our last empty claim."""
        total, looked_again, more = 0, False, True
        running: set[asyncio.Task[int]] = set()
        while True:
            if more and len(running) < CLAIMS_IN_FLIGHT:
                self._wake.clear()
                claimed = await self.claim()
                total += len(claimed)
                more = len(claimed) == self.config.batch_size
                if claimed:
                    looked_again = False
                    running.add(asyncio.create_task(self.apply_claimed(claimed)))
                if more and len(running) < CLAIMS_IN_FLIGHT:
                    continue
            if not running:
                if total == 0 or looked_again:
                    return total
                looked_again, more = True, True
                await woken(self._wake, RECHECK_SECONDS)  # or at once, when notified
                continue
            wake = asyncio.ensure_future(self._wake.wait())
            done, _ = await asyncio.wait({*running, wake}, return_when=asyncio.FIRST_COMPLETED)
            wake.cancel()
            more = more or self._wake.is_set()
            for task in done - {wake}:
                running.discard(task)
                task.result()

    async def run_once(self) -> int:
        """One claim, applied: how many events it claimed."""
        return await self.apply_claimed(await self.claim())

    async def claim(self) -> list[inbox.Claimed]:
        async with self.bookkeeping.connect() as connection:
            return await inbox.claim(
                connection, self.worker_id, self.config.batch_size, self.config.lease_seconds
            )

    async def apply_claimed(self, claimed: list[inbox.Claimed]) -> int:
        """Apply what one claim handed out: plain captures of a business in groups, the rest
        one by one, `concurrency` at a time."""
        if claimed:
            groups, alone = capture_groups(claimed, self.config.capture_group)
            await asyncio.gather(
                *(self.apply_group(group) for group in groups),
                *(self._guarded(item) for item in alone),
            )
        return len(claimed)

    async def _guarded(self, item: inbox.Claimed) -> None:
        async with self._gate:
            await self.apply(item)

    async def apply_group(self, group: CaptureGroup) -> None:
        """Plain captures of one business in one transaction; any event it leaves (not plain,
        or all of them when the transaction failed) is applied alone afterwards, alongside
        the others."""
        try:
            async with (
                self._gate,
                asyncio.timeout(self.config.lease_seconds * 0.4),
                self.sessions() as session,
            ):
                outcomes = await apply_captures(session, group, datetime.now(UTC))
        except Exception as error:
            log.info(
                "inbox.group_failed",
                error=f"{type(error).__name__}: {error}",
                size=len(group.claimed),
            )
            outcomes = {}
        left = [item for item in group.claimed if outcomes.get(item.id) is None]
        await asyncio.gather(*(self._guarded(item) for item in left))
        for item in group.claimed:
            applied = outcomes.get(item.id)
            if applied is not None:
                log.info(
                    "inbox.applied",
                    inbox_id=str(item.id),
                    provider=item.provider,
                    event_id=item.event_id,
                    status=applied.status,
                    detail=applied.detail,
                )

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
