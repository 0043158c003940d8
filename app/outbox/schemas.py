"""HTTP shapes of the outbox admin API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec

from app.outbox.models import ChannelDelivery, OutboxEntry


class RetryOutboxIn(msgspec.Struct):
    """Optional: retry only this channel (default: every channel the entry still owes)."""

    channel: str | None = None


class ChannelDeliveryOut(msgspec.Struct):
    channel: str
    status: str
    attempts: int
    last_error: str | None
    available_at: datetime
    delivered_at: datetime | None

    @classmethod
    def of(cls, delivery: ChannelDelivery) -> ChannelDeliveryOut:
        return cls(
            channel=delivery.channel,
            status=delivery.status,
            attempts=delivery.attempts,
            last_error=delivery.last_error,
            available_at=delivery.available_at,
            delivered_at=delivery.delivered_at,
        )


class OutboxEntryOut(msgspec.Struct):
    """`status` sums up `channels`: dead when any channel gave up, else pending while any is
    owed. `channels` is empty until the entry first fails to deliver on every channel."""

    id: uuid.UUID
    seq: int
    topic: str
    aggregate_type: str
    aggregate_id: uuid.UUID
    payload: dict[str, Any]
    status: str
    attempts: int
    last_error: str | None
    created_at: datetime
    available_at: datetime
    delivered_at: datetime | None
    channels: list[ChannelDeliveryOut] = []

    @classmethod
    def of(cls, entry: OutboxEntry) -> OutboxEntryOut:
        return cls(
            id=entry.id,
            seq=entry.seq,
            topic=entry.topic,
            aggregate_type=entry.aggregate_type,
            aggregate_id=entry.aggregate_id,
            payload=entry.payload,
            status=entry.status,
            attempts=entry.attempts,
            last_error=entry.last_error,
            created_at=entry.created_at,
            available_at=entry.available_at,
            delivered_at=entry.delivered_at,
            channels=[ChannelDeliveryOut.of(delivery) for delivery in entry.channels],
        )
