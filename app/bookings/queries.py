"""Read use cases and the BookingView every booking use case returns."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.bookings.models import STATUSES, Booking, BookingProduct
from app.db import set_tenant
from app.errors import NotFound
from app.money import Money
from app.paging import MAX_LIMIT, Bound, Key, Keyset, Page, business_zone, page_size, period
from app.payments.service import PaymentView, payments_for
from app.validation import field_error


@dataclass(frozen=True, slots=True)
class LineView:
    product_id: uuid.UUID
    quantity: int
    unit_price_minor: int


@dataclass(frozen=True, slots=True)
class BookingView:
    id: uuid.UUID
    tenant_id: uuid.UUID
    status: str
    start: datetime
    end: datetime
    resource_id: uuid.UUID
    service_id: uuid.UUID
    branch_id: uuid.UUID
    series_id: uuid.UUID | None
    party_size: int
    customer_name: str
    customer_email: str | None
    customer_phone: str | None
    customer_locale: str
    total: Money
    unit_price_minor: int
    pricing: str
    quantity: int
    provider: str
    hold_expires_at: datetime | None
    version: int
    products: tuple[LineView, ...] = ()

    payment: PaymentView | None = None

    @classmethod
    def of(cls, row: Booking, products: tuple[LineView, ...] = ()) -> BookingView:
        return cls(
            id=row.id,
            tenant_id=row.tenant_id,
            status=row.status,
            start=row.starts_at,
            end=row.ends_at,
            resource_id=row.resource_id,
            service_id=row.service_id,
            branch_id=row.branch_id,
            series_id=row.series_id,
            party_size=row.party_size,
            customer_name=row.customer_name,
            customer_email=row.customer_email,
            customer_phone=row.customer_phone,
            customer_locale=row.customer_locale,
            total=Money(row.total_minor, row.currency),
            unit_price_minor=row.unit_price_minor,
            pricing=row.pricing,
            quantity=row.quantity,
            provider=row.payment_provider,
            hold_expires_at=row.hold_expires_at,
            version=row.version,
            products=products,
        )


async def find_booking_row(
    session: AsyncSession, tenant_id: uuid.UUID, booking_id: uuid.UUID, *, for_update: bool = False
) -> Booking | None:
    query = select(Booking).where(Booking.tenant_id == tenant_id, Booking.id == booking_id)
    if for_update:
        query = query.with_for_update()
    return (await session.scalars(query.execution_options(populate_existing=True))).first()


async def lines_of(session: AsyncSession, booking_id: uuid.UUID) -> tuple[LineView, ...]:
    rows = await session.scalars(
        select(BookingProduct)
        .where(BookingProduct.booking_id == booking_id)
        .order_by(BookingProduct.product_id)
    )
    return tuple(LineView(r.product_id, r.quantity, r.unit_price_minor) for r in rows)


async def get_booking(
    session: AsyncSession, tenant_id: uuid.UUID, booking_id: uuid.UUID
) -> BookingView:
    async with session.begin():
        await set_tenant(session, tenant_id)
        row = await find_booking_row(session, tenant_id, booking_id)
        if row is None:
            raise NotFound("Booking not found", entity="booking", id=str(booking_id))
        view = BookingView.of(row, await lines_of(session, booking_id))
        return (await with_payments(session, tenant_id, [view]))[0]


async def with_payments(
    session: AsyncSession, tenant_id: uuid.UUID, views: list[BookingView]
) -> list[BookingView]:
    found = await payments_for(session, tenant_id, [(v.id, v.series_id) for v in views])
    return [replace(v, payment=found.get(v.id)) for v in views]


BOOKING_ORDER = Keyset(
    "bookings", Key(Booking.starts_at, datetime, attribute="start"), Key(Booking.id, uuid.UUID)
)


async def list_bookings(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    start: Bound,
    end: Bound,
    status: str | None = None,
    resource_id: uuid.UUID | None = None,
    cursor: str | None = None,
    limit: int = MAX_LIMIT,
) -> Page[BookingView]:
    """One page of the bookings starting in the period (dates in the business's timezone,
    `end` included), by start time."""
    if status is not None and status not in STATUSES:
        raise field_error("status", f"must be one of {', '.join(STATUSES)}")
    after = BOOKING_ORDER.after(cursor)
    size = page_size(limit)
    async with session.begin():
        await set_tenant(session, tenant_id)
        since, until = period(start, end, await business_zone(session, tenant_id))
        query = select(Booking).where(
            Booking.tenant_id == tenant_id, Booking.starts_at >= since, Booking.starts_at < until
        )
        if status is not None:
            query = query.where(Booking.status == status)
        if resource_id is not None:
            query = query.where(Booking.resource_id == resource_id)
        if after is not None:
            query = query.where(after)
        rows = await session.scalars(query.order_by(*BOOKING_ORDER.order_by()).limit(size + 1))
        page = BOOKING_ORDER.page([BookingView.of(row) for row in rows], size)
        return Page(await with_payments(session, tenant_id, page.items), page.next)


@dataclass(frozen=True, slots=True)
class CalendarRow:
    """What a calendar draws of a booking: no money, no contact details."""

    id: uuid.UUID
    status: str
    start: datetime
    end: datetime
    resource_id: uuid.UUID
    service_id: uuid.UUID
    customer_name: str


async def bookings_overlapping(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    since: datetime,
    until: datetime,
    *,
    statuses: frozenset[str],
    longest: timedelta,
) -> list[CalendarRow]:
    """Bookings in `statuses` that overlap [since, until), by start. `longest` bounds how
    long before `since` one may start (a stay), so the start-time index does the work."""
    async with session.begin():
        await set_tenant(session, tenant_id)
        rows = await session.execute(
            select(
                Booking.id,
                Booking.status,
                Booking.starts_at,
                Booking.ends_at,
                Booking.resource_id,
                Booking.service_id,
                Booking.customer_name,
            )
            .where(
                Booking.tenant_id == tenant_id,
                Booking.starts_at >= since - longest,
                Booking.starts_at < until,
                Booking.ends_at > since,
                Booking.status.in_(sorted(statuses)),
            )
            .order_by(Booking.starts_at, Booking.id)
        )
        return [CalendarRow(*row) for row in rows]
