"""The wire format of a live event, shared by the publishing handler and the SSE stream."""

from __future__ import annotations

import json
from typing import Any

from app.outbox.models import OutboxEntry, OutboxEvent

LIVE_TOPIC_PREFIX = "booking."


def channel(namespace: str, tenant_id: object) -> str:
    return f"{namespace}:events:{tenant_id}"


def encode(event: OutboxEvent | OutboxEntry) -> str:
    """The SSE id is the outbox seq, so Last-Event-ID can replay from the table."""
    body: dict[str, Any] = {
        "seq": event.seq,
        "tenant_id": str(event.tenant_id),
        "id": str(event.id),
        "topic": event.topic,
        "aggregate_type": event.aggregate_type,
        "aggregate_id": str(event.aggregate_id),
        "payload": event.payload,
        "created_at": event.created_at.isoformat(),
    }
    return json.dumps(body, separators=(",", ":"))


def decode(raw: bytes | str) -> dict[str, Any]:
    message = json.loads(raw)
    if not isinstance(message, dict):
        raise ValueError("live event must be a JSON object")
    return message
