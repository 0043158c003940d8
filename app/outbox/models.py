"""The shapes of outbox rows as the relay, handlers and the API see them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

Status = Literal["pending", "delivered", "dead"]
STATUSES: tuple[Status, ...] = ("pending", "delivered", "dead")
NOTIFY_CHANNEL = "reckon_outbox"


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """One claimed row, handed to a handler. `attempts` counts this attempt (of this handler's
    channel, once the event has split into per-channel deliveries)."""

    tenant_id: uuid.UUID
    id: uuid.UUID
    seq: int
    topic: str
    aggregate_type: str
    aggregate_id: uuid.UUID
    payload: dict[str, Any]
    created_at: datetime
    attempts: int
    # W3C trace context of the transaction that staged it (None when tracing was off).
    traceparent: str | None = None

    @property
    def aggregate(self) -> tuple[uuid.UUID, str, uuid.UUID]:
        return (self.tenant_id, self.aggregate_type, self.aggregate_id)


@dataclass(frozen=True, slots=True)
class ChannelDelivery:
    """One channel's delivery of an event, recorded once the event did not deliver on every
    channel at its first attempt. Until then an event has none: it is attempted whole."""

    channel: str
    status: Status
    attempts: int
    last_error: str | None
    available_at: datetime
    delivered_at: datetime | None


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """A row as the admin API and CLI list it. `status` summarises `channels`: dead when any
    channel gave up, else pending while any is owed."""

    tenant_id: uuid.UUID
    id: uuid.UUID
    seq: int
    topic: str
    aggregate_type: str
    aggregate_id: uuid.UUID
    payload: dict[str, Any]
    status: Status
    attempts: int
    last_error: str | None
    created_at: datetime
    available_at: datetime
    delivered_at: datetime | None
    channels: tuple[ChannelDelivery, ...] = ()
