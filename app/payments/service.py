"""Payment and refund steps that run INSIDE a booking use case's transaction.

The tenant is already set and the booking row already locked by the caller (bookings or
checkout); these functions write the payment rows, the ledger entries and the outbox rows of
the money path, each ledger entry keyed by our own ids so a replay posts nothing twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import column, insert, or_, select, table, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import new_id
from app.errors import Conflict, InvalidState, NotFound
from app.ledger.service import find_entry_by_key, post, reverse
from app.money import Money
from app.outbox.service import stage
from app.payments import accounts, policy
from app.payments.models import (
    CANCELLED,
    CAPTURED,
    FAILED,
    ONLINE_PROVIDERS,
    OPEN,
    PARTIALLY_REFUNDED,
    PROCESSING,
    REFUNDED,
    REQUIRES_PAYMENT,
    SUCCEEDED,
    Payment,
    Refund,
)

# The bookings table seen only as far as payments need it (payments import no bookings code).
_BOOKINGS = table("bookings", column("tenant_id"), column("id"), column("series_id"))

_PAYMENT_COLUMNS = (
    "tenant_id",
    "id",
    "booking_id",
    "provider",
    "status",
    "amount_minor",
    "currency",
    "captured_minor",
    "refunded_minor",
    "fee_minor",
    "checkout_url",
    "created_at",
    "updated_at",
)

TOPIC_CHECKOUT = "payment.checkout"
TOPIC_REFUND = "payment.refund"
PROVIDER_ROUTED = frozenset({"stripe", "kashier"})


class RefundExceedsCapture(Conflict):
    slug = "refund_exceeds_capture"
    title = "The refund is larger than what remains of the payment"


class PaymentAmountMismatch(Conflict):
    slug = "payment_amount_mismatch"
    title = "The provider reported an amount or currency that does not match the payment"


@dataclass(frozen=True, slots=True)
class Charge:
    """The money facts of one booking, as the bookings domain states them."""

    tenant_id: uuid.UUID
    booking_id: uuid.UUID
    series_id: uuid.UUID | None
    branch_id: uuid.UUID
    service_id: uuid.UUID
    resource_id: uuid.UUID
    total: Money
    provider: str
    starts_at: datetime

    @property
    def dimensions(self) -> dict[str, Any]:
        return {
            "branch_id": str(self.branch_id),
            "service_id": str(self.service_id),
            "resource_id": str(self.resource_id),
        }


@dataclass(frozen=True, slots=True)
class PaymentView:
    id: uuid.UUID
    booking_id: uuid.UUID
    provider: str
    status: str
    amount: Money
    captured_minor: int
    refunded_minor: int
    fee_minor: int
    checkout_url: str | None

    @classmethod
    def of(cls, row: Payment) -> PaymentView:
        return cls(
            row.id,
            row.booking_id,
            row.provider,
            row.status,
            Money(row.amount_minor, row.currency),
            row.captured_minor,
            row.refunded_minor,
            row.fee_minor,
            row.checkout_url,
        )


async def open_payment(
    session: AsyncSession,
    charges: Sequence[Charge],
    now: datetime,
    *,
    sandbox_url: str | None = None,
) -> PaymentView:
    """One payment for a placement (a booking or a whole series); one ledger entry per booking
    (Dr receivable / Cr deferred revenue); the provider session is created by the outbox."""
    first = charges[0]
    total = sum((c.total for c in charges[1:]), first.total)
    payment_id = new_id()
    url = _sandbox_url(sandbox_url, first.tenant_id, payment_id) if sandbox_url else None
    payment = Payment(
        tenant_id=first.tenant_id,
        id=payment_id,
        booking_id=first.booking_id,
        provider=first.provider,
        status=REQUIRES_PAYMENT,
        amount_minor=total.amount_minor,
        currency=total.currency,
        checkout_url=url,
        captured_minor=0,
        refunded_minor=0,
        fee_minor=0,
        created_at=now,
        updated_at=now,
    )
    # A Core insert: the ORM unit of work costs more CPU than the round trip on this path.
    await session.execute(
        insert(Payment),
        [{column: getattr(payment, column) for column in _PAYMENT_COLUMNS}],
    )
    for charge in charges:
        await post(
            session,
            charge.tenant_id,
            idempotency_key=f"booking:{charge.booking_id}:booked",
            reason="booking",
            lines=accounts.booked(charge.total),
            occurred_at=now,
            booking_id=charge.booking_id,
            payment_id=payment.id,
            dimensions=charge.dimensions,
        )
    if first.provider in PROVIDER_ROUTED and total.amount_minor > 0:
        await stage(
            session,
            first.tenant_id,
            TOPIC_CHECKOUT,
            "payment",
            payment.id,
            {"payment_id": payment.id, "booking_id": first.booking_id},
        )
    return PaymentView.of(payment)


def _sandbox_url(base: str, tenant_id: uuid.UUID, payment_id: uuid.UUID) -> str:
    return f"{base.rstrip('/')}/sandbox/pay/{tenant_id}/{payment_id}"


async def find_payment(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    booking_id: uuid.UUID,
    series_id: uuid.UUID | None,
    *,
    lock: bool = False,
) -> Payment | None:
    """The payment covering a booking: its own, or its series' (anchored on one booking)."""
    query = select(Payment).where(Payment.tenant_id == tenant_id)
    if series_id is None:
        query = query.where(Payment.booking_id == booking_id)
    else:
        anchors = (
            select(_BOOKINGS.c.id)
            .where(_BOOKINGS.c.tenant_id == tenant_id, _BOOKINGS.c.series_id == series_id)
            .scalar_subquery()
        )
        query = query.where(or_(Payment.booking_id == booking_id, Payment.booking_id.in_(anchors)))
    if lock:
        query = query.with_for_update()
    return (await session.scalars(query.limit(1))).first()


