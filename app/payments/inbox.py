"""The webhook inbox: a verified provider event stored once, then claimed and applied.

Receiving is one statement: INSERT ... ON CONFLICT (provider, event_id) DO NOTHING, committed
before the provider is answered, so an acknowledged event is durable and a duplicate delivery
finds the row and stores nothing. Applying happens afterwards (app/bookings/payment_events.py,
driven by the applier in the worker): `inbox_claim` (migration 0021) hands out due rows with
SKIP LOCKED, at most the oldest unfinished event of each order key, so the events of one
payment apply in the order they arrived and other payments' events apply alongside. The
edge wakes the applier after the commit (`wake`).

The order key is the payment the event is about: our id when the event names it, else the
payment its provider reference points at (one indexed lookup inside the same INSERT), else
that reference itself.
"""

from __future__ import annotations

import dataclasses
import functools
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db import driver, new_id
from app.payments import provider_events as events

NOTIFY_CHANNEL = "reckon_inbox"
PENDING = "pending"
DONE = "done"
DEAD = "dead"

# No subquery in the INSERT (Citus refuses one in an INSERT into a reference table): an event
# that names no payment of ours has its order key looked up first (_BY_REF). Both go straight
# to psycopg (app.db.driver): they run on every delivery, and SQLAlchemy's per-statement work
# was a tenth of an acknowledgement's CPU. The INSERT takes one or more rows (VALUES lists:
# the acknowledgement's writer stores the deliveries that arrive together in one statement).
_COLUMNS = "id, provider, event_id, event_type, payload, order_key, bound_tenant_id, amount_minor"
_ROW = "(%s, %s, %s, %s, CAST(%s AS jsonb), %s, %s, %s)"
MAX_ROWS = 64


@functools.cache
def store_sql(rows: int) -> str:
    values = ", ".join([_ROW] * rows)
    return (
        f"INSERT INTO inbox ({_COLUMNS}) VALUES {values} "
        "ON CONFLICT (provider, event_id) DO NOTHING RETURNING id, seq"
    )


STORE_SQL = store_sql(1)
_BY_REF = "SELECT CAST(p.id AS text) FROM payment_by_provider_ref(%(provider)s, %(ref)s) p"
# The applier's NOTIFY when no earlier event waits unclaimed (migration 0032).
_WAKE = text("SELECT inbox_wake(:seq)")
WAKE_SQL = "SELECT inbox_wake(%(seq)s)"
_CLAIM = text("SELECT * FROM inbox_claim(:worker, :limit, :lease)")
_FAIL = text(
    "UPDATE inbox SET status = CASE WHEN :dead THEN 'dead' ELSE 'pending' END, "
    "available_at = :retry_at, last_error = :error, locked_until = NULL "
    "WHERE id = :id AND status = 'pending'"
)
_RELEASE = text(
    "UPDATE inbox SET locked_until = NULL, attempts = greatest(attempts - 1, 0) "
    "WHERE id = ANY(:ids) AND status = 'pending'"
)
_RETRY = text(
    "UPDATE inbox SET status = 'pending', attempts = 0, available_at = now(), "
    "locked_until = NULL, last_error = NULL WHERE id = ANY(:ids) AND status = 'dead' "
    "RETURNING id"
)


@dataclass(frozen=True, slots=True)
class Stored:
    """The inbox row a delivery created (its id and claim order); None when the event was
    already stored."""

    inbox_id: uuid.UUID | None
    seq: int | None = None

    @property
    def duplicate(self) -> bool:
        return self.inbox_id is None


@dataclass(frozen=True, slots=True)
class Claimed:
    """One inbox row handed to an applier under a lease. `attempts` counts this attempt."""

    id: uuid.UUID
    seq: int
    provider: str
    event_id: str
    event_type: str
    payload: dict[str, Any]
    bound_tenant_id: uuid.UUID | None
    amount_minor: int | None
    attempts: int
    received_at: datetime


async def store(
    connection: AsyncConnection,
    event: events.ProviderEvent,
    raw: str,
    *,
    bound_tenant_id: uuid.UUID | None = None,
) -> Stored:
    """Store a verified event in the caller's connection (the caller commits). `raw` is the
    body as delivered: stored as the payload without serialising it again."""
    async with driver(connection, STORE_SQL, pipeline=False) as pg:
        return await store_on(pg, event, raw, bound_tenant_id=bound_tenant_id)


Row = tuple[Any, ...]


async def store_on(
    pg: Any,
    event: events.ProviderEvent,
    raw: str,
    *,
    bound_tenant_id: uuid.UUID | None = None,
) -> Stored:
    """`store` on a psycopg AsyncConnection: psycopg errors come out as they are."""
    row = await row_for(pg, event, raw, bound_tenant_id=bound_tenant_id)
    return (await store_rows(pg, [row]))[0]


