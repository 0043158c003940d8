"""Issuing invoices and credit notes INSIDE the caller's transaction (payment capture, refund).

Numbers are gapless per tenant, series and year, and drawn at COMMIT: a document is inserted
unnumbered and a deferred constraint trigger (migration 0021) bumps the business's counter row
and writes the number after every other statement of the transaction. Issuers of one business
therefore queue on that row only for the length of a commit, never for the rest of a capture,
and a transaction that rolls back never drew a number. Inside the issuing transaction the
document has no number yet; every reader after the commit sees it numbered.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import trail as audit
from app.db import lock_all, new_id
from app.errors import InvalidState, NotFound
from app.invoices import amounts, lines
from app.invoices.amounts import TaxSplit
from app.invoices.models import CREDIT_NOTE, INVOICE, SERIES, Invoice, InvoiceLine
from app.invoices.queries import current_settings, find_invoice
from app.payments.models import CAPTURED, FAILED, Payment, Refund
from app.validation import check_aware


class InvoicingUsageError(RuntimeError):
    """A programming error: issuing needs the caller's transaction with the tenant set."""


class PaymentNotCaptured(InvalidState):
    slug = "payment_not_captured"
    title = "Only a captured payment can be invoiced"


class CreditExceedsInvoice(InvalidState):
    slug = "credit_exceeds_invoice"
    title = "Credit notes would exceed the invoice they credit"


@dataclass(frozen=True, slots=True)
class Issued:
    """A document issued (or found already issued) in the caller's transaction. Its number is
    drawn when that transaction commits: read it afterwards (queries.get_invoice)."""

    id: uuid.UUID
    kind: str
    payment_id: uuid.UUID
    refund_id: uuid.UUID | None
    created: bool


@dataclass(frozen=True, slots=True)
class Issuer:
    """The tenant as the document states it at issue time."""

    id: uuid.UUID
    name: str
    timezone: str


async def issue_invoice(
    session: AsyncSession, tenant_id: uuid.UUID, payment_id: uuid.UUID, now: datetime
) -> Issued:
    """The invoice of a captured payment; the existing one when it was already issued."""
    issuer = await _issuer_in_transaction(session, tenant_id, now)
    payment = await _lock_payment(session, tenant_id, payment_id)
    existing = await find_invoice(session, tenant_id, payment_id=payment_id)
    if existing is not None:
        return _issued(existing, created=False)
    return _issued(await _create_invoice(session, issuer, payment, now), created=True)


def _issued(row: Invoice, *, created: bool) -> Issued:
    return Issued(row.id, row.kind, row.payment_id, row.refund_id, created)


async def issue_credit_note(
    session: AsyncSession, tenant_id: uuid.UUID, refund_id: uuid.UUID, now: datetime
) -> Issued:
    """The credit note of a refund, against the payment's invoice (issued first if missing);
    the existing one when it was already issued."""
    issuer = await _issuer_in_transaction(session, tenant_id, now)
    payment_id = await session.scalar(
        select(Refund.payment_id).where(Refund.tenant_id == tenant_id, Refund.id == refund_id)
    )
    if payment_id is None:
        raise NotFound("Refund not found", entity="refund", id=str(refund_id))
    # Payment before refund: the lock order of app/bookings/locks.py.
    payment = await _lock_payment(session, tenant_id, payment_id)
    refund = (
        await lock_all(
            session, select(Refund).where(Refund.tenant_id == tenant_id, Refund.id == refund_id)
        )
    )[0]
    existing = await find_invoice(session, tenant_id, refund_id=refund_id)
    if existing is not None:
        return _issued(existing, created=False)
    if refund.status == FAILED:
        raise InvalidState("A failed refund gets no credit note", refund_id=str(refund_id))
    invoice = await find_invoice(session, tenant_id, payment_id=payment.id)
    if invoice is None:
        invoice = await _create_invoice(session, issuer, payment, now)
    return _issued(await _create_credit_note(session, issuer, invoice, refund, now), created=True)


async def _issuer_in_transaction(
    session: AsyncSession, tenant_id: uuid.UUID, now: datetime
) -> Issuer:
    check_aware(now, "now")
    if not session.in_transaction():
        raise InvoicingUsageError("issuing runs inside the caller's transaction")
    # Flush the caller's pending rows (the captured payment, the new refund) so the SQL
    # below sees them.
    await session.flush()
    row = (
        await session.execute(
            text(
                "SELECT id, name, timezone, current_setting('app.tenant_id', true) AS current "
                "FROM tenants WHERE id = :t"
            ),
            {"t": tenant_id},
        )
    ).first()
    if row is None or row.current != str(tenant_id):
        raise InvoicingUsageError("set_tenant() must run first in the caller's transaction")
    return Issuer(row.id, row.name, row.timezone)


