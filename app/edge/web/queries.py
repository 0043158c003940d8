"""The read use cases behind the booking site, one transaction each (tenant set first).

They compose the catalog's, availability's and bookings' read helpers, which run inside the
caller's transaction, so a page sees one consistent snapshot. Writes go through the bookings
use cases themselves (place_booking, cancel_booking, reschedule_booking).
"""

from __future__ import annotations

import calendar
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.availability.service import (
    Availability,
    Candidate,
    Offer,
    calendar_version,
    compute,
    load_calendars,
    load_offer,
    nightly_rule,
    slot_rule,
)
from app.bookings import rules
from app.bookings.events import BOOKING_CANCELLED
from app.bookings.models import ACTIVE
from app.bookings.payment_effects import ending_split
from app.bookings.queries import BookingView, find_booking_row, lines_of, with_payments
from app.db import set_tenant
from app.edge.web.calendar import free_days
from app.edge.web.errors import LinkExpired
from app.edge.web.memo import FreeDayMemo, MonthEntry
from app.edge.web.shop import BranchInfo, ServiceInfo, Shop, load_shop
from app.errors import NotFound
from app.money import Money
from app.payments import policy
from app.payments.models import CAPTURED, Refund
from app.tenancy.models import Tenant
from app.tenancy.service import find_tenant_by_slug
from app.validation import check_aware, field_error


async def find_business(session: AsyncSession, slug: str) -> Tenant:
    tenant = await find_tenant_by_slug(session, slug)
    if tenant is None:
        raise NotFound("Business not found", entity="tenant", slug=slug)
    return tenant


async def get_shop(session: AsyncSession, tenant: Tenant, now: datetime) -> Shop:
    async with session.begin():
        await set_tenant(session, tenant.id)
        return await load_shop(session, tenant, now)


@dataclass(frozen=True, slots=True)
class MonthQuery:
    service_id: uuid.UUID
    branch_id: uuid.UUID
    month: tuple[int, int] | None = None  # (year, month); None: this month at the branch
    resource_id: uuid.UUID | None = None
    party_size: int = 1


@dataclass(frozen=True, slots=True)
class MonthAvailability:
    """What is free in one month, from today on (nothing for a month already past): `free`
    counts the free starts of each local day; `availability` holds the month's slots, or
    only the chosen day's when the month's free days came from the memo."""

    shop: Shop
    availability: Availability
    tz: ZoneInfo
    year: int
    month: int
    today: date
    last_bookable: date
    free: Mapping[date, int] = field(default_factory=dict)


def month_days(year: int, month: int) -> tuple[date, date]:
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


async def get_month_availability(
    session: AsyncSession,
    tenant: Tenant,
    query: MonthQuery,
    now: datetime,
    *,
    day: date | None = None,
    memo: FreeDayMemo | None = None,
) -> MonthAvailability:
    """The shop (without what only other pages show: see load_shop) and what is free for one
    service at one branch over a month. With a memo, a time-slot service's free days (and
    the times of `day`) are reused while the calendar rows they came from are unchanged."""
    async with session.begin():
        await set_tenant(session, tenant.id)
        shop = await load_shop(session, tenant, now, complete=False)
        return await _load_month(session, shop, query, now, day=day, memo=memo)


async def _load_month(
    session: AsyncSession,
    shop: Shop,
    query: MonthQuery,
    now: datetime,
    *,
    day: date | None = None,
    memo: FreeDayMemo | None = None,
) -> MonthAvailability:
    if not 1 <= query.party_size <= rules.MAX_PARTY:
        raise field_error("party_size", f"must be between 1 and {rules.MAX_PARTY}")
    offer = await load_offer(session, shop.tenant_id, query.service_id, query.branch_id)
    today = now.astimezone(offer.tz).date()
    year, month = query.month or (today.year, today.month)
    first, last = month_days(year, month)
    first = max(first, today)
    candidates = (
        [offer.candidate(query.resource_id)]
        if query.resource_id is not None
        else list(offer.candidates)
    )
    horizon = last
    if offer.service.policy == "nightly":
        horizon = last + timedelta(days=nightly_rule(offer.service).max_nights)
    found = Availability(str(offer.tz), offer.service.policy, [])
    free: Mapping[date, int] = {}
    if first <= last and memo is not None and offer.service.policy == "time_slot":
        found, free = await _memo_month(
            session, offer, candidates, (first, last), query, now, day, memo
        )
    elif first <= last:
        loaded = await load_calendars(session, offer, candidates, first, horizon, now=now)
        found = compute(offer, loaded.calendars, first, last, now, query.party_size)
        free = free_days(found, offer.tz)
    advance = timedelta(days=offer.service.max_advance_days)
    return MonthAvailability(
        shop,
        found,
        offer.tz,
        year,
        month,
        today,
        (now + advance).astimezone(offer.tz).date(),
        free,
    )


