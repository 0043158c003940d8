"""place_booking: one booking, or a whole recurring series, in one transaction.

The guarantee lives in PostgreSQL. A booker that finds room locks the resource row (sorted
ids, bounded wait) before it writes. Capacity-1 resources: the exclusion constraint over the
buffered range rejects the loser (23P01). Capacity-N: party sizes are recounted under the
lock, inside the transaction. Every way of losing the race becomes SlotUnavailable; nothing
else leaks out.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

from psycopg.types.range import Range as PgRange
from sqlalchemy import Table, bindparam, insert, text
from sqlalchemy.dialects.postgresql import Range
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from app import traces
from app.audit import trail as audit
from app.availability.service import (
    Candidate,
    Offer,
    load_calendars,
    offer_from,
    offer_statements,
)
from app.bookings import events, guard, rules
from app.bookings import payment_effects as money
from app.bookings.errors import OutOfStock, ProviderUnavailable, RecurrenceConflict, SlotUnavailable
from app.bookings.lifecycle import expire_overdue_holds
from app.bookings.models import CONFIRMED, PENDING_PAYMENT, Booking, BookingProduct
from app.bookings.queries import BookingView, LineView
from app.catalog import stock
from app.customers.service import Who, match_customer, match_statement
from app.db import (
    batch_of,
    new_id,
    open_batch,
    owns_transaction,
    psycopg_sql,
    run_together,
    set_tenant_statements,
)
from app.money import Money
from app.payments.provider_names import PAY_AT_VENUE
from app.payments.service import PaymentView
from app.tenant_settings.service import provider_enabled_from, provider_enabled_statement
from app.validation import field_error

HOLD = timedelta(minutes=15)
_INSERT_BOOKING = insert(Booking)
_INSERT_BOOKING_SQL = psycopg_sql(
    insert(cast(Table, Booking.__table__)).values(
        {column.name: bindparam(column.name) for column in cast(Table, Booking.__table__).columns}
    )
)


@dataclass(frozen=True, slots=True)
class Placed:
    """What place_booking wrote: the first booking and, for a series, every occurrence."""

    booking: BookingView
    occurrences: tuple[BookingView, ...]
    series_id: uuid.UUID | None
    event: str = events.BOOKING_PLACED
    payments: tuple[PaymentView, ...] = ()


async def place_booking(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    actor: audit.Actor,
    request: rules.BookingRequest,
    now: datetime,
    *,
    sandbox_base_url: str | None = None,
) -> Placed:
    """`sandbox_base_url`: where the sandbox provider's hosted page lives (development)."""
    request = rules.check_request(request)
    with traces.span("booking.place", tenant_id=tenant_id, service_id=request.service_id) as span:
        placed = await _place(session, tenant_id, actor, request, now, sandbox_base_url)
        span.set_attribute("booking_id", str(placed.booking.id))
        return placed


async def _place(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    actor: audit.Actor,
    request: rules.BookingRequest,
    now: datetime,
    sandbox_base_url: str | None,
) -> Placed:
    try:
        async with session.begin():
            customer_id, offer = await _first_reads(session, tenant_id, request, now)
            first = rules.occurrence(offer, request.start, request.end)
            wanted = rules.expand(offer, first, request.recurrence)
            # From here the writes queue in one batch (app.db.Batch): the resource lock, the
            # booking, its payment, ledger entry, outbox and audit rows go in one round trip,
            # with the COMMIT when this transaction is the session's own.
            async with open_batch(session) as batch:
                placed = await _place_on_some_resource(
                    session, tenant_id, offer, request, wanted, now, customer_id
                )
                if request.products:
                    await batch.run(session)  # the stock statements read the booking row
                    lines = await _deduct_stock(
                        session, tenant_id, actor, offer, placed[0], request, now
                    )
                    placed[0] = await _add_product_total(session, placed[0], lines)
                for view in placed:
                    audit.record(
                        session,
                        tenant_id,
                        actor,
                        events.BOOKING_PLACED,
                        "booking",
                        view.id,
                        after=_audit_after(view),
                    )
                result = Placed(placed[0], tuple(placed), placed[0].series_id)
                paid = await _after_booking_written(session, result, now, sandbox_base_url)
                result = replace(result, payments=tuple(paid))
                await session.flush()  # nothing may be left for the session's own commit
                await batch.run(session, commit=await owns_transaction(session))
    except DBAPIError as error:
        if guard.is_slot_lost(error):
            raise SlotUnavailable(start=request.start.isoformat()) from None
        raise
    return result


