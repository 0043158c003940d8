"""Refunds: reserved on the payment, posted to the ledger, asked of the provider through
the outbox; finished (or reversed) when the provider answers. Inside the caller's transaction."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import new_id
from app.errors import InvalidState, NotFound
from app.ledger import chart
from app.ledger.service import find_entry_by_key, post, reverse
from app.money import Money
from app.outbox.service import stage
from app.payments.models import (
    CAPTURED,
    FAILED,
    PARTIALLY_REFUNDED,
    REFUNDED,
    SUCCEEDED,
    Payment,
    Refund,
)
from app.payments.provider_names import ONLINE_PROVIDERS
from app.payments.types import TOPIC_REFUND, Charge, RefundExceedsCapture


async def record_external_refund(
    session: AsyncSession,
    payment: Payment,
    charge: Charge,
    *,
    amount_minor: int,
    provider_ref: str,
    completed: bool,
    now: datetime,
) -> Refund | None:
    """A refund made at the provider (e.g. in its dashboard), not asked for by us: book it
    once per provider reference, already succeeded."""
    seen = await session.scalar(
        select(Refund.id).where(
            Refund.tenant_id == payment.tenant_id, Refund.provider_ref == provider_ref
        )
    )
    if seen is not None:
        return None
    refund = await create_refund(
        session,
        payment,
        charge,
        amount_minor=amount_minor,
        reason="provider",
        completed=completed,
        now=now,
        ask_provider=False,
    )
    refund.provider_ref = provider_ref
    return refund


async def refunded_for_booking(
    session: AsyncSession, tenant_id: uuid.UUID, booking_id: uuid.UUID
) -> int:
    value = await session.scalar(
        text(
            "SELECT coalesce(sum(amount_minor), 0) FROM refunds WHERE tenant_id = :t "
            "AND booking_id = :b AND status <> 'failed'"
        ),
        {"t": tenant_id, "b": booking_id},
    )
    return int(value or 0)


async def create_refund(
    session: AsyncSession,
    payment: Payment,
    charge: Charge,
    *,
    amount_minor: int,
    reason: str,
    completed: bool,
    now: datetime,
    ask_provider: bool = True,
) -> Refund:
    """Reserve the refund on the payment (the CHECK refuses more than captured), post it, and
    ask the provider through the outbox. Cash refunds are handed over at the venue at once."""
    if amount_minor <= 0:
        raise InvalidState("Nothing is refundable", payment_id=str(payment.id))
    if payment.status not in CAPTURED:
        raise InvalidState("Only a captured payment can be refunded", status=payment.status)
    if payment.refunded_minor + amount_minor > payment.captured_minor:
        raise RefundExceedsCapture(
            refundable=payment.captured_minor - payment.refunded_minor, requested=amount_minor
        )
    refund = Refund(
        tenant_id=payment.tenant_id,
        id=new_id(),
        payment_id=payment.id,
        booking_id=charge.booking_id,
        amount_minor=amount_minor,
        currency=payment.currency,
        status="pending",
        reason=reason,
        created_at=now,
        updated_at=now,
    )
    session.add(refund)
    payment.refunded_minor += amount_minor
    payment.status = (
        REFUNDED if payment.refunded_minor == payment.captured_minor else PARTIALLY_REFUNDED
    )
    payment.updated_at = now
    await session.flush()
    source = charge.service_id if completed else None
    await post(
        session,
        payment.tenant_id,
        idempotency_key=f"refund:{refund.id}",
        reason="refund",
        lines=chart.refunded(
            payment.provider, Money(amount_minor, payment.currency), from_revenue=source
        ),
        occurred_at=now,
        booking_id=charge.booking_id,
        payment_id=payment.id,
        dimensions=charge.dimensions,
    )
    if payment.provider in ONLINE_PROVIDERS and ask_provider:
        await stage(
            session,
            payment.tenant_id,
            TOPIC_REFUND,
            "payment",
            payment.id,
            {"refund_id": refund.id, "payment_id": payment.id},
        )
    else:
        refund.status = SUCCEEDED
    return refund


async def finish_refund(
    session: AsyncSession,
    payment: Payment,
    refund: Refund,
    *,
    succeeded: bool,
    provider_ref: str | None,
    reason: str | None,
    now: datetime,
) -> bool:
    """The provider's answer. A failed refund gives the amount back to the payment and
    reverses its ledger entry. False when the refund had already finished."""
    if refund.status != "pending":
        return False
    refund.provider_ref = provider_ref or refund.provider_ref
    refund.updated_at = now
    if succeeded:
        refund.status = SUCCEEDED
        return True
    refund.status = FAILED
    refund.failure_reason = reason
    payment.refunded_minor -= refund.amount_minor
    payment.status = SUCCEEDED if payment.refunded_minor == 0 else PARTIALLY_REFUNDED
    payment.updated_at = now
    await session.flush()
    entry = await find_entry_by_key(session, payment.tenant_id, f"refund:{refund.id}")
    if entry is not None:
        await reverse(
            session,
            payment.tenant_id,
            entry.id,
            f"refund:{refund.id}:failed",
            "refund_failed",
            occurred_at=now,
        )
    return True


async def get_refund(session: AsyncSession, tenant_id: uuid.UUID, refund_id: uuid.UUID) -> Refund:
    """Read only; a use case that changes a refund locks it (app/bookings/locks.py)."""
    refund = await session.get(Refund, (tenant_id, refund_id))
    if refund is None:
        raise NotFound("Refund not found", entity="refund", id=str(refund_id))
    return refund
