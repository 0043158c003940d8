"""Ninety days of history for a new demo business, made by the same use cases the API and the
worker run — never rows written by hand — each with the `now` it would have had: bookings
placed two days ahead, paid through the sandbox provider's webhook path (or cash at the
visit), checked in and completed, cancelled with the policy's refund, marked no-show, holds
left to expire; an owner's refund; a payout run (one payout paid); and a reconciliation run
with one discrepancy. Upcoming days get confirmed bookings and a few holds awaiting payment,
so every dashboard page shows something true.

Deterministic (a seeded random per business), and only ever run for a business created in
the same `reckon seed-demo` (see demo.py), so seeding twice adds nothing.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit import trail as audit
from app.bookings import service as bookings
from app.bookings.checkout import record_refund_result, refund_booking
from app.bookings.payment_events import apply_now
from app.db import set_tenant
from app.edge.api.payments import sandbox_event_for
from app.payments import inbox
from app.payments.models import Refund
from app.payments.provider_events import sandbox_event
from app.payments.types import PaymentView
from app.payouts import service as payouts
from app.reconciliation import service as reconciliation
from app.reconciliation.matching import ProviderRecord, Tolerances, match
from app.tenancy.service import Principal

HISTORY_DAYS = 90
UPCOMING_DAYS = 14
PLACED_AHEAD = timedelta(days=2)
CUSTOMERS = (
    ("Layla Hassan", "+201001234567"),
    ("Omar Farouk", "+201112223334"),
    ("Nour El-Sayed", "+201223334445"),
    ("Karim Adel", "+201004445556"),
    ("Salma Youssef", "+201115556667"),
    ("Hana Mostafa", "+201226667778"),
    ("Youssef Nabil", "+201007778889"),
    ("Mariam Khaled", "+201118889990"),
)
# Outcomes of a visit in the past, by weight.
PAST = (("completed", 62), ("no_show", 8), ("cancelled", 16), ("expired", 6), ("refunded", 8))
SessionMaker = async_sessionmaker[AsyncSession]


@dataclass(frozen=True, slots=True)
class Offer:
    """One bookable thing of the demo: a service on a resource at a local time of day."""

    service_id: uuid.UUID
    resource_id: uuid.UUID
    hour: int
    minutes: int  # an interval service's length; 0: the service's own duration
    nights: int = 0  # a stay's nights
    weekdays: frozenset[int] = frozenset(range(7))
    every: int = 1  # on every n-th day


@dataclass(frozen=True, slots=True)
class DemoCatalog:
    tenant_id: uuid.UUID
    branch_id: uuid.UUID
    tz: ZoneInfo
    offers: tuple[Offer, ...]
    currency: str


class History:
    def __init__(self, sessions: SessionMaker, owner: Principal, catalog: DemoCatalog) -> None:
        self.sessions = sessions
        self.owner = owner
        self.actor = audit.Actor.user(owner.user_id)
        self.catalog = catalog
        # Demo data, not a secret: the same history for the same business every time.
        self.rng = random.Random(catalog.currency)  # noqa: S311
        self.customers = 0

    @property
    def tenant_id(self) -> uuid.UUID:
        return self.catalog.tenant_id

    def _request(self, offer: Offer, day: date, provider: str) -> bookings.BookingRequest:
        name, phone = CUSTOMERS[self.customers % len(CUSTOMERS)]
        self.customers += 1
        local = datetime.combine(day, time(offer.hour), tzinfo=self.catalog.tz)
        start = local.astimezone(UTC)
        end: datetime | None = None
        if offer.nights:
            end = start + timedelta(days=offer.nights)
        elif offer.minutes:
            end = start + timedelta(minutes=offer.minutes)
        return bookings.BookingRequest(
            service_id=offer.service_id,
            branch_id=self.catalog.branch_id,
            start=start,
            end=end,
            resource_id=offer.resource_id,
            customer=bookings.Customer(name=name, phone=phone),
            provider=provider,
        )

    async def _place(
        self, request: bookings.BookingRequest, now: datetime
    ) -> tuple[bookings.BookingView, PaymentView]:
        async with self.sessions() as session:
            placed = await bookings.place_booking(
                session, self.tenant_id, self.actor, request, now, sandbox_base_url=None
            )
        return placed.booking, placed.payments[0]

    async def _pay(self, payment: PaymentView, now: datetime) -> None:
        """The sandbox page's Pay: the same signed-event path, applied by the inbox."""
        event = sandbox_event(sandbox_event_for(self.tenant_id, payment.id, payment.amount, True))
        async with self.sessions() as session:
            async with session.begin():
                connection = await session.connection()
                stored = await inbox.store(connection, event, json.dumps(event.payload))
            if stored.inbox_id is None:
                raise RuntimeError(f"demo payment {payment.id} was stored already")
            outcome = await apply_now(session, stored.inbox_id, now)
        if outcome.status != "processed":
            raise RuntimeError(f"demo payment {payment.id} was {outcome.status}: {outcome.detail}")

    async def _settle_refunds(self, now: datetime) -> None:
        """What the worker's refund handler does for the sandbox provider: it succeeds."""
        async with self.sessions() as session, session.begin():
            await set_tenant(session, self.tenant_id)
            pending = (
                await session.scalars(
                    select(Refund.id).where(
                        Refund.tenant_id == self.tenant_id, Refund.status == "pending"
                    )
                )
            ).all()
        for refund_id in pending:
            async with self.sessions() as session:
                await record_refund_result(
                    session,
                    self.tenant_id,
                    refund_id,
                    succeeded=True,
                    provider_ref=f"sandbox-refund-{refund_id}",
                    reason=None,
                    now=now,
                )

    async def _transition(self, action: str, booking_id: uuid.UUID, now: datetime) -> None:
        use_case = {
            "check_in": bookings.check_in_booking,
            "complete": bookings.complete_booking,
            "no_show": bookings.mark_no_show,
        }[action]
        async with self.sessions() as session:
            await use_case(session, self.tenant_id, self.actor, booking_id, now)

    async def past_visit(self, offer: Offer, day: date, outcome: str) -> None:
        provider = "cash" if outcome == "completed" and self.rng.random() < 0.3 else "sandbox"
        request = self._request(offer, day, provider)
        placed_at = request.start - PLACED_AHEAD
        booking, payment = await self._place(request, placed_at)
        if outcome == "expired":
            async with self.sessions() as session:
                await bookings.expire_holds(session, self.tenant_id, placed_at + timedelta(hours=1))
            return
        if provider == "sandbox":
            await self._pay(payment, placed_at + timedelta(minutes=3))
        if outcome == "cancelled":
            # A day and a half ahead (the full-refund tier) or on the day (a partial one).
            ahead = timedelta(hours=36 if self.rng.random() < 0.6 else 5)
            async with self.sessions() as session:
                await bookings.cancel_booking(
                    session, self.tenant_id, self.actor, booking.id, booking.start - ahead
                )
            await self._settle_refunds(booking.start - ahead + timedelta(minutes=2))
            return
        if outcome == "no_show":
            await self._transition("no_show", booking.id, booking.start + timedelta(minutes=40))
            await self._settle_refunds(booking.start + timedelta(minutes=45))
            return
        await self._transition("check_in", booking.id, booking.start)
        await self._transition("complete", booking.id, booking.end)
        if outcome == "refunded":
            async with self.sessions() as session:
                await refund_booking(
                    session,
                    self.tenant_id,
                    self.actor,
                    booking.id,
                    amount_minor=booking.total.amount_minor // 2,
                    reason="goodwill: late start",
                    now=booking.end + timedelta(hours=3),
                )
            await self._settle_refunds(booking.end + timedelta(hours=3, minutes=2))

    async def upcoming_visit(self, offer: Offer, day: date, now: datetime, hold: bool) -> None:
        provider = "sandbox" if hold or self.rng.random() < 0.6 else "cash"
        request = self._request(offer, day, provider)
        placed_at = min(now, request.start - PLACED_AHEAD) if not hold else now
        _, payment = await self._place(request, placed_at)
        if provider == "sandbox" and not hold:
            await self._pay(payment, placed_at + timedelta(minutes=2))

    def _outcome(self) -> str:
        names = [name for name, _ in PAST]
        return self.rng.choices(names, weights=[w for _, w in PAST])[0]

    async def bookings(self, now: datetime) -> None:
        today = now.astimezone(self.catalog.tz).date()
        holds = 0
        for offset in range(-HISTORY_DAYS, UPCOMING_DAYS + 1):
            day = today + timedelta(days=offset)
            for offer in self.catalog.offers:
                if day.weekday() not in offer.weekdays or (offset % offer.every):
                    continue
                local = datetime.combine(day, time(offer.hour), tzinfo=self.catalog.tz)
                if offer.nights and offset < 0 and offset + offer.nights >= 0:
                    continue  # a stay running today would start in the past and end later
                if local < now - timedelta(hours=12):
                    await self.past_visit(offer, day, self._outcome())
                elif local > now + timedelta(hours=3):
                    await self.upcoming_visit(offer, day, now, hold=offset > 0 and holds < 3)
                    holds += 1 if offset > 0 and holds < 3 else 0

    async def payouts(self, now: datetime) -> None:
        """Commission owed up to a week ago, paid out by hand; one transfer marked paid."""
        today = now.astimezone(self.catalog.tz).date()
        async with self.sessions() as session:
            run = await payouts.run_payouts(
                session,
                self.tenant_id,
                period_start=today - timedelta(days=HISTORY_DAYS + 7),
                period_end=today - timedelta(days=6),
                minimum_minor=1,
                now=now - timedelta(days=5),
                actor=self.actor,
            )
        if run.created:
            async with self.sessions() as session:
                await payouts.mark_payout_paid(
                    session,
                    self.tenant_id,
                    run.created[0].id,
                    provider_ref="bank-transfer-demo-0001",
                    now=now - timedelta(days=4),
                    actor=self.actor,
                )

    async def reconciliation(self, now: datetime) -> None:
        """Yesterday's Stripe statement against the ledger: it lists a charge taken in Stripe's
        own dashboard, which never went through Reckon — one `missing_in_ledger` finding."""
        yesterday = now.astimezone(self.catalog.tz).date() - timedelta(days=1)
        async with self.sessions() as session:
            window = await reconciliation.day_window(session, self.tenant_id, yesterday)
        async with self.sessions() as session:
            ledger = await reconciliation.ledger_records(
                session, self.tenant_id, "stripe", window, []
            )
        statement = [
            ProviderRecord(
                ref="ch_demo_terminal_walk_in",
                record_type="charge",
                amount_minor=12_000 if self.catalog.currency == "USD" else 50_000,
                fee_minor=380 if self.catalog.currency == "USD" else 1_450,
                currency=self.catalog.currency,
                record_id="txn_demo_walk_in",
            )
        ]
        async with self.sessions() as session:
            await reconciliation.store_run(
                session,
                self.tenant_id,
                provider="stripe",
                window=window,
                result=match(statement, ledger),
                tolerances=Tolerances(),
                started_at=now,
                now=now,
            )


async def seed_history(
    sessions: SessionMaker, owner: Principal, catalog: DemoCatalog, now: datetime
) -> None:
    history = History(sessions, owner, catalog)
    await history.bookings(now)
    await history.payouts(now)
    await history.reconciliation(now)
