"""What an invoice lists: the bookings a payment covers, their products, a refund's line."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.ext.asyncio import AsyncSession

from app.invoices.amounts import Line
from app.payments.models import Refund


@dataclass(frozen=True, slots=True)
class CoveredBooking:
    id: uuid.UUID
    customer_name: str
    customer_email: str | None
    service_name: str
    branch_timezone: str
    starts_at: datetime
    unit_price_minor: int
    quantity: int
    party_size: int
    total_minor: int


class ProductRow(NamedTuple):
    """A row of PRODUCTS."""

    booking_id: uuid.UUID
    product_id: uuid.UUID
    quantity: int
    unit_price_minor: int
    name: str


# A payment covers its anchor booking and, for a series paid at once, every booking of the
# series that has no payment of its own (pay-at-venue series carry one payment per booking).
COVERED = text(
    """
    SELECT b.id, b.customer_name, b.customer_email, s.name AS service_name,
           br.timezone AS branch_timezone, b.starts_at, b.unit_price_minor, b.quantity,
           b.party_size, b.total_minor
    FROM bookings b
    JOIN services s ON s.tenant_id = b.tenant_id AND s.id = b.service_id
    JOIN branches br ON br.tenant_id = b.tenant_id AND br.id = b.branch_id
    WHERE b.tenant_id = :t AND (
        b.id = :anchor
        OR (b.series_id = (SELECT series_id FROM bookings WHERE tenant_id = :t AND id = :anchor)
            AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.tenant_id = b.tenant_id
                            AND p.booking_id = b.id AND p.id <> :payment)))
    ORDER BY b.starts_at, b.id
    """
)

PRODUCTS = text(
    """
    SELECT bp.booking_id, bp.product_id, bp.quantity, bp.unit_price_minor, p.name
    FROM booking_products bp
    JOIN products p ON p.tenant_id = bp.tenant_id AND p.id = bp.product_id
    WHERE bp.tenant_id = :t AND bp.booking_id = ANY(:ids)
    ORDER BY p.name, bp.product_id
    """
).bindparams(bindparam("ids", type_=ARRAY(UUID(as_uuid=True))))


async def covered_bookings(
    session: AsyncSession, tenant_id: uuid.UUID, payment_id: uuid.UUID, anchor: uuid.UUID
) -> list[CoveredBooking]:
    rows = (
        await session.execute(COVERED, {"t": tenant_id, "anchor": anchor, "payment": payment_id})
    ).all()
    return [covered_from(r) for r in rows]


def covered_from(r: Any) -> CoveredBooking:
    """A CoveredBooking from a row of COVERED (SQLAlchemy's or psycopg's named tuple)."""
    return CoveredBooking(
        r.id,
        r.customer_name,
        r.customer_email,
        r.service_name,
        r.branch_timezone,
        r.starts_at,
        int(r.unit_price_minor),
        r.quantity,
        r.party_size,
        int(r.total_minor),
    )


async def booking_lines(
    session: AsyncSession, tenant_id: uuid.UUID, bookings: Sequence[CoveredBooking]
) -> list[Line]:
    """Per booking: the service line, then its products. The service line is the booking's
    total less its products, so the booking's stored total is what the invoice states."""
    rows = (
        await session.execute(PRODUCTS, {"t": tenant_id, "ids": [b.id for b in bookings]})
    ).all()
    return lines_of(bookings, rows)


def lines_of(bookings: Sequence[CoveredBooking], rows: Sequence[Any]) -> list[Line]:
    """booking_lines from PRODUCTS rows (booking_id, product_id, quantity, unit_price_minor,
    name) already read."""
    result: list[Line] = []
    for booking in bookings:
        products = [
            Line(
                r.name,
                r.quantity,
                int(r.unit_price_minor),
                r.quantity * int(r.unit_price_minor),
                booking.id,
                r.product_id,
            )
            for r in rows
            if r.booking_id == booking.id
        ]
        result.append(_service_line(booking, sum(p.amount_minor for p in products)))
        result.extend(products)
    return result


def _service_line(booking: CoveredBooking, products_minor: int) -> Line:
    local = booking.starts_at.astimezone(ZoneInfo(booking.branch_timezone))
    description = f"{booking.service_name} · {local:%Y-%m-%d %H:%M}"
    amount = max(0, booking.total_minor - products_minor)
    quantity = booking.quantity * booking.party_size
    if quantity >= 1 and booking.unit_price_minor * quantity == amount:
        return Line(description, quantity, booking.unit_price_minor, amount, booking.id)
    return Line(description, 1, amount, amount, booking.id)


async def refund_line(
    session: AsyncSession, tenant_id: uuid.UUID, refund: Refund, invoice_number: str | None
) -> Line:
    name = await session.scalar(
        text(
            "SELECT s.name FROM bookings b JOIN services s "
            "ON s.tenant_id = b.tenant_id AND s.id = b.service_id "
            "WHERE b.tenant_id = :t AND b.id = :b"
        ),
        {"t": tenant_id, "b": refund.booking_id},
    )
    subject = f"{name} " if name else ""
    # The invoice has no number yet when it is issued in the refund's own transaction (both
    # are numbered at its commit); the credit note still names it in credits_number.
    credited = f"(invoice {invoice_number})" if invoice_number else "(invoice issued with it)"
    description = f"Refund of {subject}{credited}: {refund.reason}"
    return Line(description, 1, refund.amount_minor, refund.amount_minor, refund.booking_id)