async def _after_booking_written(
    session: AsyncSession, placed: Placed, now: datetime, sandbox_base_url: str | None
) -> list[PaymentView]:
    """In the booking's transaction: payment row(s), ledger entries, outbox rows."""
    views = await money.open_payments(session, placed.occurrences, now, sandbox_base_url)
    for booking in placed.occurrences:
        if booking.status == CONFIRMED:
            await money.publish(session, booking, events.BOOKING_CONFIRMED)
    return views


async def _first_reads(
    session: AsyncSession, tenant_id: uuid.UUID, request: rules.BookingRequest, now: datetime
) -> tuple[uuid.UUID, Offer]:
    """One round trip (app.db.run_together, the BEGIN riding along): the tenant and lock
    timeout set, whether the provider is on, the booking's customer found or created
    (app.customers: first, before any resource lock, so every booker takes its locks in the
    same order), and the offer. The provider's verdict is given before the others'."""
    customer = request.customer
    who: Who = {
        "name": customer.name,
        "email": customer.email,
        "phone": customer.phone,
        "locale": customer.locale,
    }
    match = match_statement(tenant_id, now=now, **who)
    setup = [(sql, None) for sql in set_tenant_statements(tenant_id, guard.LOCK_TIMEOUT_MS)]
    rows = await run_together(
        session,
        [
            *setup,
            provider_enabled_statement(tenant_id, request.provider),
            match,
            *offer_statements(tenant_id, request.service_id, request.branch_id),
        ],
    )
    enabled, matched, service, branch = rows[len(setup) :]
    if not provider_enabled_from(enabled, request.provider):
        raise ProviderUnavailable(
            f"This business does not take payments through {request.provider}",
            provider=request.provider,
        )
    offer = offer_from(service, branch, request.service_id, request.branch_id)
    if matched:
        customer_id: uuid.UUID = matched[0][0]
        return customer_id, offer
    # Lost a race with another booking creating the same customer: settled by next reads.
    customer_id = await match_customer(session, tenant_id, now=now, **who)
    return customer_id, offer


async def _place_on_some_resource(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    offer: Offer,
    request: rules.BookingRequest,
    wanted: list[rules.Occurrence],
    now: datetime,
    customer_id: uuid.UUID,
) -> list[BookingView]:
    """Try the chosen resource, or each able resource in id order, until one takes every
    occurrence. Capacity-N locks are taken in that same order, so lock order stays sorted."""
    if request.resource_id is not None:
        candidates = [offer.candidate(request.resource_id)]
    else:
        candidates = list(offer.candidates)
    conflicts: list[str] = []
    # Savepoints only when a lost race must not end the attempt: a series (to name every
    # lost date) or a choice of resources (to try the next one).
    retry = len(wanted) > 1 or len(candidates) > 1
    for candidate in candidates:
        conflicts = await _conflicting_dates(
            session, tenant_id, offer, candidate, request, wanted, now, queue_lock=not retry
        )
        if conflicts:
            continue
        if not retry:
            placed, _ = await _insert_all(
                session,
                tenant_id,
                offer,
                candidate,
                request,
                wanted,
                now,
                customer_id,
                savepoints=False,
            )
            return placed
        # An outer savepoint per resource: rows written before a lost date are undone before
        # the next resource is tried.
        attempt = await session.begin_nested()
        placed, lost = await _insert_all(
            session, tenant_id, offer, candidate, request, wanted, now, customer_id, savepoints=True
        )
        if not lost:
            await attempt.commit()
            return placed
        await attempt.rollback()
        conflicts = lost
    if request.recurrence is not None and conflicts:
        raise RecurrenceConflict(dates=conflicts)
    raise SlotUnavailable(start=request.start.isoformat())


