"""Rows invoices are made from, written directly as the owner: a catalog, bookings (one or a
series, with products), a captured payment and refunds. Issuing runs through the real service
in an app-role transaction with the tenant set."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.db import tenant_transaction
from app.invoices.queries import get_invoice
from app.invoices.service import issue_credit_note, issue_invoice
from app.invoices.views import InvoiceView

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@dataclass
class Shop:
    tenant_id: uuid.UUID
    currency: str
    branch_id: uuid.UUID = field(default_factory=uuid.uuid4)
    service_id: uuid.UUID = field(default_factory=uuid.uuid4)
    resource_id: uuid.UUID = field(default_factory=uuid.uuid4)
    product_id: uuid.UUID = field(default_factory=uuid.uuid4)


@dataclass
class Paid:
    payment_id: uuid.UUID
    booking_ids: list[uuid.UUID]
    amount_minor: int


async def make_tenant(
    owner: AsyncEngine, *, currency: str = "EGP", timezone: str = "Africa/Cairo"
) -> uuid.UUID:
    tenant_id = uuid.uuid4()
    async with owner.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO tenants (id, slug, name, currency, timezone) "
                "VALUES (:id, :slug, 'Nile Spa', :cur, :tz)"
            ),
            {"id": tenant_id, "slug": f"t-{tenant_id.hex[:12]}", "cur": currency, "tz": timezone},
        )
    return tenant_id


async def make_shop(
    owner: AsyncEngine,
    tenant_id: uuid.UUID,
    *,
    currency: str = "EGP",
    service_name: str = "Massage",
    product_name: str = "Oil",
    product_price_minor: int = 2_500,
) -> Shop:
    shop = Shop(tenant_id, currency)
    p = {
        "t": tenant_id,
        "b": shop.branch_id,
        "s": shop.service_id,
        "r": shop.resource_id,
        "p": shop.product_id,
        "cur": currency,
    }
    async with owner.begin() as conn:
        for statement in (
            "INSERT INTO branches (tenant_id, id, name, timezone) "
            "VALUES (:t, :b, 'Main', 'Africa/Cairo')",
            "INSERT INTO services (tenant_id, id, name, policy, price_minor, currency, pricing, "
            "duration_minutes, slot_step_minutes) "
            "VALUES (:t, :s, :sname, 'time_slot', 10000, :cur, 'fixed', 60, 60)",
            "INSERT INTO resources (tenant_id, id, name, kind, capacity) "
            "VALUES (:t, :r, 'Room', 'room', 1)",
            "INSERT INTO products (tenant_id, id, name, price_minor, currency) "
            "VALUES (:t, :p, :pname, :pprice, :cur)",
        ):
            await conn.execute(
                text(statement),
                {**p, "sname": service_name, "pname": product_name, "pprice": product_price_minor},
            )
    return shop


async def make_paid(
    owner: AsyncEngine,
    shop: Shop,
    *,
    unit_price_minor: int = 10_000,
    party_size: int = 1,
    series: int = 1,
    products: int = 0,
    product_price_minor: int = 2_500,
    customer_name: str = "Layla Hassan",
    status: str = "succeeded",
    provider: str = "stripe",
    start: datetime = NOW + timedelta(days=1),
) -> Paid:
    """`series` bookings (one series when > 1) paid by one payment on the first of them;
    `products` units of the shop's product on each booking."""
    booking_ids = [uuid.uuid4() for _ in range(series)]
    series_id = uuid.uuid4() if series > 1 else None
    service_minor = unit_price_minor * party_size
    booking_total = service_minor + products * product_price_minor
    amount = booking_total * series
    payment_id = uuid.uuid4()
    async with owner.begin() as conn:
        for number, booking_id in enumerate(booking_ids):
            begins = start + timedelta(weeks=number)
            await conn.execute(
                text(
                    "INSERT INTO bookings (tenant_id, id, branch_id, service_id, resource_id, "
                    "series_id, customer_name, customer_email, party_size, starts_at, ends_at, "
                    "blocked, exclusive, status, unit_price_minor, pricing, quantity, "
                    "total_minor, currency, payment_provider) VALUES (:t, :id, :b, :s, :r, "
                    ":series, :name, 'layla@example.com', :party, :start, :end, "
                    "tstzrange(:start, :end, '[)'), false, 'confirmed', :unit, 'fixed', 1, "
                    ":total, :cur, :provider)"
                ),
                {
                    "t": shop.tenant_id,
                    "id": booking_id,
                    "b": shop.branch_id,
                    "s": shop.service_id,
                    "r": shop.resource_id,
                    "series": series_id,
                    "name": customer_name,
                    "party": party_size,
                    "start": begins,
                    "end": begins + timedelta(hours=1),
                    "unit": unit_price_minor,
                    "total": booking_total,
                    "cur": shop.currency,
                    "provider": provider,
                },
            )
            if products:
                await conn.execute(
                    text(
                        "INSERT INTO booking_products VALUES (:t, :booking, :p, :q, :price, :cur)"
                    ),
                    {
                        "t": shop.tenant_id,
                        "booking": booking_id,
                        "p": shop.product_id,
                        "q": products,
                        "price": product_price_minor,
                        "cur": shop.currency,
                    },
                )
        captured = amount if status in ("succeeded", "partially_refunded", "refunded") else 0
        await conn.execute(
            text(
                "INSERT INTO payments (tenant_id, id, booking_id, provider, status, amount_minor, "
                "currency, captured_minor) VALUES (:t, :id, :b, :provider, :status, :amount, "
                ":cur, :captured)"
            ),
            {
                "t": shop.tenant_id,
                "id": payment_id,
                "b": booking_ids[0],
                "provider": provider,
                "status": status,
                "amount": amount,
                "cur": shop.currency,
                "captured": captured,
            },
        )
    return Paid(payment_id, booking_ids, amount)


