"""What the dashboard's booking page shows beyond the booking itself: its money (the
ledger's entries for it and its payment, invoices and credit notes), its timeline from the
audit trail, its series, and what each action would do to the money before it is taken."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.trail import AuditEntry, entries_for
from app.bookings.models import Booking
from app.bookings.payment_effects import MoneyPreview, preview
from app.bookings.queries import BookingView
from app.db import set_tenant
from app.invoices.models import Invoice
from app.ledger.service import Entry, entries_for_booking
from app.tenancy.models import User


@dataclass(frozen=True, slots=True)
class SeriesPosition:
    index: int  # 1-based, in time order
    count: int
    later_active: int  # not-yet-started live occurrences after this one


@dataclass(frozen=True, slots=True)
class BookingDetail:
    preview: MoneyPreview
    entries: list[Entry]
    invoices: list[Invoice]
    timeline: list[AuditEntry]
    actors: dict[uuid.UUID, str]  # user id -> email, for the timeline
    series: SeriesPosition | None


async def load_detail(
    session: AsyncSession, tenant_id: uuid.UUID, booking: BookingView, now: datetime
) -> BookingDetail:
    """One read transaction."""
    async with session.begin():
        await set_tenant(session, tenant_id)
        payment_ids = [booking.payment.id] if booking.payment is not None else []
        invoices = (
            list(
                (
                    await session.scalars(
                        select(Invoice)
                        .where(Invoice.tenant_id == tenant_id, Invoice.payment_id.in_(payment_ids))
                        .order_by(Invoice.issued_at, Invoice.number)
                    )
                ).all()
            )
            if payment_ids
            else []
        )
        timeline = await entries_for(session, tenant_id, [booking.id, *payment_ids])
        actor_ids = {e.actor_id for e in timeline if e.actor_id is not None}
        actors = (
            {
                row.id: row.email
                for row in await session.execute(
                    select(User.id, User.email).where(
                        User.tenant_id == tenant_id, User.id.in_(actor_ids)
                    )
                )
            }
            if actor_ids
            else {}
        )
        return BookingDetail(
            preview=await preview(session, booking, now),
            entries=await entries_for_booking(session, tenant_id, booking.id, payment_ids),
            invoices=invoices,
            timeline=timeline,
            actors=actors,
            series=await _series(session, tenant_id, booking, now),
        )


async def _series(
    session: AsyncSession, tenant_id: uuid.UUID, booking: BookingView, now: datetime
) -> SeriesPosition | None:
    if booking.series_id is None:
        return None
    rows = (
        await session.execute(
            select(Booking.id, Booking.starts_at, Booking.status)
            .where(Booking.tenant_id == tenant_id, Booking.series_id == booking.series_id)
            .order_by(Booking.starts_at, Booking.id)
        )
    ).all()
    ids = [row.id for row in rows]
    index = ids.index(booking.id) + 1 if booking.id in ids else 0
    later = sum(
        1
        for row in rows[index:]
        if row.status in ("pending_payment", "confirmed") and row.starts_at >= now
    )
    return SeriesPosition(index, len(rows), later)
