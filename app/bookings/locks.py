"""Lock first, then read: the one place where a use case that moves money or changes a
booking's state takes its row locks.

Every function here locks with SELECT ... FOR UPDATE and returns ORM objects refreshed from
the locked rows (app.db.lock_all), so nothing is ever decided on a copy read before the
lock. Ids used to FIND the rows (a payment's booking, a booking's series, a refund's
payment) are immutable, so reading them unlocked first is safe.

Lock order, the same in every use case (a transaction may skip a level, never go back up):
  1. bookings, sorted by id: a booking, or every booking a payment covers (its series)
  2. the payment covering them
  3. the refund being finished
  4. product stock rows, by product id (restock on cancel/expiry; placing deducts in the
     same order)
  5. the invoice-number counter, last, held until commit (app.invoices)
Capacity-N resource rows (app.bookings.guard) are taken by placing before it inserts and by
rescheduling after it locked the booking being moved; a placer never waits on a booking
lock (its sweep of overdue holds uses SKIP LOCKED), so the two cannot form a cycle.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.bookings.models import Booking
from app.db import lock_all
from app.errors import NotFound
from app.payments.models import Payment, Refund
from app.payments.provider_names import PAY_AT_VENUE


@dataclass(frozen=True, slots=True)
class Held:
    """Rows this transaction holds locked, read fresh after the lock."""

    bookings: list[Booking]
    payment: Payment
    refund: Refund | None = None

    @property
    def anchor(self) -> Booking:
        """The booking the payment was opened for (the first of a series)."""
        return next((b for b in self.bookings if b.id == self.payment.booking_id), self.bookings[0])


async def lock_booking(
    session: AsyncSession, tenant_id: uuid.UUID, booking_id: uuid.UUID
) -> Booking:
    rows = await lock_all(
        session, select(Booking).where(Booking.tenant_id == tenant_id, Booking.id == booking_id)
    )
    if not rows:
        raise NotFound("Booking not found", entity="booking", id=str(booking_id))
    return rows[0]


async def lock_series(
    session: AsyncSession, tenant_id: uuid.UUID, series_id: uuid.UUID
) -> list[Booking]:
    return await lock_all(
        session,
        select(Booking)
        .where(Booking.tenant_id == tenant_id, Booking.series_id == series_id)
        .order_by(Booking.id),
    )


async def lock_payment(
    session: AsyncSession, tenant_id: uuid.UUID, payment_id: uuid.UUID
) -> Payment:
    """Level 2 alone: for steps that touch only the payment (its checkout session, its fee)."""
    rows = await lock_all(
        session, select(Payment).where(Payment.tenant_id == tenant_id, Payment.id == payment_id)
    )
    if not rows:
        raise NotFound("Payment not found", entity="payment", id=str(payment_id))
    return rows[0]


async def lock_payment_of(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    booking_id: uuid.UUID,
    series_id: uuid.UUID | None,
) -> Payment | None:
    """Level 2 for a booking whose row this transaction already holds: its own payment, or
    its series' (opened on another booking of the series)."""
    query = select(Payment).where(Payment.tenant_id == tenant_id)
    own = await lock_all(session, query.where(Payment.booking_id == booking_id))
    if own or series_id is None:
        return own[0] if own else None
    series = select(Booking.id).where(
        Booking.tenant_id == tenant_id, Booking.series_id == series_id
    )
    rows = await lock_all(
        session, query.where(Payment.booking_id.in_(series.scalar_subquery())).limit(1)
    )
    return rows[0] if rows else None


async def lock_for_payment(
    session: AsyncSession, tenant_id: uuid.UUID, payment_id: uuid.UUID
) -> Held:
    """Levels 1-2 from a payment: every booking it pays for (sorted), then the payment."""
    found = (
        await session.execute(
            select(Payment.booking_id, Payment.provider, Booking.series_id)
            .join(
                Booking,
                (Booking.tenant_id == Payment.tenant_id) & (Booking.id == Payment.booking_id),
            )
            .where(Payment.tenant_id == tenant_id, Payment.id == payment_id)
        )
    ).first()
    if found is None:
        raise NotFound("Payment not found", entity="payment", id=str(payment_id))
    if found.series_id is not None and found.provider not in PAY_AT_VENUE:
        bookings = await lock_series(session, tenant_id, found.series_id)
    else:
        bookings = [await lock_booking(session, tenant_id, found.booking_id)]
    return Held(bookings, await lock_payment(session, tenant_id, payment_id))


async def lock_for_refund(
    session: AsyncSession, tenant_id: uuid.UUID, refund_id: uuid.UUID
) -> Held:
    """Levels 1-3 from a refund: the bookings and payment it belongs to, then the refund."""
    payment_id = await session.scalar(
        select(Refund.payment_id).where(Refund.tenant_id == tenant_id, Refund.id == refund_id)
    )
    if payment_id is None:
        raise NotFound("Refund not found", entity="refund", id=str(refund_id))
    held = await lock_for_payment(session, tenant_id, payment_id)
    refund = await lock_all(
        session, select(Refund).where(Refund.tenant_id == tenant_id, Refund.id == refund_id)
    )
    return Held(held.bookings, held.payment, refund[0])