async def _memo_month(
    session: AsyncSession,
    offer: Offer,
    candidates: list[Candidate],
    days: tuple[date, date],
    query: MonthQuery,
    now: datetime,
    day: date | None,
    memo: FreeDayMemo,
) -> tuple[Availability, Mapping[date, int]]:
    """The month's free days, and the slots of `day`, from the memo while the calendar rows
    they came from are unchanged; else computed (the month at most once a minute)."""
    first, last = days
    version = await calendar_version(session, offer, candidates, first, last, now=now)
    rule = slot_rule(offer.service)
    key = (
        offer.service.tenant_id,
        offer.service.id,
        offer.branch_id,
        str(offer.tz),
        tuple(candidates),
        rule,
        query.party_size,
        first,
        last,
        now.replace(second=0, microsecond=0),
        version,
    )
    entry = memo.get(key)
    if entry is None:
        loaded = await load_calendars(session, offer, candidates, first, last, now=now)
        found = compute(offer, loaded.calendars, first, last, now, query.party_size)
        free = free_days(found, offer.tz)
        memo.put(key, MonthEntry(free))
        return found, free
    if day is None or not first <= day <= last:
        return Availability(str(offer.tz), offer.service.policy, []), entry.free
    remembered = entry.days.get(day)
    if remembered is None:
        loaded = await load_calendars(session, offer, candidates, day, day, now=now)
        remembered = compute(offer, loaded.calendars, day, day, now, query.party_size)
        entry.days[day] = remembered
    # Remembered within this minute: drop what minimum notice has ruled out since.
    earliest = now + rule.min_notice
    slots = [slot for slot in remembered.slots if slot.start >= earliest]
    return Availability(remembered.timezone, remembered.policy, slots), entry.free


@dataclass(frozen=True, slots=True)
class Quote:
    """What a (start, end?) request means and costs, and whether it is still free."""

    start: datetime
    end: datetime
    nights: int
    quantity: int
    pricing: str
    unit: Money
    total: Money
    bookable: bool


@dataclass(frozen=True, slots=True)
class QuoteQuery:
    service_id: uuid.UUID
    branch_id: uuid.UUID
    start: datetime
    end: datetime | None = None
    resource_id: uuid.UUID | None = None
    party_size: int = 1


async def get_quote(
    session: AsyncSession, tenant: Tenant, query: QuoteQuery, now: datetime
) -> tuple[Shop, Quote]:
    """The booking a details form is about to place, priced as place_booking prices it."""
    if not 1 <= query.party_size <= rules.MAX_PARTY:
        raise field_error("party_size", f"must be between 1 and {rules.MAX_PARTY}")
    async with session.begin():
        await set_tenant(session, tenant.id)
        shop = await load_shop(session, tenant, now)
        offer = await load_offer(session, tenant.id, query.service_id, query.branch_id)
        occ = rules.occurrence(offer, check_aware(query.start, "start"), query.end)
        candidates = (
            [offer.candidate(query.resource_id)]
            if query.resource_id is not None
            else list(offer.candidates)
        )
        loaded = await load_calendars(
            session, offer, candidates, occ.local_date, occ.end.astimezone(offer.tz).date(), now=now
        )
    price = rules.price(offer, occ, query.party_size)
    bookable = any(
        rules.is_bookable(offer, calendar, occ, now, query.party_size)
        for calendar in loaded.calendars
    )
    currency = shop.currency
    return shop, Quote(
        start=occ.start,
        end=occ.end,
        nights=occ.nights,
        quantity=price.quantity,
        pricing=price.pricing,
        unit=Money(price.unit_price_minor, currency),
        total=Money(price.total_minor, currency),
        bookable=bookable,
    )


@dataclass(frozen=True, slots=True)
class RefundPreview:
    """What cancelling right now gives back under the service's cancellation policy."""

    paid: Money
    refund: Money
    refund_bps: int


