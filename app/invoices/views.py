"""Read models of invoices and credit notes, built from their rows."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.invoices.models import Invoice, InvoiceLine
from app.money import Money


@dataclass(frozen=True, slots=True)
class LineView:
    position: int
    description: str
    quantity: int
    unit_price: Money
    amount: Money
    booking_id: uuid.UUID | None
    product_id: uuid.UUID | None


@dataclass(frozen=True, slots=True)
class InvoiceView:
    id: uuid.UUID
    kind: str
    number: str
    issued_at: datetime
    payment_id: uuid.UUID
    refund_id: uuid.UUID | None
    credits_invoice_id: uuid.UUID | None
    credits_number: str | None
    booking_id: uuid.UUID
    business_name: str
    timezone: str
    customer_name: str
    customer_email: str | None
    subtotal: Money
    tax: Money
    total: Money
    tax_rate_bps: int
    tax_label: str
    footer: str | None
    lines: tuple[LineView, ...]


@dataclass(frozen=True, slots=True)
class SettingsView:
    tax_rate_bps: int
    tax_label: str
    footer: str | None


def invoice_view(row: Invoice, lines: Sequence[InvoiceLine]) -> InvoiceView:
    currency = row.currency
    return InvoiceView(
        id=row.id,
        kind=row.kind,
        # Numbered at the issuing transaction's commit: empty only to that transaction itself.
        number=row.number or "",
        issued_at=row.issued_at,
        payment_id=row.payment_id,
        refund_id=row.refund_id,
        credits_invoice_id=row.credits_invoice_id,
        credits_number=row.credits_number,
        booking_id=row.booking_id,
        business_name=row.business_name,
        timezone=row.timezone,
        customer_name=row.customer_name,
        customer_email=row.customer_email,
        subtotal=Money(row.subtotal_minor, currency),
        tax=Money(row.tax_minor, currency),
        total=Money(row.total_minor, currency),
        tax_rate_bps=row.tax_rate_bps,
        tax_label=row.tax_label,
        footer=row.footer,
        lines=tuple(
            LineView(
                line.position,
                line.description,
                line.quantity,
                Money(line.unit_price_minor, currency),
                Money(line.amount_minor, currency),
                line.booking_id,
                line.product_id,
            )
            for line in sorted(lines, key=lambda line: line.position)
        ),
    )


async def load_views(session: AsyncSession, rows: Sequence[Invoice]) -> list[InvoiceView]:
    """Views of `rows` with their lines, read in one query (tenant already set)."""
    if not rows:
        return []
    ids = [row.id for row in rows]
    lines = (
        await session.scalars(
            select(InvoiceLine).where(
                InvoiceLine.tenant_id == rows[0].tenant_id, InvoiceLine.invoice_id.in_(ids)
            )
        )
    ).all()
    by_invoice: dict[uuid.UUID, list[InvoiceLine]] = {}
    for line in lines:
        by_invoice.setdefault(line.invoice_id, []).append(line)
    return [invoice_view(row, by_invoice.get(row.id, [])) for row in rows]