async def _conflicting_dates(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    offer: Offer,
    candidate: Candidate,
    request: rules.BookingRequest,
    wanted: Sequence[rules.Occurrence],
    now: datetime,
    *,
    queue_lock: bool = False,
) -> list[str]:
    """The dates `candidate` cannot take. Read without a lock first: when the slot is plainly
    taken (every loser of a rush for one slot, once the winner has committed) the answer
    comes at once and nobody queues. Only a booker that sees room takes the resource's row
    lock, so the bookers of one resource insert one at a time: capacity-N recounts party
    sizes under it; capacity-1 leaves the verdict to the exclusion constraint, which then
    meets the winner's committed row (at once 23P01) instead of a concurrent inserter's
    uncommitted one (two such inserters wait on each other until the deadlock detector
    breaks the cycle, a second later)."""
    loaded = await load_calendars(
        session,
        offer,
        [candidate],
        wanted[0].local_date,
        wanted[-1].end.astimezone(offer.tz).date(),
        now=now,
    )
    await expire_overdue_holds(session, tenant_id, loaded.overdue_holds, now)
    calendar = loaded.calendars[0]
    conflicts = [
        occ.local_date.isoformat()
        for occ in wanted
        if not rules.is_bookable(offer, calendar, occ, now, request.party_size)
    ]
    if conflicts:
        return conflicts
    batch = batch_of(session)
    if queue_lock and candidate.capacity == 1 and batch is not None:
        # Nothing is read under a capacity-1 lock: it goes first in the batch, before the
        # insert it guards (queue_lock: no savepoint attempt runs in between).
        guard.queue_lock(batch, tenant_id, [candidate.resource_id])
        return conflicts
    await guard.lock_resources(session, tenant_id, [candidate.resource_id])
    if candidate.capacity > 1:
        for occ in wanted:
            peak = await guard.booked_party_size(
                session, candidate.resource_id, occ.blocked_start, occ.blocked_end
            )
            if peak + request.party_size > candidate.capacity:
                conflicts.append(occ.local_date.isoformat())
    return conflicts


async def _insert_all(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    offer: Offer,
    candidate: Candidate,
    request: rules.BookingRequest,
    wanted: Sequence[rules.Occurrence],
    now: datetime,
    customer_id: uuid.UUID,
    *,
    savepoints: bool,
) -> tuple[list[BookingView], list[str]]:
    """Insert every occurrence. With savepoints a lost race names its date and the caller can
    try another resource or report the dates; the series stays all-or-nothing. Without, the
    error ends the transaction and place_booking turns it into SlotUnavailable."""
    series_id = new_id() if request.recurrence is not None else None
    placed: list[BookingView] = []
    lost: list[str] = []
    for occ in wanted:
        values = _row(tenant_id, offer, candidate, request, occ, series_id, now)
        values["customer_id"] = customer_id
        if not savepoints:
            batch = batch_of(session)
            if batch is not None:
                batch.add(_INSERT_BOOKING_SQL, _driver_row(values))
            else:
                await session.execute(_INSERT_BOOKING, [values])
            placed.append(_view(values))
            continue
        try:
            async with session.begin_nested():
                await session.execute(_INSERT_BOOKING, [values])
        except DBAPIError as error:
            if not guard.is_slot_lost(error):
                raise
            lost.append(occ.local_date.isoformat())
            continue
        placed.append(_view(values))
    return placed, lost


def _view(values: dict[str, Any]) -> BookingView:
    """The view of a row just inserted, from its values: no ORM instance (instrumented
    attributes cost more than the view itself on this path)."""
    return BookingView.of(cast(Booking, SimpleNamespace(**values)))


