"""The relay: claims due outbox rows across tenants, dispatches them, records the outcome.

Wakes on LISTEN/NOTIFY and polls as a fallback, so a lost notification only delays. Rows are
leased (locked_until), not locked for the duration of a handler: a worker that dies leaves
its rows to be claimed again when the lease runs out. Delivery is at least once.

Channels: an event goes to every channel its topic routes to (WhatsApp, calendar, live
events...). It is attempted whole first; if some channel does not deliver, the event splits
(see claims.py) and from then on each of its channels is retried, declared dead and replayed
on its own, and a delivered channel never runs again for it.

Order is per (aggregate, channel): a channel's delivery waits until that channel has
delivered every earlier event of the aggregate. A dead delivery therefore holds back its
channel's later events of that aggregate until it is retried (API or CLI): sending a
booking's "cancelled" message before its "confirmed" one would be worse than waiting. The
aggregate's other channels carry on.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import structlog
from opentelemetry.trace import Span, SpanKind
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from structlog.contextvars import bind_contextvars, reset_contextvars

from app import traces
from app.db import CONNECT_TIMEOUT, POOL_TIMEOUT, driver
from app.outbox import claims
from app.outbox.claims import Aggregate, Claimed, Outcome, Settlement
from app.outbox.dispatch import Dispatcher, HandlerContext, Route, UnknownChannel, UnknownTopic
from app.outbox.errors import PermanentError, RetryableError
from app.outbox.metrics import RelayMetrics
from app.outbox.models import NOTIFY_CHANNEL, OutboxEvent
from app.waiting import woken

log = structlog.get_logger()

# The LISTEN connection's reconnect backoff, seconds.
LISTEN_BACKOFF_BASE = 0.25
LISTEN_BACKOFF_CAP = 10.0


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
            pool_timeout=POOL_TIMEOUT,
            connect_args={
                "options": "-c synchronous_commit=off",
                "connect_timeout": CONNECT_TIMEOUT,
            },
        )
        self.dispatcher = dispatcher
        self.ctx = ctx
        self.config = config or RelayConfig()
        self.listen_url = listen_url
        self.metrics = metrics or RelayMetrics()
        self.worker_id = ctx.worker_id
        self._rng = random.Random(seed)  # noqa: S311 - jitter, not security
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()

    async def close(self) -> None:
        await self.engine.dispose()

    def stop(self) -> None:
        """Claim nothing more; run() returns once the batches in hand are settled."""
        self._stopping.set()
        self._wake.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    async def run(self) -> None:
        """Until stop(): drain what is due, then sleep until notified or the poll interval.

        Survives PostgreSQL going away: a failed drain is logged and tried again next round
        (SQLAlchemy replaces the dead connections), and the listener reconnects with backoff.
        However it ends (stop(), or cancelled), it hands back every lease it still holds."""
        listener = asyncio.create_task(self._listen()) if self.listen_url else None
        try:
            while not self.stopping:
                try:
                    await self.drain()
                except Exception:
                    log.exception("outbox.relay_failed", worker_id=self.worker_id)
                if self.stopping:
                    break
                await woken(self._wake, self.config.poll_interval)
                self._wake.clear()
        finally:
            if listener is not None:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await listener
            await _shielded(self.release_leases())
            await self.close()

    async def release_leases(self) -> int:
        """Clear every lease this relay holds (without charging an attempt): another relay
        claims those rows at once instead of when the lease runs out. Covers a claim whose
        answer was lost to a cancellation."""
        try:
            async with self.engine.connect() as connection:
                released = int(
                    (
                        await connection.execute(
                            text("SELECT outbox_release_worker(:worker)"),
                            {"worker": self.worker_id},
                        )
                    ).scalar_one()
                )
        except Exception as error:  # the database is gone: the leases run out instead
            log.warning("outbox.release_failed", error=f"{type(error).__name__}: {error}")
            return 0
        if released:
            log.info("outbox.leases_released", worker_id=self.worker_id, released=released)
        return released

    async def drain(self) -> int:
        """Claim and handle until nothing is due. Lanes overlap one batch's database round
        trips with another's handlers; SKIP LOCKED keeps them from sharing rows."""
        lanes = await asyncio.gather(*(self._drain_lane() for _ in range(self.config.lanes)))
        return sum(lanes)

    async def _drain_lane(self) -> int:
        total = 0
        while not self.stopping:
            claimed = await self.run_once()
            total += claimed
            if claimed < self.config.batch_size:
                return total
        return total

    async def run_once(self) -> int:
        claimed = await self.claim()
        if claimed:
            await self.process(claimed)
        return len(claimed)

    async def claim(self) -> list[Claimed]:
        async with (
            self.engine.connect() as connection,
            driver(connection, claims.CLAIM, pipeline=False) as raw,
        ):
            return await claims.claim(
                raw, self.worker_id, self.config.batch_size, self.config.lease_seconds
            )

    async def process(self, claimed: Sequence[Claimed]) -> None:
        """Aggregates run concurrently; the claims of one aggregate strictly in seq order."""
        groups: dict[Aggregate, list[Claimed]] = {}
        for item in claimed:
            event = item.event
            key = (event.tenant_id, event.aggregate_type, event.aggregate_id)
            group = groups.get(key)
            if group is None:
                groups[key] = [item]
            else:
                group.append(item)
        deadline = time.monotonic() + self.config.lease_seconds * 0.8
        settlement = Settlement()
        # At most `concurrency` aggregates in flight, taken in seq order of their first claim:
        # that many runners sharing one queue, not a task (and a semaphore wait) per aggregate.
        queue = iter(list(groups.values()))

        async def runner() -> None:
            for group in queue:
                await self._run_group(group, deadline, settlement)

        try:
            runners = min(self.config.concurrency, len(groups))
            if runners == 1:
                await runner()
            else:
                await asyncio.gather(*(runner() for _ in range(runners)))
        finally:
            # Cancelled (the worker is stopping): what did not finish is handed back now.
            settled = {id(c) for c in (*settlement.delivered, *settlement.released)}
            settled.update(id(c) for c, _ in settlement.recorded)
            settlement.released.extend(c for c in claimed if id(c) not in settled)
            await _shielded(self._settle(settlement))

    async def _settle(self, settlement: Settlement) -> None:
        async with (
            self.engine.connect() as connection,
            driver(connection, claims.SETTLE, pipeline=False) as raw,
        ):
            await settlement.write(raw)

    async def _run_group(
        self, group: list[Claimed], deadline: float, settlement: Settlement
    ) -> None:
        # Channels an earlier claim of this aggregate left undelivered: later events must not
        # run them in this batch.
        owed: set[str] = set()
        for index, item in enumerate(group):
            if deadline - time.monotonic() <= 0:
                settlement.released.extend(group[index:])
                return
            if item.channel is not None:
                await self._deliver_channel(item, item.channel, owed, deadline, settlement)
            elif not await self._deliver_event(item, owed, deadline, settlement):
                # No channel at all: nothing is known to be independent of it.
                settlement.released.extend(group[index + 1 :])
                return

    async def _deliver_event(
        self, item: Claimed, owed: set[str], deadline: float, settlement: Settlement
    ) -> bool:
        event = item.event
        routes = self.dispatcher.routes_for(event.topic)
        if not routes:
            error = UnknownTopic(f"no handler registered for topic {event.topic!r}")
            await self._fail_event(event, error)
            return False
        held = owed | item.held
        outcomes: list[Outcome] = []
        for route in routes:
            budget = deadline - time.monotonic()
            if route.channel in held or budget <= 0:
                outcomes.append(self._held(event, route.channel))
            else:
                outcomes.append(await self._attempt(event, route, budget))
        if all(outcome.delivered for outcome in outcomes):
            settlement.delivered.append(item)
            return True
        settlement.recorded.extend((item, outcome) for outcome in outcomes)
        owed.update(outcome.channel for outcome in outcomes if not outcome.delivered)
        return True

    async def _deliver_channel(
        self,
        item: Claimed,
        channel: str,
        owed: set[str],
        deadline: float,
        settlement: Settlement,
    ) -> None:
        if channel in owed:
            settlement.released.append(item)
            return
        route = self.dispatcher.route(item.topic, channel)
        if route is None:
            error = UnknownChannel(f"no handler registered for channel {channel!r}")
            outcome = self._failed(item.event, channel, error, dead=True)
        else:
            outcome = await self._attempt(item.event, route, deadline - time.monotonic())
        settlement.recorded.append((item, outcome))
        if not outcome.delivered:
            owed.add(channel)

    async def _attempt(self, event: OutboxEvent, route: Route, budget: float) -> Outcome:
        # Logs from the handler name the event (set and reset by token: cheaper per row than
        # structlog's bound_contextvars, which reads the whole context twice).
        tokens = bind_contextvars(
            outbox_id=str(event.id),
            topic=event.topic,
            channel=route.channel,
            tenant_id=str(event.tenant_id),
            attempt=event.attempts,
        )
        try:
            if not traces.enabled():
                return await self._run_handler(event, route, budget, None)
            # Continues the trace of the request that staged the event.
            with traces.span(
                "outbox.deliver",
                kind=SpanKind.CONSUMER,
                parent=traces.continued(event.traceparent),
                topic=event.topic,
                channel=route.channel,
                outbox_id=event.id,
                tenant_id=event.tenant_id,
                attempt=event.attempts,
            ) as span:
                return await self._run_handler(event, route, budget, span)
        finally:
            reset_contextvars(**tokens)

    async def _run_handler(
        self, event: OutboxEvent, route: Route, budget: float, span: Span | None
    ) -> Outcome:
        try:
            async with asyncio.timeout(budget):
                await route.handler(self.ctx, event)
        except PermanentError as error:
            _span_error(span, error)
            return self._failed(event, route.channel, error, dead=True)
        except RetryableError as error:
            _span_error(span, error)
            return self._failed(event, route.channel, error, retry_after=error.retry_after)
        except Exception as error:  # a bug or an unclassified failure: retry, loudly
            _span_error(span, error)
            return self._failed(event, route.channel, error)
        now = datetime.now(UTC)
        latency = (now - event.created_at).total_seconds()
        self.metrics.delivered(latency, event.attempts, route.channel)
        log.info("outbox.delivered", latency_ms=round(latency * 1000, 1))
        return Outcome(route.channel, "delivered", event.attempts, now)

    def _held(self, event: OutboxEvent, channel: str) -> Outcome:
        """Not run now: owed by an earlier event, or out of time. Not charged an attempt."""
        return Outcome(channel, "pending", max(event.attempts - 1, 0), datetime.now(UTC))

    def _failed(
        self,
        event: OutboxEvent,
        channel: str,
        error: BaseException,
        *,
        dead: bool = False,
        retry_after: float | None = None,
    ) -> Outcome:
        dead = dead or event.attempts >= self.config.max_attempts
        delay = (
            retry_after
            if retry_after is not None
            else backoff_seconds(event.attempts, self.config, self._rng)
        )
        retry_at = datetime.now(UTC) + timedelta(seconds=0 if dead else delay)
        message = f"{type(error).__name__}: {error}"
        self.metrics.failed(dead, channel)
        if dead:
            log.warning("outbox.dead", channel=channel, error=message)
        else:
            log.info(
                "outbox.retry_scheduled", channel=channel, error=message, retry_in_s=round(delay, 3)
            )
        return Outcome(channel, "dead" if dead else "pending", event.attempts, retry_at, message)

    async def _fail_event(self, event: OutboxEvent, error: BaseException) -> None:
        """An event no channel serves goes dead whole: retried, it is attempted whole."""
        message = f"{type(error).__name__}: {error}"
        async with self.engine.connect() as connection:
            await connection.execute(
                text("SELECT outbox_mark_failed(:tenant_id, :id, :error, :retry_at, true)"),
                {
                    "tenant_id": event.tenant_id,
                    "id": event.id,
                    "error": message,
                    "retry_at": datetime.now(UTC),
                },
            )
        self.metrics.failed(True)
        log.warning("outbox.dead", outbox_id=str(event.id), topic=event.topic, error=message)

    async def _listen(self) -> None:
        """LISTEN on its own connection; when PostgreSQL goes away, reconnect with capped,
        jittered exponential backoff (polling covers the gap)."""
        assert self.listen_url is not None
        failures = 0
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.listen_url, autocommit=True, connect_timeout=CONNECT_TIMEOUT
                ) as connection:
                    await connection.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    if failures:
                        log.info("outbox.listen_restored", after_failures=failures)
                    failures = 0
                    # Anything committed while we were not listening is picked up now.
                    self._wake.set()
                    async for _ in connection.notifies():
                        self._wake.set()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                failures += 1
                delay = min(LISTEN_BACKOFF_CAP, LISTEN_BACKOFF_BASE * 2 ** (failures - 1))
                delay = delay / 2 + self._rng.uniform(0, delay / 2)
                log.warning(
                    "outbox.listen_failed",
                    error=f"{type(error).__name__}: {error}",
                    retry_in_s=round(delay, 2),
                )
                await asyncio.sleep(delay)


def _span_error(span: Span | None, error: BaseException) -> None:
    if span is not None:
        traces.set_error(span, error)


async def _shielded(work: Coroutine[Any, Any, Any]) -> None:
    """Bookkeeping that must finish even while the caller is being cancelled."""
    task = asyncio.ensure_future(work)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await task
        raise
    except Exception:
        log.exception("outbox.settle_failed")
