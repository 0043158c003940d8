"""Use cases where a payment provider's answer meets a booking: capture, failure, expiry of the
checkout, refunds. Each is one transaction and idempotent, so a webhook delivered twice, or
out of order, leaves the books as if it came once and in order.

Every use case here locks through app/bookings/locks.py (bookings sorted, then the payment,
then the refund) and decides only on the rows it got back from the lock.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import trail as audit
from app.bookings import events, lifecycle, locks
from app.bookings import payment_effects as money
from app.bookings.locks import Held
from app.bookings.models import ACTIVE, COMPLETED, PENDING_PAYMENT
from app.bookings.queries import BookingView, lines_of
from app.db import retry_on_contention, set_tenant, set_tenant_and_lock_timeout
from app.errors import InvalidState
from app.invoices.service import issue_credit_note, issue_invoice
from app.ledger.service import find_entry_by_key
from app.money import Money
from app.payments import service as payments
from app.payments.models import CANCELLED, FAILED, Payment, Refund
from app.payments.queries import CheckoutContext as CheckoutContext
from app.payments.queries import RefundContext as RefundContext
from app.payments.queries import checkout_context as checkout_context
from app.payments.queries import get_payment as get_payment
from app.payments.queries import payment_tenant as payment_tenant
from app.payments.queries import refund_context as refund_context

PROVIDER = audit.Actor("provider")
# Bounded: a use case that loses a lock race is rolled back and run again (retry_on_contention).
LOCK_TIMEOUT_MS = 3000


@dataclass(frozen=True, slots=True)
class Outcome:
    payment: payments.PaymentView
    changed: bool
    note: str = ""


async def _begin(session: AsyncSession, tenant_id: uuid.UUID, payment_id: uuid.UUID) -> Held:
    await set_tenant_and_lock_timeout(session, tenant_id, LOCK_TIMEOUT_MS)
    return await locks.lock_for_payment(session, tenant_id, payment_id)


@retry_on_contention()
async def record_payment_succeeded(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    payment_id: uuid.UUID,
    *,
    amount: Money,
    fee_minor: int,
    provider_ref: str | None,
    now: datetime,
    charge_ref: str | None = None,
) -> Outcome:
    async with session.begin():
        return await apply_payment_succeeded(
            session,
            tenant_id,
            payment_id,
            amount=amount,
            fee_minor=fee_minor,
            provider_ref=provider_ref,
            now=now,
            charge_ref=charge_ref,
        )


async def apply_payment_succeeded(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    payment_id: uuid.UUID,
    *,
    amount: Money,
    fee_minor: int,
    provider_ref: str | None,
    now: datetime,
    charge_ref: str | None = None,
) -> Outcome:
    """Capture, inside the caller's transaction: book the money, confirm the held bookings.
    Money that arrives for a booking that no longer holds its slot (the hold expired, or it
    was cancelled) is refunded in full, so the customer is never charged for nothing."""
    held = await _begin(session, tenant_id, payment_id)
    bookings, payment = held.bookings, held.payment
    if charge_ref:
        payment.provider_charge_ref = charge_ref
    changed = await payments.capture(
        session, payment, amount=amount, fee_minor=fee_minor, provider_ref=provider_ref, now=now
    )
    note = ""
    for row in bookings:
        if not changed:
            break
        if row.status == PENDING_PAYMENT:
            await lifecycle.apply_transition(session, tenant_id, PROVIDER, row, "confirm", now)
        elif row.status not in ACTIVE and row.status != COMPLETED:
            view = BookingView.of(row, await lines_of(session, row.id))
            await _refund_lost_booking(session, payment, view, now)
            note = "refunded: booking no longer held"
    if changed:
        # Last: the invoice number's counter row stays locked until commit.
        await issue_invoice(session, tenant_id, payment.id, now)
    return Outcome(payments.PaymentView.of(payment), changed, note)


async def _refund_lost_booking(
    session: AsyncSession, payment: Payment, booking: BookingView, now: datetime
) -> None:
    charge = money.charge_of(booking)
    if await find_entry_by_key(session, payment.tenant_id, f"booking:{booking.id}:released"):
        await payments.rebook(session, charge, payment, now)
    already = await payments.refunded_for_booking(session, payment.tenant_id, booking.id)
    amount = min(
        booking.total.amount_minor - already, payment.captured_minor - payment.refunded_minor
    )
    if amount > 0:
        await payments.create_refund(
            session,
            payment,
            charge,
            amount_minor=amount,
            reason="booking_not_held",
            completed=False,
            now=now,
        )


async def apply_external_refund(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    payment_id: uuid.UUID,
    *,
    amount_minor: int,
    provider_ref: str,
    now: datetime,
) -> bool:
    """A refund the provider reports that Reckon did not ask for: booked against the
    payment's first booking, once per provider reference."""
    held = await _begin(session, tenant_id, payment_id)
    payment, anchor = held.payment, held.anchor
    view = BookingView.of(anchor, await lines_of(session, anchor.id))
    refund = await payments.record_external_refund(
        session,
        payment,
        money.charge_of(view),
        amount_minor=amount_minor,
        provider_ref=provider_ref,
        completed=anchor.status == COMPLETED,
        now=now,
    )
    if refund is not None:
        await issue_credit_note(session, tenant_id, refund.id, now)
    return refund is not None


