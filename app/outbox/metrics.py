"""Outbox metrics. The API scrapes the table (depth, oldest pending age, dead rows, attempts);
the worker keeps delivery latency and attempt outcomes in-process."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.outbox.models import STATUSES

LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


class RelayMetrics:
    """Worker side: one per relay process."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.latency = Histogram(
            "reckon_outbox_delivery_seconds",
            "Time from staging to a handled event",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.attempts = Counter(
            "reckon_outbox_attempts",
            "Delivery attempts by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self.delivered_attempts = Histogram(
            "reckon_outbox_attempts_per_delivery",
            "Attempts a delivered event needed",
            buckets=(1, 2, 3, 5, 8, 13),
            registry=self.registry,
        )

    def delivered(self, latency_seconds: float, attempts: int) -> None:
        self.latency.observe(max(latency_seconds, 0.0))
        self.attempts.labels("delivered").inc()
        self.delivered_attempts.observe(attempts)

    def failed(self, dead: bool) -> None:
        self.attempts.labels("dead" if dead else "retry").inc()


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
