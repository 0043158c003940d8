"""Outbox metrics. The API scrapes the table (depth, oldest pending age, dead rows, attempts,
open deliveries per channel); the worker keeps delivery latency and attempt outcomes
in-process."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.outbox.models import STATUSES

RECENT = timedelta(minutes=5)
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


class RelayMetrics:
    """Worker side: one per relay process."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.latency = Histogram(
            "reckon_outbox_delivery_seconds",
            "Time from staging to an event handled on a channel",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.attempts = Counter(
            "reckon_outbox_attempts",
            "Delivery attempts by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self.channel_attempts = Counter(
            "reckon_outbox_channel_attempts",
            "Delivery attempts by channel and outcome",
            ["channel", "outcome"],
            registry=self.registry,
        )
        self.delivered_attempts = Histogram(
            "reckon_outbox_attempts_per_delivery",
            "Attempts a delivered event needed",
            buckets=(1, 2, 3, 5, 8, 13),
            registry=self.registry,
        )

        # Labelled children, looked up once (labels() takes a lock and builds a key per call).
        self._outcomes: dict[str, Any] = {}
        self._channels: dict[tuple[str, str], Any] = {}

    def delivered(self, latency_seconds: float, attempts: int, channel: str | None = None) -> None:
        self.latency.observe(max(latency_seconds, 0.0))
        self._count("delivered", channel)
        self.delivered_attempts.observe(attempts)

    def failed(self, dead: bool, channel: str | None = None) -> None:
        self._count("dead" if dead else "retry", channel)

    def _count(self, outcome: str, channel: str | None) -> None:
        counter = self._outcomes.get(outcome)
        if counter is None:
            counter = self._outcomes[outcome] = self.attempts.labels(outcome)
        counter.inc()
        if channel is not None:
            key = (channel, outcome)
            counter = self._channels.get(key)
            if counter is None:
                counter = self._channels[key] = self.channel_attempts.labels(channel, outcome)
            counter.inc()


class OutboxGauges:
    """API side: refreshed from the table at every /metrics scrape."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.depth = Gauge(
            "reckon_outbox_depth", "Outbox rows not yet delivered", ["status"], registry=registry
        )
        self.oldest = Gauge(
            "reckon_outbox_oldest_pending_age_seconds",
            "Age of the oldest pending outbox row",
            registry=registry,
        )
        self.attempts = Gauge(
            "reckon_outbox_open_attempts",
            "Attempts spent on rows not yet delivered",
            ["status"],
            registry=registry,
        )
        self.dead = Gauge("reckon_outbox_dead_rows", "Outbox rows that gave up", registry=registry)
        self.open_deliveries = Gauge(
            "reckon_outbox_open_deliveries",
            "Channel deliveries of split events not yet delivered (pending or dead)",
            ["channel", "status"],
            registry=registry,
        )
        self.recent_latency = Gauge(
            "reckon_outbox_recent_delivery_latency_seconds",
            "Commit-to-handled latency of rows delivered in the last 5 minutes",
            ["quantile"],
            registry=registry,
        )
        self.recent_delivered = Gauge(
            "reckon_outbox_recent_delivered",
            "Rows delivered in the last 5 minutes",
            registry=registry,
        )
        self.recent_attempts = Gauge(
            "reckon_outbox_recent_delivery_attempts",
            "Attempts spent on rows delivered in the last 5 minutes (and how many needed a retry)",
            ["kind"],
            registry=registry,
        )

    async def collect(self, state: Any) -> None:
        await self.refresh(state.engine, datetime.now(UTC))

    async def refresh(self, engine: AsyncEngine, now: datetime) -> None:
        async with engine.connect() as connection:
            rows = {
                row.status: row
                for row in await connection.execute(text("SELECT * FROM outbox_stats()"))
            }
        for status in STATUSES:
            row = rows.get(status)
            self.depth.labels(status).set(row.depth if row else 0)
            self.attempts.labels(status).set(row.attempts if row else 0)
        pending = rows.get("pending")
        oldest = (now - pending.oldest_created_at).total_seconds() if pending else 0.0
        self.oldest.set(max(oldest, 0.0))
        self.dead.set(rows["dead"].depth if "dead" in rows else 0)
        await self._refresh_channels(engine)
        await self._refresh_recent(engine, now)

    async def _refresh_channels(self, engine: AsyncEngine) -> None:
        async with engine.connect() as connection:
            rows = list(await connection.execute(text("SELECT * FROM outbox_channel_stats()")))
        self.open_deliveries.clear()
        for row in rows:
            self.open_deliveries.labels(row.channel, row.status).set(row.depth)

    async def _refresh_recent(self, engine: AsyncEngine, now: datetime) -> None:
        async with engine.connect() as connection:
            recent = (
                await connection.execute(
                    text("SELECT * FROM outbox_recent_deliveries(:since)"),
                    {"since": now - RECENT},
                )
            ).one()
        self.recent_delivered.set(recent.delivered)
        self.recent_latency.labels("0.5").set(recent.p50_seconds)
        self.recent_latency.labels("0.99").set(recent.p99_seconds)
        self.recent_latency.labels("1").set(recent.max_seconds)
        self.recent_attempts.labels("total").set(recent.attempts)
        self.recent_attempts.labels("retried_rows").set(recent.retried)
