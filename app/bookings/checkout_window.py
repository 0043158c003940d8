"""How long a hosted payment page stays open, derived only from stored rows.

A retried Stripe request under the same Idempotency-Key must carry byte-identical
parameters, or Stripe refuses it (and the outbox row dies). So `expires_at` is not "now + 30
minutes" but a function of the payment's created_at and its booking's hold_expires_at, the
same on every attempt.

Stripe's rules, counted by Stripe's clock from the moment it creates the session: expires_at
at least 30 minutes and at most 24 hours ahead. The page therefore closes a margin past the
hold's end plus those 30 minutes, so the first attempts have well over 30 minutes in hand
and a clock a little apart from Stripe's does not matter. An attempt is late when Stripe
could no longer accept that expires_at: without the 24-hour clamp, exactly when the hold is
over. A page for a hold that is over could only take money for a slot no longer held (which
checkout refunds at once), so a late attempt opens nothing and the hold expiry sweep ends the
booking and its payment as for any unpaid hold.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.bookings.service import HOLD
from app.db import set_tenant
from app.errors import NotFound

STRIPE_MIN_LIFETIME = timedelta(minutes=30)
STRIPE_MAX_LIFETIME = timedelta(hours=24)
CLOCK_MARGIN = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class CheckoutWindow:
    payment_created_at: datetime
    hold_expires_at: datetime | None

    @property
    def hold_end(self) -> datetime:
        # Every online payment's booking holds its slot; HOLD is the fallback if one did not.
        end = self.hold_expires_at or self.payment_created_at + HOLD
        return max(end, self.payment_created_at)

    @property
    def expires_at(self) -> datetime:
        """When the page closes: whole seconds, identical on every attempt."""
        created = self.payment_created_at
        wanted = self.hold_end + STRIPE_MIN_LIFETIME + CLOCK_MARGIN
        latest = created + STRIPE_MAX_LIFETIME - CLOCK_MARGIN
        return min(wanted, latest).replace(microsecond=0)

    def too_late(self, now: datetime) -> bool:
        """Stripe would refuse expires_at from an attempt made at `now`."""
        return self.expires_at - now < STRIPE_MIN_LIFETIME + CLOCK_MARGIN


async def checkout_window(
    session: AsyncSession, tenant_id: uuid.UUID, payment_id: uuid.UUID
) -> CheckoutWindow:
    async with session.begin():
        await set_tenant(session, tenant_id)
        row = (
            await session.execute(
                text(
                    "SELECT p.created_at, b.hold_expires_at FROM payments p "
                    "JOIN bookings b ON b.tenant_id = p.tenant_id AND b.id = p.booking_id "
                    "WHERE p.tenant_id = :t AND p.id = :p"
                ),
                {"t": tenant_id, "p": payment_id},
            )
        ).one_or_none()
        if row is None:
            raise NotFound("Payment not found", entity="payment", id=str(payment_id))
        return CheckoutWindow(row.created_at, row.hold_expires_at)
