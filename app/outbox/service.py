"""Staging events in the caller's transaction, and the tenant-scoped admin use cases.

`stage` is the only way a side effect leaves the system: it writes a row in the same
transaction as the state change, so the effect exists if and only if the change committed.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from app import traces
from app.db import batch_of, new_id, psycopg_sql, set_tenant, values_list
from app.outbox.errors import (
    OutboxChannelDelivered,
    OutboxChannelNotFound,
    OutboxEntryDelivered,
    OutboxEntryNotFound,
)
from app.outbox.models import NOTIFY_CHANNEL, STATUSES, ChannelDelivery, OutboxEntry, Status
from app.validation import field_error

ENTRY_COLUMNS = (
    "tenant_id, id, seq, topic, aggregate_type, aggregate_id, payload, status, attempts, "
    "last_error, created_at, available_at, delivered_at"
)

_STAGE = text(
    "WITH staged AS ("
    " INSERT INTO outbox"
    " (tenant_id, id, aggregate_type, aggregate_id, topic, payload, traceparent)"
    " VALUES (:tenant_id, :id, :aggregate_type, :aggregate_id, :topic, CAST(:payload AS jsonb),"
    " :traceparent)"
    " RETURNING id)"
    f" SELECT staged.id, pg_notify('{NOTIFY_CHANNEL}', '') FROM staged"
)
_STAGE_SQL = psycopg_sql(_STAGE)


# Works for the app role under RLS (one tenant) and for the owner across tenants (the CLI).
CHANNELS_OF = text(
    "SELECT tenant_id, outbox_id, channel, status, attempts, last_error, available_at, "
    "delivered_at FROM outbox_deliveries WHERE (tenant_id, outbox_id) IN "
    "(SELECT * FROM unnest(CAST(:tenant_ids AS uuid[]), CAST(:ids AS uuid[]))) "
    "ORDER BY channel"
)
_RESET_CHANNELS = text(
    "UPDATE outbox_deliveries SET status = 'pending', attempts = 0, available_at = :now, "
    "last_error = NULL, locked_until = NULL, locked_by = NULL "
    "WHERE tenant_id = :tenant_id AND outbox_id = :id AND status <> 'delivered' "
    "AND (CAST(:channel AS text) IS NULL OR channel = :channel) RETURNING channel"
)
_RESET_EVENT = text(
    "UPDATE outbox SET status = 'pending', attempts = 0, available_at = :now, "
    "last_error = NULL, locked_until = NULL, locked_by = NULL "
    "WHERE tenant_id = :tenant_id AND id = :id"
)


class StageOutsideTransaction(RuntimeError):
    """stage() was called with no transaction open: the event could outlive a rollback."""


def _json_default(value: Any) -> str:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


async def stage(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    topic: str,
    aggregate_type: str,
    aggregate_id: uuid.UUID,
    payload: dict[str, Any],
) -> uuid.UUID:
    """Write one event in the caller's open transaction; the relay wakes when it commits.

    The caller must already have set the tenant (RLS checks the row). Within one aggregate,
    events are delivered in staging order provided the caller holds the aggregate's row
    lock, as every write use case does.
    """
    if not session.in_transaction():
        raise StageOutsideTransaction("outbox.stage needs the caller's open transaction")
    event_id = new_id()
    with traces.span("outbox.stage", topic=topic, outbox_id=event_id, tenant_id=tenant_id):
        params = {
            "tenant_id": tenant_id,
            "id": event_id,
            "aggregate_type": aggregate_type,
            "aggregate_id": aggregate_id,
            "topic": topic,
            "payload": json.dumps(payload, default=_json_default),
            # The delivery continues this trace in the worker (a child of this span).
            "traceparent": traces.traceparent(),
        }
        batch = batch_of(session)
        if batch is not None:
            batch.add(_STAGE_SQL, params)  # sent in the caller's batch (app.db.Batch)
        else:
            await session.execute(_STAGE, params)
    return event_id


# stage() for several events of one transaction in one statement, for a caller that sends
# its statements through psycopg in pipeline mode (app.db.driver): rows in the order given.
_STAGE_COLUMNS = "tenant_id, id, aggregate_type, aggregate_id, topic, payload, traceparent"
_STAGE_CASTS = (None, None, None, None, None, "jsonb", None)


def _payload(body: dict[str, Any]) -> str:
    return json.dumps(body, default=_json_default)


def stage_statement(
    tenant_id: uuid.UUID, events: list[tuple[str, str, uuid.UUID, dict[str, Any]]]
) -> tuple[str, dict[str, Any]]:
    """`events` as (topic, aggregate_type, aggregate_id, payload), staged as stage() would
    stage them one by one (the tenant set, the caller's transaction open)."""
    parent = traces.traceparent()
    rows = [
        (tenant_id, new_id(), kind, aggregate, topic, _payload(body), parent)
        for topic, kind, aggregate, body in events
    ]
    values, params = values_list(rows, _STAGE_CASTS)
    sql = (
        f"WITH staged AS (INSERT INTO outbox ({_STAGE_COLUMNS}) VALUES {values} RETURNING id) "
        f"SELECT count(*), pg_notify('{NOTIFY_CHANNEL}', '') FROM staged"
    )
    return sql, params


def entry_from_row(row: Row[Any]) -> OutboxEntry:
    return OutboxEntry(
        tenant_id=row.tenant_id,
        id=row.id,
        seq=row.seq,
        topic=row.topic,
        aggregate_type=row.aggregate_type,
        aggregate_id=row.aggregate_id,
        payload=row.payload,
        status=row.status,
        attempts=row.attempts,
        last_error=row.last_error,
        created_at=row.created_at,
        available_at=row.available_at,
        delivered_at=row.delivered_at,
    )


def with_channels(entries: list[OutboxEntry], rows: Any) -> list[OutboxEntry]:
    """Attach CHANNELS_OF rows to their entries."""
    found: dict[tuple[uuid.UUID, uuid.UUID], list[ChannelDelivery]] = {}
    for row in rows:
        found.setdefault((row.tenant_id, row.outbox_id), []).append(
            ChannelDelivery(
                channel=row.channel,
                status=row.status,
                attempts=row.attempts,
                last_error=row.last_error,
                available_at=row.available_at,
                delivered_at=row.delivered_at,
            )
        )
    return [
        replace(entry, channels=tuple(found.get((entry.tenant_id, entry.id), ())))
        for entry in entries
    ]


def channel_keys(entries: list[OutboxEntry]) -> dict[str, Any]:
    return {"tenant_ids": [e.tenant_id for e in entries], "ids": [e.id for e in entries]}


async def _load_channels(session: AsyncSession, entries: list[OutboxEntry]) -> list[OutboxEntry]:
    if not entries:
        return entries
    return with_channels(entries, await session.execute(CHANNELS_OF, channel_keys(entries)))


def check_status(status: str) -> Status:
    for known in STATUSES:
        if status == known:
            return known
    raise field_error("status", f"status must be one of {', '.join(STATUSES)}")


async def list_entries(
    session: AsyncSession, tenant_id: uuid.UUID, status: str, *, limit: int = 100
) -> list[OutboxEntry]:
    checked = check_status(status)
    async with session.begin():
        await set_tenant(session, tenant_id)
        rows = await session.execute(
            text(
                f"SELECT {ENTRY_COLUMNS} FROM outbox WHERE tenant_id = :tenant_id "
                "AND status = :status ORDER BY seq DESC LIMIT :limit"
            ),
            {"tenant_id": tenant_id, "status": checked, "limit": max(1, min(limit, 500))},
        )
        return await _load_channels(session, [entry_from_row(row) for row in rows])


async def retry_entry(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    entry_id: uuid.UUID,
    now: datetime,
    *,
    channel: str | None = None,
) -> OutboxEntry:
    """Make a dead (or backing-off) entry due now with a fresh attempt budget: every channel
    it still owes, or only `channel`. Delivered channels are not run again."""
    async with session.begin():
        await set_tenant(session, tenant_id)
        current = (
            await session.execute(
                text(
                    "SELECT status, per_channel FROM outbox "
                    "WHERE tenant_id = :tenant_id AND id = :id FOR UPDATE"
                ),
                {"tenant_id": tenant_id, "id": entry_id},
            )
        ).first()
        if current is None:
            raise OutboxEntryNotFound(entry_id=entry_id)
        if current.status == "delivered":
            raise OutboxEntryDelivered(entry_id=entry_id)
        params = {"tenant_id": tenant_id, "id": entry_id, "now": now}
        if current.per_channel:
            reset = await session.execute(_RESET_CHANNELS, {**params, "channel": channel})
            if channel is not None and reset.first() is None:
                await _raise_channel_not_open(session, tenant_id, entry_id, channel)
            await session.execute(
                text("SELECT outbox_refresh(ARRAY[:tenant_id], ARRAY[:id])"), params
            )
        elif channel is not None:
            raise OutboxChannelNotFound(entry_id=entry_id, channel=channel)
        else:
            await session.execute(_RESET_EVENT, params)
        row = (
            await session.execute(
                text(
                    f"SELECT {ENTRY_COLUMNS} FROM outbox WHERE tenant_id = :tenant_id AND id = :id"
                ),
                params,
            )
        ).one()
        await session.execute(text(f"SELECT pg_notify('{NOTIFY_CHANNEL}', '')"))
        [entry] = await _load_channels(session, [entry_from_row(row)])
        return entry


async def _raise_channel_not_open(
    session: AsyncSession, tenant_id: uuid.UUID, entry_id: uuid.UUID, channel: str
) -> None:
    delivered = (
        await session.execute(
            text(
                "SELECT 1 FROM outbox_deliveries WHERE tenant_id = :tenant_id "
                "AND outbox_id = :id AND channel = :channel"
            ),
            {"tenant_id": tenant_id, "id": entry_id, "channel": channel},
        )
    ).first()
    if delivered is not None:
        raise OutboxChannelDelivered(entry_id=entry_id, channel=channel)
    raise OutboxChannelNotFound(entry_id=entry_id, channel=channel)


async def events_after(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    after_seq: int,
    topic_prefix: str,
    *,
    limit: int = 500,
) -> list[OutboxEntry]:
    """Committed events of this tenant after `after_seq` (SSE replay on reconnect)."""
    async with session.begin():
        await set_tenant(session, tenant_id)
        rows = await session.execute(
            text(
                f"SELECT {ENTRY_COLUMNS} FROM outbox WHERE tenant_id = :tenant_id "
                "AND seq > :after AND topic LIKE :prefix ORDER BY seq LIMIT :limit"
            ),
            {
                "tenant_id": tenant_id,
                "after": after_seq,
                "prefix": topic_prefix + "%",
                "limit": limit,
            },
        )
        return [entry_from_row(row) for row in rows]