async def lock_payment(
    session: AsyncSession, tenant_id: uuid.UUID, payment_id: uuid.UUID
) -> Payment:
    payment = await session.get(Payment, (tenant_id, payment_id), with_for_update=True)
    if payment is None:
        raise NotFound("Payment not found", entity="payment", id=str(payment_id))
    return payment


def mark_processing(
    payment: Payment,
    *,
    session_id: str | None,
    url: str | None,
    provider_ref: str | None,
    now: datetime,
) -> None:
    if payment.status in OPEN:
        payment.status = PROCESSING
    payment.checkout_session_id = session_id or payment.checkout_session_id
    payment.checkout_url = url or payment.checkout_url
    payment.provider_ref = provider_ref or payment.provider_ref
    payment.updated_at = now


async def capture(
    session: AsyncSession,
    payment: Payment,
    *,
    amount: Money,
    fee_minor: int,
    provider_ref: str | None,
    now: datetime,
) -> bool:
    """Record the provider's capture once. False when it was already recorded."""
    if payment.status in CAPTURED:
        return False
    if amount.amount_minor != payment.amount_minor or amount.currency != payment.currency:
        raise PaymentAmountMismatch(
            expected=payment.amount_minor, got=amount.amount_minor, currency=amount.currency
        )
    payment.status = SUCCEEDED
    payment.captured_minor = amount.amount_minor
    payment.fee_minor = fee_minor
    payment.provider_ref = provider_ref or payment.provider_ref
    payment.updated_at = now
    await session.flush()
    await post(
        session,
        payment.tenant_id,
        idempotency_key=f"payment:{payment.id}:captured",
        reason="payment",
        lines=accounts.captured(payment.provider, amount),
        occurred_at=now,
        booking_id=payment.booking_id,
        payment_id=payment.id,
    )
    if fee_minor > 0:
        await record_fee(session, payment, fee_minor, now)
    return True


async def record_fee(
    session: AsyncSession, payment: Payment, fee_minor: int, now: datetime
) -> None:
    payment.fee_minor = fee_minor
    await post(
        session,
        payment.tenant_id,
        idempotency_key=f"payment:{payment.id}:fee",
        reason="provider_fee",
        lines=accounts.fee(payment.provider, Money(fee_minor, payment.currency)),
        occurred_at=now,
        booking_id=payment.booking_id,
        payment_id=payment.id,
    )


