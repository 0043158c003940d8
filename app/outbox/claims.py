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

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.outbox.models import OutboxEvent, Status

Aggregate = tuple[uuid.UUID, str, uuid.UUID]

_CLAIM = text("SELECT * FROM outbox_claim(:worker, :limit, :lease)")
_DELIVERED = text("SELECT outbox_mark_delivered(:tenant_ids, :ids)")
_RELEASE = text("SELECT outbox_release(:tenant_ids, :ids)")
_RELEASE_CHANNELS = text(
    "SELECT outbox_release_deliveries(:tenant_ids, :ids, CAST(:channels AS text[]))"
)
_RECORD = text(
    "SELECT outbox_record(:tenant_ids, :ids, CAST(:channels AS text[]), "
    "CAST(:statuses AS text[]), CAST(:attempts AS integer[]), CAST(:errors AS text[]), "
    "CAST(:available_at AS timestamptz[]))"
)


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


async def claim(
    connection: AsyncConnection, worker: str, limit: int, lease_seconds: float
) -> list[Claimed]:
    rows = await connection.execute(
        _CLAIM, {"worker": worker, "limit": limit, "lease": lease_seconds}
    )
    claimed = [
        Claimed(
            event=OutboxEvent(
                tenant_id=r.tenant_id,
                id=r.id,
                seq=r.seq,
                topic=r.topic,
                aggregate_type=r.aggregate_type,
                aggregate_id=r.aggregate_id,
                payload=r.payload,
                created_at=r.created_at,
                attempts=r.attempts,
                traceparent=r.traceparent,
            ),
            channel=r.channel,
            held=frozenset(r.held or ()),
        )
        for r in rows
    ]
    claimed.sort(key=lambda c: (c.seq, c.channel or ""))
    return claimed


@dataclass
class Settlement:
    """A batch's outcomes, written back in one round trip per kind."""

    delivered: list[Claimed] = field(default_factory=list)
    released: list[Claimed] = field(default_factory=list)
    recorded: list[tuple[Claimed, Outcome]] = field(default_factory=list)

    async def write(self, connection: AsyncConnection) -> None:
        # Channel outcomes first: were we to stop between two writes, an event that split is
        # never left looking unsplit behind a later event already marked delivered.
        if self.recorded:
            await connection.execute(_RECORD, _outcome_arrays(self.recorded))
        if self.delivered:
            await connection.execute(_DELIVERED, _id_arrays(self.delivered))
        events = [c for c in self.released if c.channel is None]
        if events:
            await connection.execute(_RELEASE, _id_arrays(events))
        channels = [c for c in self.released if c.channel is not None]
        if channels:
            arrays = _id_arrays(channels)
            arrays["channels"] = [c.channel for c in channels]
            await connection.execute(_RELEASE_CHANNELS, arrays)


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
