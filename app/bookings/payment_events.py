"""The webhook inbox: store a verified provider event once, apply its effect once.

One transaction: the inbox row (UNIQUE provider, event_id) and the payment state, ledger and
outbox rows it causes commit together, so a duplicate delivery finds the row and changes
nothing, and a crash leaves neither. An event the books refuse (an amount that does not match,
an unknown payment) is stored with its reason and acknowledged: retrying it cannot help, and
the stored row is the evidence for the engineer on call.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app import traces
from app.bookings import checkout, locks
from app.db import new_id, retry_on_contention, set_tenant
from app.errors import DomainError, RedeliverLater
from app.ledger import chart
from app.ledger.service import post
from app.money import Money
from app.outbox.service import stage
from app.payments import provider_events as events
from app.payments.models import CANCELLED, CAPTURED, FAILED, Payment

log = structlog.get_logger()

TOPIC_FETCH_FEE = "payment.fetch_fee"


@dataclass(frozen=True, slots=True)
class Ingested:
    status: str  # processed | duplicate | rejected | ignored
    detail: str = ""


@retry_on_contention(RedeliverLater)
async def ingest(session: AsyncSession, event: events.ProviderEvent, now: datetime) -> Ingested:
    """Store and apply one event in one transaction. When it keeps losing lock races the
    whole transaction (inbox row included) is rolled back and RedeliverLater raised: the edge
    answers 503 with Retry-After and the provider delivers it again."""
    with traces.span(
        "webhook.apply",
        provider=event.provider,
        event_type=event.type,
        event_id=event.event_id,
    ) as span:
        ingested = await _ingest(session, event, now)
        span.set_attribute("webhook.outcome", ingested.status)
        return ingested


async def _ingest(session: AsyncSession, event: events.ProviderEvent, now: datetime) -> Ingested:
    async with session.begin():
        inbox_id = await _insert(session, event)
        if inbox_id is None:
            return Ingested("duplicate")
        tenant_id, payment_id = await _locate(session, event)
        if event.action == events.IGNORE or payment_id is None or tenant_id is None:
            status = "ignored" if event.action == events.IGNORE else "rejected"
            detail = "" if status == "ignored" else "unknown payment"
            return await _finish(session, inbox_id, tenant_id, Ingested(status, detail))
        if not await _same_provider(session, event, tenant_id, payment_id):
            # Signed by one provider, naming another provider's payment: never applied.
            return await _finish(session, inbox_id, tenant_id, Ingested("rejected", "provider"))
        try:
            async with session.begin_nested():
                detail = await _apply(session, event, tenant_id, payment_id, now)
        except (DomainError, IntegrityError) as error:
            slug = getattr(error, "slug", "integrity_error")
            log.warning(
                "webhook.rejected",
                provider=event.provider,
                event_id=event.event_id,
                event_type=event.type,
                reason=slug,
                payment_id=str(payment_id),
            )
            return await _finish(session, inbox_id, tenant_id, Ingested("rejected", slug))
        return await _finish(session, inbox_id, tenant_id, Ingested("processed", detail))


async def _insert(session: AsyncSession, event: events.ProviderEvent) -> uuid.UUID | None:
    row = (
        await session.execute(
            text(
                "INSERT INTO inbox (id, provider, event_id, event_type, payload) "
                "VALUES (:id, :provider, :event_id, :type, CAST(:payload AS jsonb)) "
                "ON CONFLICT (provider, event_id) DO NOTHING RETURNING id"
            ),
            {
                "id": new_id(),
                "provider": event.provider,
                "event_id": event.event_id,
                "type": event.type,
                "payload": _json(event.payload),
            },
        )
    ).first()
    return row[0] if row else None


def _json(payload: object) -> str:
    return json.dumps(payload, default=str)


async def _finish(
    session: AsyncSession, inbox_id: uuid.UUID, tenant_id: uuid.UUID | None, result: Ingested
) -> Ingested:
    outcome = result.status + (f": {result.detail}" if result.detail else "")
    await session.execute(
        text(
            "UPDATE inbox SET processed_at = now(), outcome = :outcome, owner_tenant_id = :t "
            "WHERE id = :id"
        ),
        {"outcome": outcome[:500], "t": tenant_id, "id": inbox_id},
    )
    return result


async def _locate(
    session: AsyncSession, event: events.ProviderEvent
) -> tuple[uuid.UUID | None, uuid.UUID | None]:
    """The payment an event is about: our own id from metadata first, else the provider's
    reference (disputes and refunds made in the provider's dashboard carry no metadata)."""
    if event.payment_id is not None:
        tenant = await session.scalar(text("SELECT payment_tenant(:p)"), {"p": event.payment_id})
        if tenant is not None and (event.tenant_id is None or tenant == event.tenant_id):
            return tenant, event.payment_id
    for ref in (event.provider_ref, event.charge_ref):
        if ref:
            row = (
                await session.execute(
                    text("SELECT * FROM payment_by_provider_ref(:p, :r)"),
                    {"p": event.provider, "r": ref},
                )
            ).first()
            if row is not None:
                return row.tenant_id, row.id
    return None, None


async def _same_provider(
    session: AsyncSession, event: events.ProviderEvent, tenant_id: uuid.UUID, payment_id: uuid.UUID
) -> bool:
    await set_tenant(session, tenant_id)
    provider = await session.scalar(
        select(Payment.provider).where(Payment.tenant_id == tenant_id, Payment.id == payment_id)
    )
    return provider == event.provider


async def _apply(
    session: AsyncSession,
    event: events.ProviderEvent,
    tenant_id: uuid.UUID,
    payment_id: uuid.UUID,
    now: datetime,
) -> str:
    if event.action == events.SUCCEEDED:
        return await _succeeded(session, event, tenant_id, payment_id, now)
    if event.action in (events.FAILED, events.CANCELLED):
        status = FAILED if event.action == events.FAILED else CANCELLED
        outcome = await checkout.apply_payment_ended(
            session, tenant_id, payment_id, status=status, reason=event.reason, now=now
        )
        return "" if outcome.changed else "no change"
    if event.action == events.REFUND_RESULT:
        return await _refund_results(session, event, tenant_id, payment_id, now)
    if event.action == events.CHARGE_REFUNDED:
        return await _charge_refunded(session, event, tenant_id, payment_id, now)
    if event.action == events.DISPUTE:
        return await _dispute(session, event, tenant_id, payment_id, now)
    return "ignored"


async def _succeeded(
    session: AsyncSession,
    event: events.ProviderEvent,
    tenant_id: uuid.UUID,
    payment_id: uuid.UUID,
    now: datetime,
) -> str:
    amount = Money(event.amount_minor or 0, event.currency or "")
    outcome = await checkout.apply_payment_succeeded(
        session,
        tenant_id,
        payment_id,
        amount=amount,
        fee_minor=0,
        provider_ref=event.provider_ref,
        charge_ref=event.charge_ref,
        now=now,
    )
    if outcome.changed and event.provider == "stripe":
        await stage(
            session, tenant_id, TOPIC_FETCH_FEE, "payment", payment_id, {"payment_id": payment_id}
        )
    return outcome.note or ("" if outcome.changed else "already captured")


async def _refund_results(
    session: AsyncSession,
    event: events.ProviderEvent,
    tenant_id: uuid.UUID,
    payment_id: uuid.UUID,
    now: datetime,
) -> str:
    done = []
    for notice in event.refunds:
        if notice.refund_id is None and notice.status == "succeeded" and notice.provider_ref:
            booked = await checkout.apply_external_refund(
                session,
                tenant_id,
                payment_id,
                amount_minor=notice.amount_minor,
                provider_ref=notice.provider_ref,
                now=now,
            )
            done.append(f"{notice.provider_ref}:external:{'booked' if booked else 'same'}")
            continue
        if notice.refund_id is None or notice.status not in ("succeeded", "failed", "canceled"):
            continue
        changed = await checkout.apply_refund_result(
            session,
            tenant_id,
            notice.refund_id,
            succeeded=notice.status == "succeeded",
            provider_ref=notice.provider_ref,
            reason=event.reason,
            now=now,
        )
        done.append(f"{notice.refund_id}:{notice.status}:{'changed' if changed else 'same'}")
    return ", ".join(done) or "no refund of ours"


async def _charge_refunded(
    session: AsyncSession,
    event: events.ProviderEvent,
    tenant_id: uuid.UUID,
    payment_id: uuid.UUID,
    now: datetime,
) -> str:
    """A refund may be reported before the capture itself (events arrive out of order): the
    charge shows what was captured, so the capture is booked first, then the refunds."""
    payment = await _lock(session, tenant_id, payment_id)
    notes = []
    if payment.status not in CAPTURED and event.amount_minor:
        notes.append(await _succeeded(session, event, tenant_id, payment_id, now))
    notes.append(await _refund_results(session, event, tenant_id, payment_id, now))
    return "; ".join(n for n in notes if n)


async def _dispute(
    session: AsyncSession,
    event: events.ProviderEvent,
    tenant_id: uuid.UUID,
    payment_id: uuid.UUID,
    now: datetime,
) -> str:
    """The disputed amount leaves the provider balance at once: Dr disputes / Cr clearing."""
    payment = await _lock(session, tenant_id, payment_id)
    amount = Money(event.amount_minor or 0, event.currency or payment.currency)
    await post(
        session,
        tenant_id,
        idempotency_key=f"dispute:{event.provider}:{event.event_id}",
        reason="dispute",
        lines=chart.disputed(payment.provider, amount),
        occurred_at=now,
        booking_id=payment.booking_id,
        payment_id=payment.id,
    )
    return f"dispute booked {amount.amount_minor}"


async def _lock(session: AsyncSession, tenant_id: uuid.UUID, payment_id: uuid.UUID) -> Payment:
    """Bookings, then the payment, locked and read fresh (app/bookings/locks.py)."""
    await set_tenant(session, tenant_id)
    return (await locks.lock_for_payment(session, tenant_id, payment_id)).payment
