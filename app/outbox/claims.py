"""What the relay claims, and what it writes back once a batch is handled.

A claim is either a whole event (never attempted, or only ever attempted whole: `channel` is
None) or one channel of an event that split, i.e. that did not deliver on every channel at
some attempt. Splitting records every channel of the event in outbox_deliveries, delivered
ones included, so a retry runs only what is still owed.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app.outbox.models import OutboxEvent, Status

Aggregate = tuple[uuid.UUID, str, uuid.UUID]

# The relay's hot statements run on the psycopg connection itself (app.db.driver): one
# statement per batch each, and none of SQLAlchemy's per-statement and per-row Python. The
# claim's columns come in OutboxEvent's field order, then the channel and the held channels.
CLAIM = (
    "SELECT tenant_id, id, seq, topic, aggregate_type, aggregate_id, payload, created_at, "
    "attempts, traceparent, channel, held FROM outbox_claim(%s, %s, %s)"
)
_DELIVERED = "SELECT outbox_mark_delivered(%(tenant_ids)s, %(ids)s)"
_RELEASE = "SELECT outbox_release(%(tenant_ids)s, %(ids)s)"
_RELEASE_CHANNELS = (
    "SELECT outbox_release_deliveries(%(tenant_ids)s, %(ids)s, CAST(%(channels)s AS text[]))"
)
_RECORD = (
    "SELECT outbox_record(%(tenant_ids)s, %(ids)s, CAST(%(channels)s AS text[]), "
    "CAST(%(statuses)s AS text[]), CAST(%(attempts)s AS integer[]), "
    "CAST(%(errors)s AS text[]), CAST(%(available_at)s AS timestamptz[]))"
)
# Names the settlement's statements in errors (app.db.driver).
SETTLE = "outbox settlement (outbox_record, outbox_mark_delivered, outbox_release...)"


@dataclass(frozen=True, slots=True)
class Claimed:
    event: OutboxEvent
    # None: the whole event. Else the one channel to deliver.
    channel: str | None = None
    # Whole events only: channels an earlier event of the aggregate still owes, which this
    # event must not run yet.
    held: frozenset[str] = frozenset()

    @property
    def id(self) -> uuid.UUID:
        return self.event.id

    @property
    def topic(self) -> str:
        return self.event.topic

    @property
    def seq(self) -> int:
        return self.event.seq

    @property
    def attempts(self) -> int:
        return self.event.attempts

    @property
    def aggregate(self) -> Aggregate:
        return self.event.aggregate


@dataclass(frozen=True, slots=True)
class Outcome:
    """One channel's result for one event in this batch."""

    channel: str
    status: Status
    attempts: int
    available_at: datetime
    error: str | None = None

    @property
    def delivered(self) -> bool:
        return self.status == "delivered"


async def claim(raw: Any, worker: str, limit: int, lease_seconds: float) -> list[Claimed]:
    """Lease up to `limit` due claims (more when an aggregate's followers ride along), in seq
    order. `raw`: an autocommit psycopg connection."""
    # Binary results: uuids and timestamps load without parsing text.
    cursor = await raw.execute(CLAIM, (worker, limit, lease_seconds), binary=True)
    rows = await cursor.fetchall()
    claimed = [
        Claimed(OutboxEvent(*row[:10]), row[10], frozenset(row[11]) if row[11] else _NONE)
        for row in rows
    ]
    claimed.sort(key=_claim_order)
    return claimed


_NONE: frozenset[str] = frozenset()


def _claim_order(item: Claimed) -> tuple[int, str]:
    return (item.event.seq, item.channel or "")


@dataclass
class Settlement:
    """A batch's outcomes, written back in one round trip per kind."""

    delivered: list[Claimed] = field(default_factory=list)
    released: list[Claimed] = field(default_factory=list)
    recorded: list[tuple[Claimed, Outcome]] = field(default_factory=list)

    async def write(self, raw: Any) -> None:
        """`raw`: an autocommit psycopg connection; one statement per kind, in this order."""
        # Channel outcomes first: were we to stop between two writes, an event that split is
        # never left looking unsplit behind a later event already marked delivered.
        if self.recorded:
            await raw.execute(_RECORD, _outcome_arrays(self.recorded))
        if self.delivered:
            await raw.execute(_DELIVERED, _id_arrays(self.delivered))
        events = [c for c in self.released if c.channel is None]
        if events:
            await raw.execute(_RELEASE, _id_arrays(events))
        channels = [c for c in self.released if c.channel is not None]
        if channels:
            arrays = _id_arrays(channels)
            arrays["channels"] = [c.channel for c in channels]
            await raw.execute(_RELEASE_CHANNELS, arrays)


def _id_arrays(claims: Sequence[Claimed]) -> dict[str, Any]:
    return {
        "tenant_ids": [c.event.tenant_id for c in claims],
        "ids": [c.event.id for c in claims],
    }


def _outcome_arrays(recorded: Sequence[tuple[Claimed, Outcome]]) -> dict[str, Any]:
    arrays = _id_arrays([c for c, _ in recorded])
    arrays.update(
        channels=[o.channel for _, o in recorded],
        statuses=[o.status for _, o in recorded],
        attempts=[o.attempts for _, o in recorded],
        errors=[o.error for _, o in recorded],
        available_at=[o.available_at for _, o in recorded],
    )
    return arrays