async def row_for(
    pg: Any,
    event: events.ProviderEvent,
    raw: str,
    *,
    bound_tenant_id: uuid.UUID | None = None,
) -> Row:
    """The inbox row for a verified event, its order key looked up when the event names no
    payment of ours but a provider reference (one indexed read)."""
    ref = event.provider_ref or event.charge_ref
    key = str(event.payment_id) if event.payment_id else None
    if key is None and ref:
        found = await pg.execute(_BY_REF, {"provider": event.provider, "ref": ref})
        key = (await found.fetchone() or (None,))[0]
    amount = event.amount_minor if event.provider == "kashier" else None
    return (
        new_id(),
        event.provider,
        event.event_id,
        event.type,
        raw,
        key or ref or event.event_id,
        bound_tenant_id,
        amount,
    )


def needs_lookup(event: events.ProviderEvent) -> bool:
    """Whether `row_for` reads the database for this event's order key."""
    return event.payment_id is None and bool(event.provider_ref or event.charge_ref)


async def store_rows(pg: Any, rows: list[Row]) -> list[Stored]:
    """One INSERT ... ON CONFLICT DO NOTHING for up to MAX_ROWS rows, in the caller's
    transaction (autocommit: committed when it returns). A row whose event was stored before,
    or earlier in the same list, comes back as a duplicate."""
    cursor = await pg.execute(store_sql(len(rows)), [value for row in rows for value in row])
    inserted = {row[0]: row[1] for row in await cursor.fetchall()}
    return [
        Stored(row[0], inserted[row[0]]) if row[0] in inserted else Stored(None) for row in rows
    ]


async def wake(connection: AsyncConnection, seq: int) -> bool:
    """After the commit that stored event `seq`: NOTIFY the applier, unless an earlier event is
    waiting unclaimed (then it is on its way already). Returns whether it notified. Its own
    transaction, never the INSERT's: on Citus that one commits by two-phase commit, which
    refuses NOTIFY."""
    return bool(await connection.scalar(_WAKE, {"seq": seq}))


def rebuild(claimed: Claimed) -> events.ProviderEvent:
    """The normalised event, from what was stored: the provider's payload, the business the
    endpoint bound it to, and Kashier's amount as the edge parsed it."""
    payload = claimed.payload
    if claimed.provider == "stripe":
        event = events.stripe_event(payload)
        bound = claimed.bound_tenant_id
        if bound is None:
            return event
        if event.tenant_id not in (None, bound):
            # Names another business in its metadata: applied to nothing (the applier also
            # refuses any payment it names that is not the bound business's).
            return dataclasses.replace(
                event, tenant_id=bound, payment_id=None, provider_ref=None, charge_ref=None
            )
        return dataclasses.replace(event, tenant_id=bound)
    if claimed.provider == "kashier":
        return events.kashier_event(payload, claimed.amount_minor)
    if claimed.provider == "sandbox":
        return events.sandbox_event(payload)
    return events.ProviderEvent(claimed.provider, claimed.event_id, claimed.event_type, payload)


async def claim(
    connection: AsyncConnection, worker: str, limit: int, lease_seconds: float
) -> list[Claimed]:
    rows = await connection.execute(
        _CLAIM, {"worker": worker, "limit": limit, "lease": lease_seconds}
    )
    claimed = [
        Claimed(
            id=r.id,
            seq=r.seq,
            provider=r.provider,
            event_id=r.event_id,
            event_type=r.event_type,
            payload=r.payload,
            bound_tenant_id=r.bound_tenant_id,
            amount_minor=r.amount_minor,
            attempts=r.attempts,
            received_at=r.received_at,
        )
        for r in rows
    ]
    claimed.sort(key=lambda c: c.seq)
    return claimed


async def fail(
    connection: AsyncConnection,
    inbox_id: uuid.UUID,
    *,
    error: str,
    retry_at: datetime,
    dead: bool,
) -> None:
    """An attempt that raised: due again at `retry_at`, or dead (visible, and holding back only
    its own payment's later events until retried)."""
    await connection.execute(
        _FAIL, {"id": inbox_id, "dead": dead, "retry_at": retry_at, "error": error[:2000]}
    )


async def release(connection: AsyncConnection, inbox_ids: list[uuid.UUID]) -> None:
    """Claimed but not attempted (the applier is stopping): due again at once, uncharged."""
    if inbox_ids:
        await connection.execute(_RELEASE, {"ids": inbox_ids})


async def retry_dead(connection: AsyncConnection, inbox_ids: list[uuid.UUID]) -> list[uuid.UUID]:
    """Give dead events a fresh start (after the cause was fixed); returns those revived."""
    rows = await connection.execute(_RETRY, {"ids": inbox_ids})
    return [row.id for row in rows]
