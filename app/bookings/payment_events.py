"""Applying a stored provider event: its effect on the payment, bookings, ledger and outbox,
once, in the applier's transaction.

The edge only verifies and stores (app/payments/inbox.py) and answers 2xx. The applier in the
worker (app/worker/jobs/inbox.py) claims stored events and calls `apply_stored` for each: one
transaction locks the inbox row first (two appliers that both hold a claim, one of them past
its lease, queue there and the second finds it done), applies the effect and marks the row
done with its outcome, so the effect and the mark commit together: exactly once. An event the
books refuse (an amount that does not match, an unknown payment, a payment of another
provider or, at a business's own endpoint, of another business) is marked done as rejected
with its reason: retrying cannot help, and the row is the evidence for the engineer on call.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app import traces
from app.bookings import capture, checkout, locks
from app.db import retry_on_contention, set_tenant
from app.errors import DomainError, RedeliverLater
from app.ledger import chart
from app.ledger.service import post
from app.money import Money
from app.outbox.service import stage
from app.payments import inbox
from app.payments import provider_events as events
from app.payments.models import CANCELLED, CAPTURED, FAILED, Payment

log = structlog.get_logger()

TOPIC_FETCH_FEE = "payment.fetch_fee"

_LOCK_ROW = text("SELECT status FROM inbox WHERE id = :id FOR UPDATE")
# statement_timestamp(): the time of this last statement of the applying transaction, as
# clock_timestamp() would give it here, but STABLE, which Citus allows in an UPDATE.
_FINISH = text(
    "UPDATE inbox SET status = 'done', processed_at = statement_timestamp(), outcome = :outcome, "
    "owner_tenant_id = :t, locked_until = NULL, last_error = NULL WHERE id = :id"
)


@dataclass(frozen=True, slots=True)
class Ingested:
    status: str  # processed | duplicate | rejected | ignored
    detail: str = ""


@retry_on_contention(RedeliverLater)
async def apply_stored(session: AsyncSession, claimed: inbox.Claimed, now: datetime) -> Ingested:
    """Apply one stored event in one transaction, or find it already applied ("duplicate").
    When it keeps losing lock races the transaction is rolled back whole and RedeliverLater
    raised: the applier tries it again later, the row still pending."""
    event = inbox.rebuild(claimed)
    with traces.span(
        "webhook.apply",
        provider=event.provider,
        event_type=event.type,
        event_id=event.event_id,
    ) as span:
        try:
            applied = await _apply_stored(session, claimed, event, now)
        except capture.CaptureDeclined:
            # Rolled back whole: the general way decides (and rejects what it must).
            applied = await _apply_stored(session, claimed, event, now, plain=False)
        span.set_attribute("webhook.outcome", applied.status)
        return applied


async def _apply_stored(
    session: AsyncSession,
    claimed: inbox.Claimed,
    event: events.ProviderEvent,
    now: datetime,
    *,
    plain: bool = True,
) -> Ingested:
    async with session.begin():
        if plain and capture.fits(event, claimed.bound_tenant_id):
            # A plain capture in two round trips (app/bookings/capture.py); None: not plain.
            captured = await capture.apply_capture(session, _capture_of(claimed.id, event), now)
            if captured is not None:
                return Ingested(captured)
        status = await session.scalar(_LOCK_ROW, {"id": claimed.id})
        if status != inbox.PENDING:
            return Ingested("duplicate")
        tenant_id, payment_id = await _locate(session, event, claimed.bound_tenant_id)
        if event.action == events.IGNORE or payment_id is None or tenant_id is None:
            status = "ignored" if event.action == events.IGNORE else "rejected"
            detail = "" if status == "ignored" else "unknown payment"
            return await _finish(session, claimed.id, tenant_id, Ingested(status, detail))
        if not await _same_provider(session, event, tenant_id, payment_id):
            # Signed by one provider, naming another provider's payment: never applied.
            return await _finish(session, claimed.id, tenant_id, Ingested("rejected", "provider"))
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
            return await _finish(session, claimed.id, tenant_id, Ingested("rejected", slug))
        return await _finish(session, claimed.id, tenant_id, Ingested("processed", detail))


@dataclass(frozen=True, slots=True)
class CaptureGroup:
    """Plain-looking captures naming the business `tenant_id`: the claimed rows, and their
    events as rebuilt once, in the same order."""

    tenant_id: uuid.UUID
    claimed: list[inbox.Claimed]
    captures: list[capture.Capture]


def capture_groups(
    claimed: list[inbox.Claimed], size: int
) -> tuple[list[CaptureGroup], list[inbox.Claimed]]:
    """Claimed events split into groups of up to `size` plain-looking captures naming the same
    business (apply_captures applies each group in one transaction), and the rest (apply_stored
    applies each alone). A group of one is left alone too."""
    by_business: dict[uuid.UUID, list[tuple[inbox.Claimed, capture.Capture]]] = {}
    alone: list[inbox.Claimed] = []
    for item in claimed:
        found = _plain_capture_of(item)
        if found is not None:
            by_business.setdefault(found[0], []).append((item, found[1]))
        else:
            alone.append(item)
    groups: list[CaptureGroup] = []
    for tenant_id, pairs in by_business.items():
        for i in range(0, len(pairs), max(size, 1)):
            chunk = pairs[i : i + size]
            if len(chunk) == 1:
                alone.append(chunk[0][0])
            else:
                groups.append(CaptureGroup(tenant_id, [c for c, _ in chunk], [p for _, p in chunk]))
    alone.sort(key=lambda item: item.seq)
    return groups, alone


def _plain_capture_of(item: inbox.Claimed) -> tuple[uuid.UUID, capture.Capture] | None:
    """A plain-looking capture from a claimed row, with the business it names; None for any
    other event, or one that does not even parse (apply_stored fails it, and the applier
    retries it or marks it dead)."""
    try:
        event = inbox.rebuild(item)
    except Exception:
        return None
    if not capture.fits(event, item.bound_tenant_id) or event.tenant_id is None:
        return None
    return event.tenant_id, _capture_of(item.id, event)


@retry_on_contention(RedeliverLater)
async def apply_captures(
    session: AsyncSession, group: CaptureGroup, now: datetime
) -> dict[uuid.UUID, Ingested | None]:
    """A group from capture_groups, applied in one transaction (capture.apply_captures): by
    inbox id, what became of each event, or None for one to apply alone with apply_stored
    afterwards (not plain; or the whole group, when a write was refused and rolled back)."""
    with traces.span("webhook.apply_captures", captures=len(group.captures)):
        try:
            async with session.begin():
                outcomes = await capture.apply_captures(
                    session, group.tenant_id, group.captures, now
                )
        except capture.CaptureDeclined:
            return {item.id: None for item in group.claimed}
    return {key: Ingested(status) if status else None for key, status in outcomes.items()}


def _capture_of(inbox_id: uuid.UUID, event: events.ProviderEvent) -> capture.Capture:
    return capture.Capture(inbox_id, event, _after_capture(event))


def _after_capture(event: events.ProviderEvent) -> list[capture.Staged]:
    """What _succeeded stages after a capture it made."""
    if event.provider != "stripe" or event.payment_id is None:
        return []
    payload = {"payment_id": event.payment_id}
    return [(TOPIC_FETCH_FEE, "payment", event.payment_id, payload)]


async def _finish(
    session: AsyncSession, inbox_id: uuid.UUID, tenant_id: uuid.UUID | None, result: Ingested
) -> Ingested:
    outcome = result.status + (f": {result.detail}" if result.detail else "")
    await session.execute(_FINISH, {"outcome": outcome[:500], "t": tenant_id, "id": inbox_id})
    return result


async def _locate(
    session: AsyncSession, event: events.ProviderEvent, bound: uuid.UUID | None
) -> tuple[uuid.UUID | None, uuid.UUID | None]:
    """The payment an event is about: our own id from metadata first, else the provider's
    reference (disputes and refunds made in the provider's dashboard carry no metadata).
    An event a business's own endpoint received is bound to that business: when anything in
    it names another business's payment it is applied to nothing."""
    named: list[tuple[uuid.UUID, uuid.UUID]] = []
    if event.payment_id is not None:
        tenant = await session.scalar(text("SELECT payment_tenant(:p)"), {"p": event.payment_id})
        if tenant is not None and (event.tenant_id is None or tenant == event.tenant_id):
            named.append((tenant, event.payment_id))
        elif tenant is not None and bound is not None:
            return _foreign(event, bound, tenant)
    if bound is not None or not named:
        for ref in (event.provider_ref, event.charge_ref):
            if ref:
                row = (
                    await session.execute(
                        text("SELECT * FROM payment_by_provider_ref(:p, :r)"),
                        {"p": event.provider, "r": ref},
                    )
                ).first()
                if row is not None:
                    named.append((row.tenant_id, row.id))
    if bound is not None:
        foreign = next((t for t, _ in named if t != bound), None)
        if foreign is not None:
            return _foreign(event, bound, foreign)
    return named[0] if named else (None, None)


def _foreign(
    event: events.ProviderEvent, bound: uuid.UUID, named: uuid.UUID
) -> tuple[uuid.UUID | None, uuid.UUID | None]:
    log.warning(
        "webhook.stripe_foreign_event",
        tenant_id=str(bound),
        event_id=event.event_id,
        names=str(named),
    )
    # Stored as evidence, applied to nothing: no payment of this business is named.
    return bound, None


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


_STORED = text(
    "SELECT id, seq, provider, event_id, event_type, payload, bound_tenant_id, amount_minor, "
    "attempts, received_at FROM inbox WHERE id = :id"
)


async def apply_now(session: AsyncSession, inbox_id: uuid.UUID, now: datetime) -> Ingested:
    """Apply one stored event at once, outside the applier (the sandbox's own pay page). Safe
    alongside the applier: apply_stored locks the row and finds it done if it came second."""
    async with session.begin():
        row = (await session.execute(_STORED, {"id": inbox_id})).one()
    claimed = inbox.Claimed(
        id=row.id,
        seq=row.seq,
        provider=row.provider,
        event_id=row.event_id,
        event_type=row.event_type,
        payload=row.payload,
        bound_tenant_id=row.bound_tenant_id,
        amount_minor=row.amount_minor,
        attempts=row.attempts,
        received_at=row.received_at,
    )
    return await apply_stored(session, claimed, now)
