"""Pure booking rules: input checks, the occurrence a request means under each service policy,
recurrence expansion, the engine check for one occurrence, and the price snapshot."""

from __future__ import annotations

import math
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from app.availability import engine
from app.availability.service import Offer, interval_rule, nightly_rule, slot_rule
from app.bookings.models import LOCALES
from app.payments.provider_names import PAYMENT_PROVIDERS as PROVIDERS
from app.validation import check_aware, check_email, check_text, field_error

MAX_OCCURRENCES = 100
MAX_PARTY = 1000
MAX_LINE_QUANTITY = 1000
PHONE = re.compile(r"^\+?[0-9 ()\-]{5,32}$")


@dataclass(frozen=True, slots=True)
class Customer:
    name: str
    email: str | None = None
    phone: str | None = None
    locale: str = "en"


@dataclass(frozen=True, slots=True)
class LineItem:
    product_id: uuid.UUID
    quantity: int


@dataclass(frozen=True, slots=True)
class Recurrence:
    freq: Literal["daily", "weekly"]
    count: int | None = None
    until: date | None = None


@dataclass(frozen=True, slots=True)
class BookingRequest:
    service_id: uuid.UUID
    branch_id: uuid.UUID
    start: datetime
    customer: Customer
    provider: str
    end: datetime | None = None
    resource_id: uuid.UUID | None = None
    party_size: int = 1
    products: tuple[LineItem, ...] = ()
    recurrence: Recurrence | None = None


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One concrete booking time: what the customer gets and what it blocks (buffers)."""

    start: datetime
    end: datetime
    blocked_start: datetime
    blocked_end: datetime
    local_date: date
    nights: int = 0


def check_request(request: BookingRequest) -> BookingRequest:
    """Every field check that needs no database, so a bad request changes nothing."""
    check_aware(request.start, "start")
    if request.end is not None:
        check_aware(request.end, "end")
        if request.end <= request.start:
            raise field_error("end", "must be after start")
    if not 1 <= request.party_size <= MAX_PARTY:
        raise field_error("party_size", f"must be between 1 and {MAX_PARTY}")
    if request.provider not in PROVIDERS:
        raise field_error("payment.provider", f"must be one of {', '.join(PROVIDERS)}")
    ids = [item.product_id for item in request.products]
    if len(set(ids)) != len(ids):
        raise field_error("products", "each product may appear once")
    for item in request.products:
        if not 1 <= item.quantity <= MAX_LINE_QUANTITY:
            raise field_error("products.quantity", f"must be between 1 and {MAX_LINE_QUANTITY}")
    if request.recurrence is not None:
        check_recurrence(request.recurrence, request)
    return BookingRequest(
        service_id=request.service_id,
        branch_id=request.branch_id,
        start=request.start.astimezone(UTC),
        end=request.end.astimezone(UTC) if request.end else None,
        customer=check_customer(request.customer),
        provider=request.provider,
        resource_id=request.resource_id,
        party_size=request.party_size,
        products=tuple(sorted(request.products, key=lambda i: i.product_id)),
        recurrence=request.recurrence,
    )


def check_customer(customer: Customer) -> Customer:
    name = check_text(customer.name, "customer.name")
    email = check_email(customer.email, "customer.email") if customer.email else None
    phone = customer.phone.strip() if customer.phone else None
    if phone is not None and not PHONE.match(phone):
        raise field_error("customer.phone", "must be 5-32 digits, spaces, dashes or brackets")
    if customer.locale not in LOCALES:
        raise field_error("customer.locale", "must be en or ar")
    return Customer(name, email, phone, customer.locale)


def check_recurrence(recurrence: Recurrence, request: BookingRequest) -> None:
    if recurrence.freq not in ("daily", "weekly"):
        raise field_error("recurrence.freq", "must be daily or weekly")
    if recurrence.count is None and recurrence.until is None:
        raise field_error("recurrence", "needs count or until")
    if recurrence.count is not None and not 1 <= recurrence.count <= MAX_OCCURRENCES:
        raise field_error("recurrence.count", f"must be between 1 and {MAX_OCCURRENCES}")
    if recurrence.until is not None and recurrence.until < request.start.date() - timedelta(1):
        raise field_error("recurrence.until", "must not be before start")
    if request.products:
        raise field_error("products", "products cannot be added to a recurring booking")


def occurrence(offer: Offer, start: datetime, end: datetime | None) -> Occurrence:
    """The booking a (start, end?) request means under the service's policy."""
    service, tz = offer.service, offer.tz
    local_date = start.astimezone(tz).date()
    if service.policy == "nightly":
        rule = nightly_rule(service)
        nights = rule.min_nights if end is None else (end.astimezone(tz).date() - local_date).days
        if nights < 1:
            raise field_error("end", "a stay needs at least one night")
        # The stay's times are the service's check-in/check-out; only the dates are chosen.
        window = engine.stay_window(rule, tz, local_date, nights)
        return Occurrence(window.start, window.end, window.start, window.end, local_date, nights)
    before = timedelta(minutes=service.buffer_before_minutes)
    after = timedelta(minutes=service.buffer_after_minutes)
    if service.policy == "interval":
        if end is None:
            raise field_error("end", "is required for this service")
    else:
        duration = slot_rule(service).duration
        if end is not None and end - start != duration:
            minutes = int(duration.total_seconds() // 60)
            raise field_error("end", f"must be start + {minutes} minutes for this service")
        end = start + duration
    return Occurrence(start, end, start - before, end + after, local_date)


def expand(offer: Offer, first: Occurrence, recurrence: Recurrence | None) -> list[Occurrence]:
    """The series' occurrences at the same local wall-clock time (DST-safe), all-or-nothing."""
    if recurrence is None:
        return [first]
    step = timedelta(days=1 if recurrence.freq == "daily" else 7)
    local = first.start.astimezone(offer.tz).replace(tzinfo=None)
    length = first.end - first.start
    result: list[Occurrence] = []
    k = 0
    while recurrence.count is None or k < recurrence.count:
        wall = local + k * step
        if recurrence.until is not None and wall.date() > recurrence.until:
            break
        if len(result) == MAX_OCCURRENCES:
            raise field_error("recurrence", f"a series may have at most {MAX_OCCURRENCES} dates")
        start = wall.replace(tzinfo=offer.tz).astimezone(UTC)
        # For stays only the dates of start and end count, so the same length keeps the nights.
        result.append(occurrence(offer, start, start + length))
        k += 1
    return result


def is_bookable(
    offer: Offer, calendar: engine.ResourceCalendar, occ: Occurrence, now: datetime, party_size: int
) -> bool:
    service = offer.service
    if service.policy == "nightly":
        options = engine.nightly_options(
            nightly_rule(service),
            [calendar],
            offer.tz,
            occ.local_date,
            occ.local_date,
            now,
            party_size,
        )
        return any(
            o.resource_id == calendar.resource_id and occ.nights in o.nights for o in options
        )
    if service.policy == "interval":
        return (
            engine.interval_is_bookable(
                interval_rule(service), calendar, occ.start, occ.end, now, party_size
            )
            is not None
        )
    return (
        engine.slot_is_bookable(slot_rule(service), calendar, occ.start, now, party_size)
        is not None
    )


@dataclass(frozen=True, slots=True)
class Price:
    unit_price_minor: int
    pricing: str
    quantity: int
    total_minor: int


def price(
    offer: Offer,
    occ: Occurrence,
    party_size: int,
    unit: int | None = None,
    pricing: str | None = None,
) -> Price:
    """Price snapshot: branch override applied; hourly is per started hour; per seat."""
    unit = offer.unit_price_minor if unit is None else unit
    pricing = offer.pricing if pricing is None else pricing
    length = occ.end - occ.start
    if pricing == "hourly":
        quantity = math.ceil(length / timedelta(hours=1))
    elif pricing == "nightly":
        quantity = occ.nights or math.ceil(length / timedelta(days=1))
    else:
        quantity = 1
    return Price(unit, pricing, quantity, unit * quantity * party_size)