def _driver_row(values: dict[str, Any]) -> dict[str, Any]:
    """A booking row as psycopg takes it (its own Range type for `blocked`)."""
    blocked = values["blocked"]
    return {**values, "blocked": PgRange(blocked.lower, blocked.upper, blocked.bounds)}


def _row(
    tenant_id: uuid.UUID,
    offer: Offer,
    candidate: Candidate,
    request: rules.BookingRequest,
    occ: rules.Occurrence,
    series_id: uuid.UUID | None,
    now: datetime,
) -> dict[str, Any]:
    price = rules.price(offer, occ, request.party_size)
    at_venue = request.provider in PAY_AT_VENUE
    customer = request.customer
    return {
        "tenant_id": tenant_id,
        "id": new_id(),
        "branch_id": offer.branch_id,
        "service_id": offer.service.id,
        "resource_id": candidate.resource_id,
        "series_id": series_id,
        "customer_name": customer.name,
        "customer_email": customer.email,
        "customer_phone": customer.phone,
        "customer_locale": customer.locale,
        "party_size": request.party_size,
        "starts_at": occ.start,
        "ends_at": occ.end,
        "blocked": Range(occ.blocked_start, occ.blocked_end, bounds="[)"),
        "exclusive": candidate.capacity == 1,
        "status": CONFIRMED if at_venue else PENDING_PAYMENT,
        "hold_expires_at": None if at_venue else now + HOLD,
        "unit_price_minor": price.unit_price_minor,
        "pricing": price.pricing,
        "quantity": price.quantity,
        "total_minor": price.total_minor,
        "currency": offer.service.currency,
        "payment_provider": request.provider,
        "created_at": now,
        "updated_at": now,
        "version": 1,
        "checked_in_at": None,
        "completed_at": None,
        "cancelled_at": None,
    }


async def _deduct_stock(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    actor: audit.Actor,
    offer: Offer,
    booking: BookingView,
    request: rules.BookingRequest,
    now: datetime,
) -> list[LineView]:
    """Conditional decrements in product-id order, each recorded as a stock movement naming
    the booking (app.catalog.stock): stock never goes below zero and two bookings deducting
    the same products never deadlock."""
    lines = []
    for item in request.products:  # sorted by product_id in check_request
        sold = await stock.take_for_booking(
            session,
            tenant_id,
            actor,
            booking_id=booking.id,
            branch_id=offer.branch_id,
            product_id=item.product_id,
            quantity=item.quantity,
            now=now,
        )
        if sold is None:
            raise OutOfStock(product_id=str(item.product_id), quantity=item.quantity)
        if sold.currency != offer.service.currency.strip():
            raise field_error("products", "a product's currency must match the service's")
        lines.append(LineView(item.product_id, item.quantity, sold.unit_price_minor))
    await session.execute(
        insert(BookingProduct),
        [
            {
                "tenant_id": tenant_id,
                "booking_id": booking.id,
                "product_id": line.product_id,
                "quantity": line.quantity,
                "unit_price_minor": line.unit_price_minor,
                "currency": offer.service.currency,
            }
            for line in lines
        ],
    )
    return lines


async def _add_product_total(
    session: AsyncSession, booking: BookingView, lines: list[LineView]
) -> BookingView:
    extra = sum(line.unit_price_minor * line.quantity for line in lines)
    await session.execute(
        text(
            "UPDATE bookings SET total_minor = total_minor + :extra WHERE id = :id "
            "AND tenant_id = :t"
        ),
        {"extra": extra, "id": booking.id, "t": booking.tenant_id},
    )
    return replace(
        booking, total=booking.total + Money(extra, booking.total.currency), products=tuple(lines)
    )


def _audit_after(view: BookingView) -> dict[str, Any]:
    return {
        "status": view.status,
        "start": view.start.isoformat(),
        "end": view.end.isoformat(),
        "resource_id": str(view.resource_id),
        "party_size": view.party_size,
        "total_minor": view.total.amount_minor,
        "currency": view.total.currency,
        "series_id": str(view.series_id) if view.series_id else None,
    }
