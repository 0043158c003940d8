"""The concurrency guard: locks for capacity-N resources and the translation of every
"someone else got there first" database error into SlotUnavailable."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from app import traces
from app.db import Batch, psycopg_sql, set_lock_timeout

LOCK_TIMEOUT_MS = 3000
# exclusion_violation, lock_not_available, deadlock_detected, serialization_failure:
# each means a competing booking won, so the caller gets 409 slot_unavailable, never a 500.
SLOT_LOST = frozenset({"23P01", "55P03", "40P01", "40001"})


def is_slot_lost(error: DBAPIError) -> bool:
    return getattr(error.orig, "sqlstate", None) in SLOT_LOST


async def bound_lock_waits(session: AsyncSession) -> None:
    await set_lock_timeout(session, LOCK_TIMEOUT_MS)


_LOCK_RESOURCES = text(
    "SELECT id FROM resources WHERE tenant_id = :tenant_id AND id = ANY(:ids) "
    "ORDER BY id FOR NO KEY UPDATE"
)
_LOCK_RESOURCES_SQL = psycopg_sql(_LOCK_RESOURCES)


async def lock_resources(
    session: AsyncSession, tenant_id: uuid.UUID, resource_ids: Sequence[uuid.UUID]
) -> None:
    """Serialise capacity-N bookers per resource. Sorted ids keep lock order global, so two
    bookers never wait on each other in a cycle. NO KEY UPDATE leaves foreign-key checks
    (KEY SHARE) from other writers unblocked."""
    ids = sorted(set(resource_ids))
    if not ids:
        return
    # The span's duration is the lock wait (behind other bookers of these resources).
    with traces.span("booking.lock_resources", resources=len(ids)):
        await session.execute(_LOCK_RESOURCES, {"tenant_id": tenant_id, "ids": ids})


def queue_lock(batch: Batch, tenant_id: uuid.UUID, resource_ids: Sequence[uuid.UUID]) -> None:
    """lock_resources as the first statement of a batch whose writes need nothing read under
    the lock (a capacity-1 resource: the exclusion constraint decides): the lock is still
    taken, in the same order, before the batch's booking insert."""
    ids = sorted(set(resource_ids))
    if ids:
        batch.add(_LOCK_RESOURCES_SQL, {"tenant_id": tenant_id, "ids": ids})


async def booked_party_size(
    session: AsyncSession,
    resource_id: uuid.UUID,
    start: datetime,
    end: datetime,
    exclude: uuid.UUID | None = None,
) -> int:
    """Peak party size of active bookings overlapping [start, end): the in-transaction recount
    that backs the engine's answer for capacity-N resources."""
    row = await session.execute(
        text(
            "WITH b AS (SELECT blocked, party_size FROM bookings WHERE resource_id = :rid "
            "  AND status IN ('pending_payment', 'confirmed', 'checked_in') "
            "  AND blocked && tstzrange(:start, :end) "
            "  AND (CAST(:exclude AS uuid) IS NULL OR id <> CAST(:exclude AS uuid))), "
            "p AS (SELECT greatest(lower(blocked), :start) AS at FROM b) "
            "SELECT coalesce(max((SELECT sum(party_size) FROM b WHERE blocked @> p.at)), 0) "
            "FROM p"
        ),
        {"rid": resource_id, "start": start, "end": end, "exclude": exclude},
    )
    return int(row.scalar_one())
