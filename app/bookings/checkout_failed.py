"""A payment whose hosted checkout the provider refused to open (a wrong API key, parameters
it will never accept) fails visibly instead of leaving its booking held with no page to pay on.

One transaction, locked through app/bookings/locks.py like every money use case (bookings,
then the payment): the held bookings expire, which frees their slots and releases the unpaid
receivable exactly as a hold that ran out; the payment ends `failed` with the provider's
reason; an audit row records it; and a `booking.payment_failed` event (live stream, staged in
the same transaction) tells the owner which booking and why. Keeping the hold open for
another attempt instead would be a per-business preference; it does not exist yet.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import trail as audit
from app.bookings import events, lifecycle, locks
from app.bookings import payment_effects as money
from app.bookings.models import PENDING_PAYMENT
from app.bookings.queries import BookingView, lines_of
from app.db import retry_on_contention, set_tenant_and_lock_timeout
from app.outbox.service import stage
from app.payments.models import FAILED, OPEN

TOPIC_PAYMENT_FAILED = events.BOOKING_PAYMENT_FAILED
AUDIT_ACTION = "payment.checkout_failed"
PROVIDER = audit.Actor("provider")
LOCK_TIMEOUT_MS = 3000
MAX_REASON = 500


@dataclass(frozen=True, slots=True)
class CheckoutFailed:
    changed: bool
    released: tuple[uuid.UUID, ...] = ()


@retry_on_contention()
async def record_checkout_failed(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    payment_id: uuid.UUID,
    *,
    reason: str,
    now: datetime,
) -> CheckoutFailed:
    """Idempotent: a payment no longer open, or whose page was opened after all, is left
    as it is."""
    reason = reason[:MAX_REASON]
    async with session.begin():
        await set_tenant_and_lock_timeout(session, tenant_id, LOCK_TIMEOUT_MS)
        held = await locks.lock_for_payment(session, tenant_id, payment_id)
        payment = held.payment
        if payment.status not in OPEN or payment.checkout_url:
            return CheckoutFailed(changed=False)
        before = {"status": payment.status}
        released: list[BookingView] = []
        for row in held.bookings:
            if row.status == PENDING_PAYMENT:
                view = await lifecycle.apply_transition(
                    session, tenant_id, PROVIDER, row, "expire", now
                )
                released.append(view)
        # Expiring released the unpaid receivable and ended the payment as "cancelled"; what
        # ended it is the provider's refusal, so that is what the payment says.
        payment.status = FAILED
        payment.failure_reason = reason
        payment.updated_at = now
        audit.record(
            session,
            tenant_id,
            PROVIDER,
            AUDIT_ACTION,
            "payment",
            payment.id,
            before=before,
            after={
                "status": FAILED,
                "provider": payment.provider,
                "reason": reason,
                "released_bookings": [str(view.id) for view in released],
            },
        )
        anchor = next((v for v in released if v.id == held.anchor.id), None)
        if anchor is None:
            anchor = BookingView.of(held.anchor, await lines_of(session, held.anchor.id))
        await stage(
            session,
            tenant_id,
            TOPIC_PAYMENT_FAILED,
            "booking",
            anchor.id,
            {
                **money.event_payload(anchor, TOPIC_PAYMENT_FAILED),
                "payment_id": payment.id,
                "provider": payment.provider,
                "reason": reason,
                "released_bookings": [view.id for view in released],
            },
        )
        return CheckoutFailed(changed=True, released=tuple(v.id for v in released))