async def _lock_payment(
    session: AsyncSession, tenant_id: uuid.UUID, payment_id: uuid.UUID
) -> Payment:
    """Locking the payment serialises two issuers of the same document before either looks
    for an existing one, so idempotency never ends in a unique violation."""
    rows = await lock_all(
        session, select(Payment).where(Payment.tenant_id == tenant_id, Payment.id == payment_id)
    )
    if not rows:
        raise NotFound("Payment not found", entity="payment", id=str(payment_id))
    return rows[0]


async def _create_invoice(
    session: AsyncSession, issuer: Issuer, payment: Payment, now: datetime
) -> Invoice:
    if payment.status not in CAPTURED or payment.captured_minor <= 0:
        raise PaymentNotCaptured(payment_id=str(payment.id), status=payment.status)
    covered = await lines.covered_bookings(session, issuer.id, payment.id, payment.booking_id)
    anchor = next(b for b in covered if b.id == payment.booking_id)
    items = amounts.balance_lines(
        await lines.booking_lines(session, issuer.id, covered), payment.captured_minor
    )
    settings = await current_settings(session, issuer.id)
    split = amounts.split_invoice(payment.captured_minor, settings.tax_rate_bps)
    fields: dict[str, Any] = {
        "payment_id": payment.id,
        "booking_id": anchor.id,
        "customer_name": anchor.customer_name,
        "customer_email": anchor.customer_email,
        "currency": payment.currency,
        "tax_rate_bps": settings.tax_rate_bps,
        "tax_label": settings.tax_label,
        "footer": settings.footer,
    }
    return await _insert(session, issuer, INVOICE, split, items, fields, now)


async def _create_credit_note(
    session: AsyncSession, issuer: Issuer, invoice: Invoice, refund: Refund, now: datetime
) -> Invoice:
    credited, credited_tax = (
        await session.execute(
            select(
                func.coalesce(func.sum(Invoice.total_minor), 0),
                func.coalesce(func.sum(Invoice.tax_minor), 0),
            ).where(
                Invoice.tenant_id == invoice.tenant_id,
                Invoice.kind == CREDIT_NOTE,
                Invoice.credits_invoice_id == invoice.id,
            )
        )
    ).one()
    if refund.currency != invoice.currency or credited + refund.amount_minor > invoice.total_minor:
        raise CreditExceedsInvoice(
            invoice=invoice.number or str(invoice.id),
            credited_minor=int(credited),
            refund_minor=refund.amount_minor,
        )
    split = amounts.split_credit(
        refund.amount_minor, int(credited), int(credited_tax), invoice.tax_rate_bps
    )
    item = await lines.refund_line(session, invoice.tenant_id, refund, invoice.number)
    fields: dict[str, Any] = {
        "payment_id": invoice.payment_id,
        "refund_id": refund.id,
        "credits_invoice_id": invoice.id,
        "credits_number": invoice.number,
        "booking_id": invoice.booking_id,
        "customer_name": invoice.customer_name,
        "customer_email": invoice.customer_email,
        "currency": invoice.currency,
        "tax_rate_bps": invoice.tax_rate_bps,
        "tax_label": invoice.tax_label,
        "footer": invoice.footer,
    }
    return await _insert(session, issuer, CREDIT_NOTE, split, [item], fields, now)


async def _insert(
    session: AsyncSession,
    issuer: Issuer,
    kind: str,
    split: TaxSplit,
    items: Sequence[amounts.Line],
    fields: dict[str, Any],
    now: datetime,
) -> Invoice:
    series = SERIES[kind]
    year = now.astimezone(ZoneInfo(issuer.timezone)).year
    # sequence and number stay NULL here: drawn at commit (invoices_number_at_commit).
    invoice = Invoice(
        tenant_id=issuer.id,
        id=new_id(),
        kind=kind,
        series=series,
        year=year,
        issued_at=now,
        business_name=issuer.name,
        timezone=issuer.timezone,
        subtotal_minor=split.net_minor,
        tax_minor=split.tax_minor,
        total_minor=split.gross_minor,
        created_at=now,
        **fields,
    )
    session.add(invoice)
    await session.flush()
    session.add_all(
        InvoiceLine(
            tenant_id=issuer.id,
            id=new_id(),
            invoice_id=invoice.id,
            position=position,
            description=item.description,
            quantity=item.quantity,
            unit_price_minor=item.unit_price_minor,
            amount_minor=item.amount_minor,
            currency=invoice.currency,
            booking_id=item.booking_id,
            product_id=item.product_id,
        )
        for position, item in enumerate(items, start=1)
    )
    audit.record(
        session,
        issuer.id,
        audit.SYSTEM,
        f"{kind}.issued",
        kind,
        invoice.id,
        after={
            "series": series,
            "year": year,
            "total_minor": split.gross_minor,
            "currency": invoice.currency,
        },
    )
    await session.flush()
    return invoice
