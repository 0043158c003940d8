"""The money side of booking state changes, run inside the booking use case's transaction:
payment rows, ledger entries and outbox rows (payments domain), and the booking events the
outbox carries to live clients and notifications."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.bookings import events, locks
from app.bookings.queries import BookingView
from app.invoices.service import issue_invoice
from app.outbox.service import stage
from app.payments import policy
from app.payments import service as payments
from app.payments.models import CAPTURED, Payment
from app.payments.provider_names import PAY_AT_VENUE
from app.payments.service import Charge, CommissionRule, PaymentView


def charge_of(booking: BookingView) -> Charge:
    return Charge(
        tenant_id=booking.tenant_id,
        booking_id=booking.id,
        series_id=booking.series_id,
        branch_id=booking.branch_id,
        service_id=booking.service_id,
        resource_id=booking.resource_id,
        total=booking.total,
        provider=booking.provider,
        starts_at=booking.start,
    )


def event_payload(booking: BookingView, event: str) -> dict[str, Any]:
    """Ids and the facts a live calendar needs; no customer contact details."""
    return {
        "event": event,
        "booking_id": booking.id,
        "status": booking.status,
        "start": booking.start,
        "end": booking.end,
        "resource_id": booking.resource_id,
        "service_id": booking.service_id,
        "branch_id": booking.branch_id,
        "version": booking.version,
    }


async def publish(session: AsyncSession, booking: BookingView, event: str) -> None:
    await stage(
        session, booking.tenant_id, event, "booking", booking.id, event_payload(booking, event)
    )


async def open_payments(
    session: AsyncSession,
    placed: Sequence[BookingView],
    now: datetime,
    sandbox_base_url: str | None,
) -> list[PaymentView]:
    """A placement pays once online (a series included); pay-at-venue bookings each carry
    their own cash payment, settled when the visit completes."""
    charges = [charge_of(b) for b in placed]
    for booking in placed:
        await publish(session, booking, events.BOOKING_PLACED)
    if placed[0].provider in PAY_AT_VENUE:
        return [await payments.open_payment(session, [c], now) for c in charges]
    base = sandbox_base_url if placed[0].provider == "sandbox" else None
    return [await payments.open_payment(session, charges, now, sandbox_url=base)]


async def settle(session: AsyncSession, booking: BookingView, event: str, now: datetime) -> None:
    """Ledger consequences of a transition, then the event for the outbox. Check-in,
    confirmation and rescheduling move no money: they only publish."""
    if event in MONEY_EVENTS:
        charge = charge_of(booking)
        payment = await locks.lock_payment_of(
            session, booking.tenant_id, booking.id, booking.series_id
        )
        terms = await load_terms(
            session, booking.tenant_id, booking.service_id, booking.resource_id
        )
        if event == events.BOOKING_COMPLETED:
            await _complete(session, charge, payment, terms.commission, now)
        else:
            await _end_without_service(session, charge, payment, event, terms.policy, now)
    await publish(session, booking, event)


ENDED_WITHOUT_SERVICE = frozenset(
    {events.BOOKING_CANCELLED, events.BOOKING_NO_SHOW, events.BOOKING_EXPIRED}
)
MONEY_EVENTS = ENDED_WITHOUT_SERVICE | {events.BOOKING_COMPLETED}


async def _end_without_service(
    session: AsyncSession,
    charge: Charge,
    payment: Payment | None,
    event: str,
    terms: dict[str, Any],
    now: datetime,
) -> None:
    if payment is None or payment.status not in CAPTURED:
        await payments.release_unpaid(session, charge, payment, now)
        return
    already = await payments.refunded_for_booking(session, charge.tenant_id, charge.booking_id)
    refundable = min(
        charge.total.amount_minor - already, payment.captured_minor - payment.refunded_minor
    )
    if event == events.BOOKING_NO_SHOW:
        split = policy.no_show_split(refundable, terms)
    elif event == events.BOOKING_EXPIRED:
        split = policy.split_refund(refundable, policy.FULL)
    else:
        bps = policy.cancellation_refund_bps(terms, charge.starts_at, now)
        split = policy.split_refund(refundable, bps)
    if split.refund_minor > 0:
        await payments.create_refund(
            session,
            payment,
            charge,
            amount_minor=split.refund_minor,
            reason=event.split(".")[1],
            completed=False,
            now=now,
        )
    await payments.retain(session, charge, split.retained_minor, "retained", now)


async def _complete(
    session: AsyncSession,
    charge: Charge,
    payment: Payment | None,
    rule: CommissionRule,
    now: datetime,
) -> None:
    if payment is not None and payment.provider in PAY_AT_VENUE and payment.status not in CAPTURED:
        # Pay at the venue: completing the visit records the cash taken.
        await payments.capture(
            session, payment, amount=charge.total, fee_minor=0, provider_ref=None, now=now
        )
        await payments.recognise(session, charge, rule, now)
        # Last: the invoice number's counter row stays locked until commit.
        await issue_invoice(session, charge.tenant_id, payment.id, now)
        return
    await payments.recognise(session, charge, rule, now)


@dataclass(frozen=True, slots=True)
class Terms:
    """What a booking's service and staff member say about money: refund tiers and fees
    (`policy`) and the commission rule."""

    policy: dict[str, Any]
    commission: CommissionRule


async def load_terms(
    session: AsyncSession, tenant_id: uuid.UUID, service_id: uuid.UUID, resource_id: uuid.UUID
) -> Terms:
    row = (
        await session.execute(
            text(
                "SELECT s.cancellation_policy, s.commission_bps, s.commission_fixed_minor, "
                "r.commission_bps AS resource_bps FROM services s, resources r "
                "WHERE s.tenant_id = :t AND s.id = :s AND r.tenant_id = :t AND r.id = :r"
            ),
            {"t": tenant_id, "s": service_id, "r": resource_id},
        )
    ).one()
    return Terms(
        row.cancellation_policy or {},
        CommissionRule(row.commission_fixed_minor, row.commission_bps, row.resource_bps),
    )
