"""Reads for the payment path: what a provider handler needs, and a payment as the API shows
it. Each runs in its own short transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import set_tenant
from app.errors import NotFound
from app.money import Money
from app.payments import service as payments
from app.payments.models import Payment


@dataclass(frozen=True, slots=True)
class CheckoutContext:
    """What a provider needs to open a hosted payment page for a payment."""

    payment: payments.PaymentView
    provider_ref: str | None
    checkout_session_id: str | None
    customer_email: str | None
    description: str


async def checkout_context(
    session: AsyncSession, tenant_id: uuid.UUID, payment_id: uuid.UUID
) -> CheckoutContext:
    async with session.begin():
        await set_tenant(session, tenant_id)
        payment = await session.get(Payment, (tenant_id, payment_id))
        if payment is None:
            raise NotFound("Payment not found", entity="payment", id=str(payment_id))
        row = (
            await session.execute(
                text(
                    "SELECT b.customer_email, s.name, b.starts_at FROM bookings b "
                    "JOIN services s ON s.tenant_id = b.tenant_id AND s.id = b.service_id "
                    "WHERE b.tenant_id = :t AND b.id = :b"
                ),
                {"t": tenant_id, "b": payment.booking_id},
            )
        ).one()
        return CheckoutContext(
            payments.PaymentView.of(payment),
            payment.provider_ref,
            payment.checkout_session_id,
            row.customer_email,
            f"{row.name} on {row.starts_at:%Y-%m-%d %H:%M} UTC",
        )


@dataclass(frozen=True, slots=True)
class RefundContext:
    refund_id: uuid.UUID
    status: str
    amount: Money
    reason: str
    payment_id: uuid.UUID
    provider: str
    provider_ref: str | None


async def refund_context(
    session: AsyncSession, tenant_id: uuid.UUID, refund_id: uuid.UUID
) -> RefundContext:
    async with session.begin():
        await set_tenant(session, tenant_id)
        refund = await payments.get_refund(session, tenant_id, refund_id)
        payment = await session.get(Payment, (tenant_id, refund.payment_id))
        assert payment is not None
        return RefundContext(
            refund.id,
            refund.status,
            Money(refund.amount_minor, refund.currency),
            refund.reason,
            payment.id,
            payment.provider,
            payment.provider_ref,
        )


async def get_payment(
    session: AsyncSession, tenant_id: uuid.UUID, payment_id: uuid.UUID
) -> payments.PaymentView:
    async with session.begin():
        await set_tenant(session, tenant_id)
        payment = await session.get(Payment, (tenant_id, payment_id))
        if payment is None:
            raise NotFound("Payment not found", entity="payment", id=str(payment_id))
        return payments.PaymentView.of(payment)


async def payment_tenant(session: AsyncSession, payment_id: uuid.UUID) -> uuid.UUID | None:
    """The tenant a payment belongs to, before any tenant is set (a webhook names only the
    payment); a narrow SECURITY DEFINER lookup."""
    async with session.begin():
        found = await session.scalar(text("SELECT payment_tenant(:p)"), {"p": payment_id})
    return found if isinstance(found, uuid.UUID) else None