@dataclass(frozen=True, slots=True)
class ManagedBooking:
    shop: Shop
    booking: BookingView
    service: ServiceInfo
    branch: BranchInfo
    resource_name: str
    refund: RefundPreview
    now: datetime
    # Refunds asked of the provider and not answered yet (the payment counts them already).
    refund_pending_minor: int = 0

    @property
    def ended(self) -> bool:
        return self.now >= self.booking.end

    @property
    def active(self) -> bool:
        return self.booking.status in ACTIVE

    @property
    def hold_lapsed(self) -> bool:
        hold = self.booking.hold_expires_at
        return self.booking.status == "pending_payment" and hold is not None and hold <= self.now

    @property
    def changeable(self) -> bool:
        """Cancel and reschedule are offered before the start, while the booking is live."""
        live = self.booking.status in ("pending_payment", "confirmed") and not self.hold_lapsed
        return live and self.now < self.booking.start


def refund_preview(booking: BookingView, service: ServiceInfo, now: datetime) -> RefundPreview:
    """Only captured money is refunded, split by the same function cancelling uses
    (app/bookings/payment_effects.ending_split)."""
    payment = booking.payment
    currency = booking.total.currency
    if payment is None or payment.status not in CAPTURED:
        return RefundPreview(Money(0, currency), Money(0, currency), 0)
    refundable = min(booking.total.amount_minor, payment.captured_minor - payment.refunded_minor)
    terms = {
        "tiers": [
            {"hours_before": t.hours_before, "refund_bps": t.refund_bps}
            for t in service.view.cancellation_policy.tiers
        ]
    }
    bps = policy.cancellation_refund_bps(terms, booking.start, now)
    split = ending_split(BOOKING_CANCELLED, max(refundable, 0), terms, booking.start, now)
    return RefundPreview(
        Money(max(refundable, 0), currency), Money(split.refund_minor, currency), bps
    )


async def get_managed_booking(
    session: AsyncSession, tenant: Tenant, booking_id: uuid.UUID, now: datetime
) -> ManagedBooking:
    """The booking a manage link names, with the refund cancelling now would give."""
    async with session.begin():
        await set_tenant(session, tenant.id)
        return await _load_managed(session, tenant, booking_id, now)


async def get_reschedule_options(
    session: AsyncSession,
    tenant: Tenant,
    booking_id: uuid.UUID,
    month: tuple[int, int] | None,
    now: datetime,
) -> tuple[ManagedBooking, MonthAvailability]:
    """The booking and the free times of its service with the same person, for a month."""
    async with session.begin():
        await set_tenant(session, tenant.id)
        managed = await _load_managed(session, tenant, booking_id, now)
        booking = managed.booking
        query = MonthQuery(
            booking.service_id, booking.branch_id, month, booking.resource_id, booking.party_size
        )
        return managed, await _load_month(session, managed.shop, query, now)


async def _load_managed(
    session: AsyncSession, tenant: Tenant, booking_id: uuid.UUID, now: datetime
) -> ManagedBooking:
    row = await find_booking_row(session, tenant.id, booking_id)
    if row is None:
        raise NotFound("Booking not found", entity="booking", id=str(booking_id))
    if now >= row.ends_at:
        raise LinkExpired()
    view = BookingView.of(row, await lines_of(session, booking_id))
    view = (await with_payments(session, tenant.id, [view]))[0]
    shop = await load_shop(session, tenant, now)
    service = _service_of(shop, view)
    names = {r.id: r.name for r in service.resources}
    pending = await session.scalar(
        select(func.coalesce(func.sum(Refund.amount_minor), 0)).where(
            Refund.tenant_id == tenant.id,
            Refund.booking_id == booking_id,
            Refund.status == "pending",
        )
    )
    return ManagedBooking(
        shop=shop,
        booking=view,
        service=service,
        branch=_branch_of(shop, view),
        resource_name=names.get(view.resource_id, ""),
        refund=refund_preview(view, service, now),
        now=now,
        refund_pending_minor=int(pending or 0),
    )


def _service_of(shop: Shop, booking: BookingView) -> ServiceInfo:
    try:
        return shop.service(booking.service_id)
    except NotFound:
        # Archived since it was booked: the booking still stands; show it without options.
        raise NotFound("This booking can no longer be managed online") from None


def _branch_of(shop: Shop, booking: BookingView) -> BranchInfo:
    try:
        return shop.branch(booking.branch_id)
    except NotFound:
        raise NotFound("This booking can no longer be managed online") from None
