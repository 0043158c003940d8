"""reschedule_booking: move, extend or shorten an active booking under the same guarantee as
placing one (exclusion constraint for capacity 1, sorted resource locks + recount for N)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy.dialects.postgresql import Range
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import trail as audit
from app.availability.service import Candidate, Offer, load_calendars, load_offer
from app.bookings import events, guard, rules
from app.bookings.errors import SlotUnavailable
from app.bookings.lifecycle import _after_transition, expire_overdue_holds
from app.bookings.locks import lock_booking
from app.bookings.models import CONFIRMED, PENDING_PAYMENT, Booking
from app.bookings.queries import BookingView, lines_of, with_payments
from app.db import set_tenant
from app.errors import InvalidState
from app.validation import check_aware, field_error

MOVABLE = frozenset({PENDING_PAYMENT, CONFIRMED})


async def reschedule_booking(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    actor: audit.Actor,
    booking_id: uuid.UUID,
    *,
    start: datetime,
    now: datetime,
    end: datetime | None = None,
    resource_id: uuid.UUID | None = None,
) -> BookingView:
    """Move to `start` (and `end`, for interval and nightly services; extend or shorten by
    keeping start), optionally onto another resource. The unit price snapshot is kept; the
    quantity and total follow the new length."""
    start = check_aware(start, "start").astimezone(UTC)
    if end is not None:
        end = check_aware(end, "end").astimezone(UTC)
        if end <= start:
            raise field_error("end", "must be after start")
    try:
        async with session.begin():
            await set_tenant(session, tenant_id)
            await guard.bound_lock_waits(session)
            row = await lock_booking(session, tenant_id, booking_id)
            held_out = row.hold_expires_at is not None and row.hold_expires_at <= now
            if row.status not in MOVABLE or (row.status == PENDING_PAYMENT and held_out):
                raise InvalidState(
                    f"A {row.status} booking cannot be rescheduled",
                    status=row.status,
                    action="reschedule",
                )
            offer = await load_offer(session, tenant_id, row.service_id, row.branch_id)
            candidate = offer.candidate(resource_id or row.resource_id)
            occ = rules.occurrence(offer, start, end)
            await _check_free(session, tenant_id, offer, candidate, row, occ, now)
            before = row.snapshot()
            lines = await lines_of(session, row.id)
            products_minor = sum(line.unit_price_minor * line.quantity for line in lines)
            price = rules.price(offer, occ, row.party_size, row.unit_price_minor, row.pricing)
            row.starts_at, row.ends_at = occ.start, occ.end
            row.blocked = Range(occ.blocked_start, occ.blocked_end, bounds="[)")
            row.resource_id = candidate.resource_id
            row.exclusive = candidate.capacity == 1
            row.quantity = price.quantity
            row.total_minor = price.total_minor + products_minor
            row.updated_at = now
            row.version += 1
            await session.flush()
            audit.record(
                session,
                tenant_id,
                actor,
                events.BOOKING_RESCHEDULED,
                "booking",
                row.id,
                before=before,
                after=row.snapshot(),
            )
            view = BookingView.of(row, lines)
            await _after_transition(session, view, events.BOOKING_RESCHEDULED, now)
            view = (await with_payments(session, tenant_id, [view]))[0]
    except DBAPIError as error:
        if guard.is_slot_lost(error):
            raise SlotUnavailable(start=start.isoformat()) from None
        raise
    return view


async def _check_free(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    offer: Offer,
    candidate: Candidate,
    row: Booking,
    occ: rules.Occurrence,
    now: datetime,
) -> None:
    """The engine check and, for capacity N, the locked recount — both ignoring this booking
    itself, so extending into its own old time is allowed."""
    if candidate.capacity > 1:
        await guard.lock_resources(session, tenant_id, [candidate.resource_id])
    loaded = await load_calendars(
        session,
        offer,
        [candidate],
        occ.local_date,
        occ.end.astimezone(offer.tz).date(),
        now=now,
        exclude_booking=row.id,
    )
    await expire_overdue_holds(session, tenant_id, loaded.overdue_holds, now)
    calendars = loaded.calendars
    ok = rules.is_bookable(offer, calendars[0], occ, now, row.party_size)
    if ok and candidate.capacity > 1:
        peak = await guard.booked_party_size(
            session, candidate.resource_id, occ.blocked_start, occ.blocked_end, exclude=row.id
        )
        ok = peak + row.party_size <= candidate.capacity
    if not ok:
        raise SlotUnavailable(start=occ.start.isoformat(), resource_id=str(candidate.resource_id))
