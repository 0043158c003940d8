"""The money side of booking state changes, run inside the booking use case's transaction:
payment rows, ledger entries and outbox rows (payments domain), and the booking events the
outbox carries to live clients and notifications."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.bookings import events, locks
from app.bookings.queries import BookingView
from app.invoices.service import issue_invoice
from app.money import Money
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


class Published(Protocol):
    """What a booking's event states (a BookingView, or a row read without the ORM)."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def status(self) -> str: ...
    @property
    def start(self) -> datetime: ...
    @property
    def end(self) -> datetime: ...
    @property
    def resource_id(self) -> uuid.UUID: ...
    @property
    def service_id(self) -> uuid.UUID: ...
    @property
    def branch_id(self) -> uuid.UUID: ...
    @property
    def version(self) -> int: ...


def event_payload(booking: Published, event: str) -> dict[str, Any]:
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
    split = ending_split(event, refundable, terms, charge.starts_at, now)
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


def ending_split(
    event: str, refundable_minor: int, terms: dict[str, Any], starts_at: datetime, now: datetime
) -> policy.Split:
    """What a booking ending without service refunds and keeps: the no-show fee, everything
    back when a hold expires, else the cancellation tier in force at `now`."""
    if event == events.BOOKING_NO_SHOW:
        return policy.no_show_split(refundable_minor, terms)
    if event == events.BOOKING_EXPIRED:
        return policy.split_refund(refundable_minor, policy.FULL)
    bps = policy.cancellation_refund_bps(terms, starts_at, now)
    return policy.split_refund(refundable_minor, bps)


@dataclass(frozen=True, slots=True)
class MoneyPreview:
    """What each action would do to the money, were it taken at `now` (shown before the owner
    confirms it): the refund and what is kept on cancel or no-show, the commission on
    completion. Computed by the same functions the transition itself uses."""

    paid: Money
    cancel_refund: Money
    cancel_kept: Money
    no_show_refund: Money
    no_show_kept: Money
    complete_revenue: Money
    complete_commission: Money


async def preview(session: AsyncSession, booking: BookingView, now: datetime) -> MoneyPreview:
    """Reads only, in the caller's transaction (tenant set)."""
    currency = booking.total.currency
    terms = await load_terms(session, booking.tenant_id, booking.service_id, booking.resource_id)
    already = await payments.refunded_for_booking(session, booking.tenant_id, booking.id)
    paid = booking.payment
    captured = paid is not None and paid.status in CAPTURED
    refundable = (
        max(0, min(booking.total.amount_minor - already, paid.captured_minor - paid.refunded_minor))
        if captured and paid is not None
        else 0
    )
    cancel = ending_split(events.BOOKING_CANCELLED, refundable, terms.policy, booking.start, now)
    no_show = ending_split(events.BOOKING_NO_SHOW, refundable, terms.policy, booking.start, now)
    earned = booking.total.amount_minor - already
    rule = terms.commission
    commission = policy.commission_minor(
        earned,
        fixed_minor=rule.fixed_minor,
        service_bps=rule.service_bps,
        resource_bps=rule.resource_bps,
    )
    return MoneyPreview(
        paid=Money(refundable, currency),
        cancel_refund=Money(cancel.refund_minor, currency),
        cancel_kept=Money(cancel.retained_minor, currency),
        no_show_refund=Money(no_show.refund_minor, currency),
        no_show_kept=Money(no_show.retained_minor, currency),
        complete_revenue=Money(max(earned, 0), currency),
        complete_commission=Money(commission, currency),
    )


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
