"""Revenue recognition on completion, commission accrual, and money kept on a cancellation
or no-show. Inside the caller's transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.ledger import chart
from app.ledger.service import post
from app.money import Money
from app.payments import policy
from app.payments.refunds import refunded_for_booking
from app.payments.types import Charge, CommissionRule


async def retain(
    session: AsyncSession, charge: Charge, amount_minor: int, key: str, now: datetime
) -> None:
    """Money kept on a cancellation or no-show becomes revenue."""
    if amount_minor <= 0:
        return
    await post(
        session,
        charge.tenant_id,
        idempotency_key=f"booking:{charge.booking_id}:{key}",
        reason=key,
        lines=chart.retained(charge.service_id, Money(amount_minor, charge.total.currency)),
        occurred_at=now,
        booking_id=charge.booking_id,
        dimensions=charge.dimensions,
    )


async def recognise(
    session: AsyncSession, charge: Charge, rule: CommissionRule, now: datetime
) -> int:
    """Completion: what is left of the booking's deferred revenue becomes revenue, and the
    staff member's commission accrues to their payable account."""
    refunded = await refunded_for_booking(session, charge.tenant_id, charge.booking_id)
    amount = charge.total.amount_minor - refunded
    if amount > 0:
        await post(
            session,
            charge.tenant_id,
            idempotency_key=f"booking:{charge.booking_id}:recognised",
            reason="revenue",
            lines=chart.recognised(charge.service_id, Money(amount, charge.total.currency)),
            occurred_at=now,
            booking_id=charge.booking_id,
            dimensions=charge.dimensions,
        )
    share = policy.commission_minor(
        amount,
        fixed_minor=rule.fixed_minor,
        service_bps=rule.service_bps,
        resource_bps=rule.resource_bps,
    )
    if share > 0:
        await post(
            session,
            charge.tenant_id,
            idempotency_key=f"booking:{charge.booking_id}:commission",
            reason="commission",
            lines=chart.commission(charge.resource_id, Money(share, charge.total.currency)),
            occurred_at=now,
            booking_id=charge.booking_id,
            dimensions=charge.dimensions,
        )
    return share