async def apply_payment_ended(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    payment_id: uuid.UUID,
    *,
    status: str,
    reason: str | None,
    now: datetime,
) -> Outcome:
    """failed: the customer may still pay until the hold expires. cancelled (the checkout
    expired or was abandoned): the held bookings expire now and free their slots."""
    if status not in (FAILED, CANCELLED):
        raise InvalidState("status must be failed or cancelled", status=status)
    held = await _begin(session, tenant_id, payment_id)
    changed = payments.end_unpaid(held.payment, status, reason, now)
    if changed and status == CANCELLED:
        for row in held.bookings:
            if row.status == PENDING_PAYMENT:
                await lifecycle.apply_transition(session, tenant_id, PROVIDER, row, "expire", now)
    return Outcome(payments.PaymentView.of(held.payment), changed)


@retry_on_contention()
async def record_checkout_session(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    payment_id: uuid.UUID,
    *,
    session_id: str | None,
    url: str | None,
    provider_ref: str | None,
    now: datetime,
) -> payments.PaymentView:
    async with session.begin():
        await set_tenant(session, tenant_id)
        payment = await locks.lock_payment(session, tenant_id, payment_id)
        payments.mark_processing(
            payment, session_id=session_id, url=url, provider_ref=provider_ref, now=now
        )
        return payments.PaymentView.of(payment)


@retry_on_contention()
async def refund_booking(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    actor: audit.Actor,
    booking_id: uuid.UUID,
    *,
    amount_minor: int | None,
    reason: str | None,
    now: datetime,
) -> Refund:
    """An owner's refund: by default whatever of this booking is still refundable."""
    async with session.begin():
        await set_tenant_and_lock_timeout(session, tenant_id, LOCK_TIMEOUT_MS)
        row = await locks.lock_booking(session, tenant_id, booking_id)
        view = BookingView.of(row, await lines_of(session, row.id))
        payment = await locks.lock_payment_of(session, tenant_id, row.id, row.series_id)
        if payment is None:
            raise InvalidState("This booking has no payment", booking_id=str(booking_id))
        already = await payments.refunded_for_booking(session, tenant_id, row.id)
        refundable = min(
            view.total.amount_minor - already, payment.captured_minor - payment.refunded_minor
        )
        amount = refundable if amount_minor is None else amount_minor
        if amount > refundable:
            raise payments.RefundExceedsCapture(refundable=refundable, requested=amount)
        refund = await payments.create_refund(
            session,
            payment,
            money.charge_of(view),
            amount_minor=amount,
            reason=reason or "requested",
            completed=row.status == COMPLETED,
            now=now,
        )
        audit.record(
            session,
            tenant_id,
            actor,
            "refund.created",
            "refund",
            refund.id,
            after={"amount_minor": amount, "booking_id": str(row.id)},
        )
        await money.publish(session, view, events.BOOKING_REFUNDED)
        if refund.status == "succeeded":  # cash handed back at the venue
            await issue_credit_note(session, tenant_id, refund.id, now)
        return refund


@retry_on_contention()
async def record_refund_result(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    refund_id: uuid.UUID,
    *,
    succeeded: bool,
    provider_ref: str | None,
    reason: str | None,
    now: datetime,
) -> bool:
    async with session.begin():
        return await apply_refund_result(
            session,
            tenant_id,
            refund_id,
            succeeded=succeeded,
            provider_ref=provider_ref,
            reason=reason,
            now=now,
        )


async def apply_refund_result(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    refund_id: uuid.UUID,
    *,
    succeeded: bool,
    provider_ref: str | None,
    reason: str | None,
    now: datetime,
) -> bool:
    await set_tenant_and_lock_timeout(session, tenant_id, LOCK_TIMEOUT_MS)
    held = await locks.lock_for_refund(session, tenant_id, refund_id)
    assert held.refund is not None
    changed = await payments.finish_refund(
        session,
        held.payment,
        held.refund,
        succeeded=succeeded,
        provider_ref=provider_ref,
        reason=reason,
        now=now,
    )
    if changed and succeeded:
        await issue_credit_note(session, tenant_id, refund_id, now)
    return changed


@retry_on_contention()
async def record_provider_fee(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    payment_id: uuid.UUID,
    fee_minor: int,
    now: datetime,
) -> None:
    """The provider's fee, read from its balance transaction, booked once."""
    async with session.begin():
        await set_tenant(session, tenant_id)
        payment = await locks.lock_payment(session, tenant_id, payment_id)
        if fee_minor > 0:
            await payments.record_fee(session, payment, fee_minor, now)
