"""Payment and refund steps that run INSIDE a booking use case's transaction.

The tenant is already set and the booking row already locked by the caller (bookings or
checkout); these functions write the payment rows, the ledger entries and the outbox rows of
the money path, each ledger entry keyed by our own ids so a replay posts nothing twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, column, insert, or_, select, table
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import batch_of, new_id, psycopg_sql
from app.ledger import chart
from app.ledger.service import post, post_in
from app.money import Money
from app.outbox.service import stage
from app.payments.models import (
    CANCELLED,
    CAPTURED,
    FAILED,
    OPEN,
    PROCESSING,
    REQUIRES_PAYMENT,
    SUCCEEDED,
    Payment,
)
from app.payments.refunds import (
    create_refund,
    finish_refund,
    get_refund,
    record_external_refund,
    refunded_for_booking,
)
from app.payments.revenue import recognise, retain
from app.payments.types import (
    PROVIDER_ROUTED,
    TOPIC_CHECKOUT,
    TOPIC_REFUND,
    Charge,
    CommissionRule,
    PaymentAmountMismatch,
    PaymentView,
    RefundExceedsCapture,
)

# The bookings table seen only as far as payments need it (payments import no bookings code).
_BOOKINGS = table("bookings", column("tenant_id"), column("id"), column("series_id"))

_INSERT_PAYMENT = insert(Payment)
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
_INSERT_PAYMENT_SQL = psycopg_sql(
    insert(cast(Table, Payment.__table__)).values(
        {column: bindparam(column) for column in _PAYMENT_COLUMNS}
    )
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
    row = {column: getattr(payment, column) for column in _PAYMENT_COLUMNS}
    batch = batch_of(session)
    if batch is not None:
        # The placement's batch (app.db.Batch): the row and its entries go in its round trip.
        batch.add(_INSERT_PAYMENT_SQL, row)
        for charge in charges:
            post_in(batch, charge.tenant_id, **_receivable(charge, payment.id, "booked", now))
    else:
        # A Core insert: the ORM unit of work costs more CPU than the round trip here.
        await session.execute(_INSERT_PAYMENT, [row])
        for charge in charges:
            await _book_receivable(session, charge, payment.id, "booked", now)
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
        lines=chart.captured(payment.provider, amount),
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
        lines=chart.fee(payment.provider, Money(fee_minor, payment.currency)),
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
        lines=chart.released(charge.total),
        occurred_at=now,
        booking_id=charge.booking_id,
        payment_id=payment.id if payment else None,
        dimensions=charge.dimensions,
    )


async def rebook(session: AsyncSession, charge: Charge, payment: Payment, now: datetime) -> None:
    """Money arrived for a booking whose unpaid hold was already released: book the
    receivable again so the capture settles it and the refund comes out of deferred revenue."""
    await _book_receivable(session, charge, payment.id, "rebooked", now)


async def _book_receivable(
    session: AsyncSession, charge: Charge, payment_id: uuid.UUID, step: str, now: datetime
) -> None:
    """Dr receivable / Cr deferred revenue for one booking, once per `step`."""
    await post(session, charge.tenant_id, **_receivable(charge, payment_id, step, now))


def _receivable(charge: Charge, payment_id: uuid.UUID, step: str, now: datetime) -> dict[str, Any]:
    return {
        "idempotency_key": f"booking:{charge.booking_id}:{step}",
        "reason": "booking",
        "lines": chart.booked(charge.total),
        "occurred_at": now,
        "booking_id": charge.booking_id,
        "payment_id": payment_id,
        "dimensions": charge.dimensions,
    }


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


__all__ = [
    "TOPIC_CHECKOUT",
    "TOPIC_REFUND",
    "Charge",
    "CommissionRule",
    "PaymentAmountMismatch",
    "PaymentView",
    "RefundExceedsCapture",
    "capture",
    "create_refund",
    "end_unpaid",
    "finish_refund",
    "get_refund",
    "mark_processing",
    "open_payment",
    "payments_for",
    "rebook",
    "recognise",
    "record_external_refund",
    "record_fee",
    "refunded_for_booking",
    "release_unpaid",
    "retain",
]
