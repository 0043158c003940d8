"""The concurrency guard: locks for capacity-N resources, the translation of every
"someone else got there first" database error into SlotUnavailable, and the early refusal of
a request for a slot that is plainly full already."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app import traces
from app.bookings.rules import BookingRequest
from app.db import Batch, driver, psycopg_sql, set_lock_timeout, set_tenant_sql
from app.tenant_settings.models import DEFAULT_ENABLED

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


# A rush for one slot: once its winners have committed, every later request for it would run
# the whole of place_booking (customer, offer, calendar, lock) only to be refused. This one
# read answers those at once. It says "taken" only when place_booking would answer
# SlotUnavailable too: the service, branch and resource are active and linked, the service is
# a time slot, the tenant takes the provider, an active booking of the same service, branch
# and resource already starts at that very instant (so the start was valid for the offer),
# and the party sizes booked over that instant leave no room for this party. That instant
# lies inside the requested booking's blocked range, so the exclusion constraint (capacity 1)
# or the recount under the lock (capacity N) would refuse it. A hold past its expiry counts
# as free, as place_booking expires it. Anything else - or a race the read cannot see yet - is
# decided by place_booking, under the lock, as before.
_ACTIVE = (
    "b.status IN ('confirmed', 'checked_in') "
    "OR (b.status = 'pending_payment' AND b.hold_expires_at > %(now)s)"
)
_TAKEN = f"""
SELECT r.capacity < %(party_size)s + (
           SELECT coalesce(sum(b.party_size), 0) FROM bookings b
            WHERE b.tenant_id = r.tenant_id AND b.resource_id = r.id
              AND b.status IN ('pending_payment', 'confirmed', 'checked_in')
              AND b.blocked @> CAST(%(start)s AS timestamptz) AND ({_ACTIVE}))
  FROM resources r
  JOIN services s ON s.tenant_id = r.tenant_id AND s.id = %(service_id)s
  JOIN branches br ON br.tenant_id = r.tenant_id AND br.id = %(branch_id)s
 WHERE r.tenant_id = %(tenant_id)s AND r.id = %(resource_id)s
   AND r.active AND s.active AND br.active AND s.policy = 'time_slot'
   AND EXISTS (SELECT 1 FROM service_resources sr WHERE sr.tenant_id = r.tenant_id
                  AND sr.resource_id = r.id AND sr.service_id = s.id)
   AND EXISTS (SELECT 1 FROM resource_branches rb WHERE rb.tenant_id = r.tenant_id
                  AND rb.resource_id = r.id AND rb.branch_id = br.id)
   AND coalesce((SELECT p.enabled FROM tenant_provider_settings p
                  WHERE p.tenant_id = r.tenant_id AND p.provider = %(provider)s),
                %(enabled_by_default)s)
   AND EXISTS (SELECT 1 FROM bookings b
                WHERE b.tenant_id = r.tenant_id AND b.resource_id = r.id
                  AND b.starts_at = %(start)s AND b.service_id = s.id AND b.branch_id = br.id
                  AND b.status IN ('pending_payment', 'confirmed', 'checked_in')
                  AND ({_ACTIVE}))
"""


@dataclass(frozen=True, slots=True)
class SlotCheck:
    """The read that says whether a request's slot is plainly taken: `sql` selects one boolean
    (no row: not taken) under the tenant set in its transaction."""

    sql: str
    params: dict[str, Any]


def plain_slot_check(
    tenant_id: uuid.UUID, request: BookingRequest, now: datetime
) -> SlotCheck | None:
    """For `request` (checked by rules.check_request): the check, or None when the request is
    not one refused early (a series, any resource, an explicit end)."""
    if request.resource_id is None or request.end is not None or request.recurrence is not None:
        return None
    params = {
        "tenant_id": tenant_id,
        "resource_id": request.resource_id,
        "service_id": request.service_id,
        "branch_id": request.branch_id,
        "start": request.start,
        "party_size": request.party_size,
        "provider": request.provider,
        "enabled_by_default": request.provider in DEFAULT_ENABLED,
        "now": now,
    }
    return SlotCheck(_TAKEN, params)


async def slot_plainly_taken(
    connection: AsyncConnection, tenant_id: uuid.UUID, check: SlotCheck
) -> bool:
    """True when place_booking would refuse the request with SlotUnavailable (see _TAKEN).
    One round trip, no lock, nothing written. False means only "not plainly": place_booking
    decides."""
    async with connection.begin(), driver(connection, check.sql) as raw:
        await raw.execute(set_tenant_sql(tenant_id))
        cursor = await raw.execute(check.sql, check.params)
        await raw.commit()
        row = await cursor.fetchone()
    return bool(row and row[0])