async def make_refund(
    owner: AsyncEngine,
    shop: Shop,
    paid: Paid,
    amount_minor: int,
    *,
    status: str = "succeeded",
    reason: str = "cancelled",
) -> uuid.UUID:
    refund_id = uuid.uuid4()
    async with owner.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO refunds (tenant_id, id, payment_id, booking_id, amount_minor, "
                "currency, status, reason) VALUES (:t, :id, :p, :b, :a, :cur, :status, :reason)"
            ),
            {
                "t": shop.tenant_id,
                "id": refund_id,
                "p": paid.payment_id,
                "b": paid.booking_ids[0],
                "a": amount_minor,
                "cur": shop.currency,
                "status": status,
                "reason": reason,
            },
        )
        if status != "failed":
            await conn.execute(
                text(
                    "UPDATE payments SET refunded_minor = refunded_minor + :a "
                    "WHERE tenant_id = :t AND id = :p"
                ),
                {"t": shop.tenant_id, "p": paid.payment_id, "a": amount_minor},
            )
    return refund_id


async def set_rate(owner: AsyncEngine, tenant_id: uuid.UUID, rate_bps: int) -> None:
    async with owner.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO invoice_settings (tenant_id, id, tax_rate_bps) VALUES (:t, :id, :r) "
                "ON CONFLICT (tenant_id) DO UPDATE SET tax_rate_bps = EXCLUDED.tax_rate_bps"
            ),
            {"t": tenant_id, "id": uuid.uuid4(), "r": rate_bps},
        )


async def invoice(
    sessions: async_sessionmaker[AsyncSession],
    tenant_id: uuid.UUID,
    payment_id: uuid.UUID,
    now: datetime = NOW,
) -> InvoiceView:
    async with tenant_transaction(sessions, tenant_id) as session:
        issued = await issue_invoice(session, tenant_id, payment_id, now)
    # Numbered at commit: read it as every reader after the commit does.
    return await view_of(sessions, tenant_id, issued.id)


async def credit(
    sessions: async_sessionmaker[AsyncSession],
    tenant_id: uuid.UUID,
    refund_id: uuid.UUID,
    now: datetime = NOW,
) -> InvoiceView:
    async with tenant_transaction(sessions, tenant_id) as session:
        issued = await issue_credit_note(session, tenant_id, refund_id, now)
    return await view_of(sessions, tenant_id, issued.id)


async def view_of(
    sessions: async_sessionmaker[AsyncSession], tenant_id: uuid.UUID, invoice_id: uuid.UUID
) -> InvoiceView:
    async with sessions() as session:
        return await get_invoice(session, tenant_id, invoice_id)