def end_unpaid(payment: Payment, status: str, reason: str | None, now: datetime) -> bool:
    """failed / cancelled: only an open payment can end without money; False otherwise."""
    if payment.status not in OPEN and payment.status != FAILED:
        return False
    payment.status = status
    payment.failure_reason = reason
    payment.updated_at = now
    return True


async def release_unpaid(
    session: AsyncSession, charge: Charge, payment: Payment | None, now: datetime
) -> None:
    """An unpaid booking ended (cancelled, expired, no-show on cash): take back its
    receivable and deferred revenue."""
    if payment is not None and payment.status in (*OPEN, FAILED):
        end_unpaid(payment, CANCELLED, "booking ended unpaid", now)
    await post(
        session,
        charge.tenant_id,
        idempotency_key=f"booking:{charge.booking_id}:released",
        reason="booking_released",
        lines=accounts.released(charge.total),
        occurred_at=now,
        booking_id=charge.booking_id,
        payment_id=payment.id if payment else None,
        dimensions=charge.dimensions,
    )


async def rebook(session: AsyncSession, charge: Charge, payment: Payment, now: datetime) -> None:
    """Money arrived for a booking whose unpaid hold was already released: book the
    receivable again so the capture settles it and the refund comes out of deferred revenue."""
    await post(
        session,
        charge.tenant_id,
        idempotency_key=f"booking:{charge.booking_id}:rebooked",
        reason="booking",
        lines=accounts.booked(charge.total),
        occurred_at=now,
        booking_id=charge.booking_id,
        payment_id=payment.id,
        dimensions=charge.dimensions,
    )


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
        lines=accounts.refunded(
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
        lines=accounts.recognised(charge.service_id, Money(amount_minor, charge.total.currency)),
        occurred_at=now,
        booking_id=charge.booking_id,
        dimensions=charge.dimensions,
    )


@dataclass(frozen=True, slots=True)
class CommissionRule:
    fixed_minor: int | None
    service_bps: int | None
    resource_bps: int | None


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
            lines=accounts.recognised(charge.service_id, Money(amount, charge.total.currency)),
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
            lines=accounts.commission(charge.resource_id, Money(share, charge.total.currency)),
            occurred_at=now,
            booking_id=charge.booking_id,
            dimensions=charge.dimensions,
        )
    return share


async def get_refund(
    session: AsyncSession, tenant_id: uuid.UUID, refund_id: uuid.UUID, *, lock: bool = False
) -> Refund:
    refund = await session.get(Refund, (tenant_id, refund_id), with_for_update=lock)
    if refund is None:
        raise NotFound("Refund not found", entity="refund", id=str(refund_id))
    return refund


async def payments_for(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    bookings: Sequence[tuple[uuid.UUID, uuid.UUID | None]],
) -> dict[uuid.UUID, PaymentView]:
    """Payment per booking id, for (booking id, series id) pairs: a booking's own payment, or
    its series' (anchored on one booking of the series). One query."""
    if not bookings:
        return {}
    ids = [b for b, _ in bookings]
    series = [s for _, s in bookings if s is not None]
    rows = (
        await session.execute(
            select(Payment, _BOOKINGS.c.series_id)
            .join(
                _BOOKINGS,
                (_BOOKINGS.c.tenant_id == Payment.tenant_id)
                & (_BOOKINGS.c.id == Payment.booking_id),
            )
            .where(Payment.tenant_id == tenant_id)
            .where(or_(Payment.booking_id.in_(ids), _BOOKINGS.c.series_id.in_(series)))
        )
    ).all()
    by_booking = {payment.booking_id: PaymentView.of(payment) for payment, _ in rows}
    by_series = {sid: PaymentView.of(payment) for payment, sid in rows if sid is not None}
    found: dict[uuid.UUID, PaymentView] = {}
    for booking_id, series_id in bookings:
        view = by_booking.get(booking_id) or (by_series.get(series_id) if series_id else None)
        if view is not None:
            found[booking_id] = view
    return found
