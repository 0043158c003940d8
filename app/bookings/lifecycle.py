"""State changes of existing bookings: cancel (one or series), check in, complete, no-show,
and the hold-expiry / no-show sweeps. Each is one transaction with an audit row per booking.

pending_payment -> confirmed -> checked_in -> completed; pending_payment and confirmed may be
cancelled; a pending hold expires; a confirmed booking whose start has passed may be a no-show.
completed, cancelled, no_show and expired are final.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import trail as audit
from app.bookings import events, guard
from app.bookings import payment_effects as money
from app.bookings.errors import BookingBusy
from app.bookings.locks import lock_booking, lock_series
from app.bookings.models import (
    CANCELLED,
    CHECKED_IN,
    COMPLETED,
    CONFIRMED,
    EXPIRED,
    NO_SHOW,
    PENDING_PAYMENT,
    Booking,
)
from app.bookings.queries import BookingView, find_booking_row, lines_of, with_payments
from app.catalog import stock
from app.db import lock_all, retry_on_contention, set_tenant
from app.errors import InvalidState, NotFound
from app.validation import field_error

NO_SHOW_GRACE = timedelta(minutes=30)

# action -> (states it may start from, state it leads to, event, timestamp column)
TRANSITIONS: dict[str, tuple[frozenset[str], str, str, str | None]] = {
    "confirm": (frozenset({PENDING_PAYMENT}), CONFIRMED, events.BOOKING_CONFIRMED, None),
    "cancel": (
        frozenset({PENDING_PAYMENT, CONFIRMED}),
        CANCELLED,
        events.BOOKING_CANCELLED,
        "cancelled_at",
    ),
    "check_in": (frozenset({CONFIRMED}), CHECKED_IN, events.BOOKING_CHECKED_IN, "checked_in_at"),
    "complete": (frozenset({CHECKED_IN}), COMPLETED, events.BOOKING_COMPLETED, "completed_at"),
    "no_show": (frozenset({CONFIRMED}), NO_SHOW, events.BOOKING_NO_SHOW, None),
    "expire": (frozenset({PENDING_PAYMENT}), EXPIRED, events.BOOKING_EXPIRED, None),
}
# Products of a booking that will not happen go back on the shelf.
RESTOCK = frozenset({CANCELLED, EXPIRED})


async def apply_transition(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    actor: audit.Actor,
    row: Booking,
    action: str,
    now: datetime,
) -> BookingView:
    """Move a locked booking through `action`, or raise InvalidState naming both states."""
    allowed, target, event, stamp = TRANSITIONS[action]
    if row.status not in allowed:
        raise InvalidState(
            f"A {row.status} booking cannot {action.replace('_', ' ')}",
            status=row.status,
            action=action,
        )
    before = row.snapshot()
    row.status = target
    row.updated_at = now
    row.version += 1
    if stamp is not None:
        setattr(row, stamp, now)
    await session.flush()
    if target in RESTOCK:
        await _restock(session, tenant_id, actor, row, now)
    audit.record(
        session, tenant_id, actor, event, "booking", row.id, before=before, after=row.snapshot()
    )
    view = BookingView.of(row, await lines_of(session, row.id))
    await _after_transition(session, view, event, now)
    # The answer shows the payment as this transaction left it (a refund just reserved, a
    # hold released), exactly as a GET of the booking would.
    return (await with_payments(session, tenant_id, [view]))[0]


async def _after_transition(
    session: AsyncSession, booking: BookingView, event: str, now: datetime
) -> None:
    """The money and the event of a state change, in the same transaction: refunds, revenue
    recognition and commission (payments domain), then the outbox row."""
    await money.settle(session, booking, event, now)


async def _restock(
    session: AsyncSession, tenant_id: uuid.UUID, actor: audit.Actor, row: Booking, now: datetime
) -> None:
    # One product at a time in id order: the same lock order as placing, so a cancel and a
    # booking touching the same products never deadlock.
    for line in await lines_of(session, row.id):
        await stock.return_for_booking(
            session,
            tenant_id,
            actor,
            booking_id=row.id,
            branch_id=row.branch_id,
            product_id=line.product_id,
            quantity=line.quantity,
            now=now,
        )


async def transition_booking(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    actor: audit.Actor,
    booking_id: uuid.UUID,
    action: str,
    now: datetime,
) -> BookingView:
    async with session.begin():
        await set_tenant(session, tenant_id)
        await guard.bound_lock_waits(session)
        row = await lock_booking(session, tenant_id, booking_id)
        if action == "no_show" and now < row.starts_at:
            raise InvalidState(
                "A booking cannot be a no-show before it starts",
                status=row.status,
                action=action,
            )
        return await apply_transition(session, tenant_id, actor, row, action, now)


async def check_in_booking(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    actor: audit.Actor,
    booking_id: uuid.UUID,
    now: datetime,
) -> BookingView:
    return await transition_booking(session, tenant_id, actor, booking_id, "check_in", now)


async def complete_booking(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    actor: audit.Actor,
    booking_id: uuid.UUID,
    now: datetime,
) -> BookingView:
    return await transition_booking(session, tenant_id, actor, booking_id, "complete", now)


async def mark_no_show(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    actor: audit.Actor,
    booking_id: uuid.UUID,
    now: datetime,
) -> BookingView:
    return await transition_booking(session, tenant_id, actor, booking_id, "no_show", now)


@retry_on_contention(BookingBusy)
async def cancel_booking(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    actor: audit.Actor,
    booking_id: uuid.UUID,
    now: datetime,
    scope: Literal["one", "series"] = "one",
) -> list[BookingView]:
    """Cancel one booking, or every not-yet-started active occurrence of its series."""
    if scope not in ("one", "series"):
        raise field_error("scope", "must be one or series")
    async with session.begin():
        await set_tenant(session, tenant_id)
        await guard.bound_lock_waits(session)
        if scope == "one":
            row = await lock_booking(session, tenant_id, booking_id)
            return [await apply_transition(session, tenant_id, actor, row, "cancel", now)]
        return await _cancel_series(session, tenant_id, actor, booking_id, now)


async def _cancel_series(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    actor: audit.Actor,
    booking_id: uuid.UUID,
    now: datetime,
) -> list[BookingView]:
    # The series id is immutable, so it may be read before the lock; then the whole series
    # is locked in id order (the lock order of app/bookings/locks.py) and decided on fresh.
    row = await find_booking_row(session, tenant_id, booking_id)
    if row is None:
        raise NotFound("Booking not found", entity="booking", id=str(booking_id))
    if row.series_id is None:
        raise field_error("scope", "this booking is not part of a series")
    rows = [
        r
        for r in await lock_series(session, tenant_id, row.series_id)
        if r.status in (PENDING_PAYMENT, CONFIRMED) and (r.starts_at >= now or r.id == row.id)
    ]
    if not rows:
        raise InvalidState(
            "Nothing in this series can be cancelled", status=row.status, action="cancel"
        )
    return [await apply_transition(session, tenant_id, actor, r, "cancel", now) for r in rows]


async def _sweep(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    ids: Sequence[uuid.UUID],
    action: str,
    now: datetime,
) -> list[uuid.UUID]:
    """Apply `action` to rows that still qualify once locked (SKIP LOCKED: a booking being
    paid or checked in right now is left for the next run)."""
    allowed = TRANSITIONS[action][0]
    rows = await lock_all(
        session,
        select(Booking)
        .where(Booking.tenant_id == tenant_id, Booking.id.in_(ids), Booking.status.in_(allowed))
        .order_by(Booking.id),
        skip_locked=True,
    )
    done = []
    for row in rows:
        await apply_transition(session, tenant_id, audit.SYSTEM, row, action, now)
        done.append(row.id)
    return done


async def expire_holds(
    session: AsyncSession, tenant_id: uuid.UUID, now: datetime
) -> list[uuid.UUID]:
    """Expire pending holds whose time is up; their slots become free."""
    async with session.begin():
        await set_tenant(session, tenant_id)
        ids = (
            await session.scalars(
                select(Booking.id)
                .where(
                    Booking.tenant_id == tenant_id,
                    Booking.status == PENDING_PAYMENT,
                    Booking.hold_expires_at <= now,
                )
                .limit(1000)
            )
        ).all()
        return await _sweep(session, tenant_id, ids, "expire", now)


async def mark_due_no_shows(
    session: AsyncSession, tenant_id: uuid.UUID, now: datetime, grace: timedelta = NO_SHOW_GRACE
) -> list[uuid.UUID]:
    """Confirmed bookings not checked in `grace` after their start become no-shows."""
    async with session.begin():
        await set_tenant(session, tenant_id)
        ids = (
            await session.scalars(
                select(Booking.id)
                .where(
                    Booking.tenant_id == tenant_id,
                    Booking.status == CONFIRMED,
                    Booking.starts_at <= now - grace,
                )
                .limit(1000)
            )
        ).all()
        return await _sweep(session, tenant_id, ids, "no_show", now)


async def expire_overdue_holds(
    session: AsyncSession, tenant_id: uuid.UUID, ids: Sequence[uuid.UUID], now: datetime
) -> list[uuid.UUID]:
    """Inside a booker's transaction: expire overdue holds in its way (found while loading
    the calendar), so a dead hold never blocks a paying customer until the sweep runs."""
    if not ids:
        return []
    return await _sweep(session, tenant_id, ids, "expire", now)
