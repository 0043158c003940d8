"""HTTP shapes for bookings (the API contract's fields, extended never broken)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

import msgspec

from app.bookings.queries import BookingView
from app.bookings.rules import BookingRequest, Customer, LineItem, Recurrence
from app.payments.provider_names import PaymentProvider
from app.payments.service import PaymentView

Short = Annotated[str, msgspec.Meta(max_length=300)]


class CustomerIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Short
    email: Short | None = None
    phone: Short | None = None
    locale: Literal["en", "ar"] = "en"


class LineItemIn(msgspec.Struct, forbid_unknown_fields=True):
    product_id: uuid.UUID
    quantity: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 1


class PaymentIn(msgspec.Struct, forbid_unknown_fields=True):
    provider: PaymentProvider


class RecurrenceIn(msgspec.Struct, forbid_unknown_fields=True):
    freq: Literal["daily", "weekly"]
    count: Annotated[int, msgspec.Meta(ge=1, le=100)] | None = None
    until: date | None = None


class BookingIn(msgspec.Struct, forbid_unknown_fields=True):
    service_id: uuid.UUID
    branch_id: uuid.UUID
    start: datetime
    customer: CustomerIn
    payment: PaymentIn
    resource_id: uuid.UUID | None = None
    end: datetime | None = None
    party_size: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 1
    products: Annotated[list[LineItemIn], msgspec.Meta(max_length=50)] = []
    recurrence: RecurrenceIn | None = None

    def to_request(self) -> BookingRequest:
        c = self.customer
        r = self.recurrence
        return BookingRequest(
            service_id=self.service_id,
            branch_id=self.branch_id,
            start=self.start,
            end=self.end,
            resource_id=self.resource_id,
            party_size=self.party_size,
            customer=Customer(c.name, c.email, c.phone, c.locale),
            provider=self.payment.provider,
            products=tuple(LineItem(p.product_id, p.quantity) for p in self.products),
            recurrence=Recurrence(r.freq, r.count, r.until) if r else None,
        )


class CancelIn(msgspec.Struct, forbid_unknown_fields=True):
    scope: Literal["one", "series"] = "one"


class RescheduleIn(msgspec.Struct, forbid_unknown_fields=True):
    start: datetime
    end: datetime | None = None
    resource_id: uuid.UUID | None = None


class MoneyOut(msgspec.Struct):
    amount_minor: int
    currency: str


class PaymentOut(msgspec.Struct):
    id: uuid.UUID | None
    provider: str
    status: str
    checkout_url: str | None = None


class CustomerOut(msgspec.Struct):
    name: str
    email: str | None
    phone: str | None
    locale: str


class LineOut(msgspec.Struct):
    product_id: uuid.UUID
    quantity: int
    unit_price_minor: int


class OccurrenceOut(msgspec.Struct):
    id: uuid.UUID
    start: datetime
    end: datetime


class BookingOut(msgspec.Struct):
    id: uuid.UUID
    status: str
    start: datetime
    end: datetime
    resource_id: uuid.UUID
    total: MoneyOut
    payment: PaymentOut
    service_id: uuid.UUID
    branch_id: uuid.UUID
    party_size: int
    customer: CustomerOut
    hold_expires_at: datetime | None
    series_id: uuid.UUID | None
    version: int
    products: list[LineOut]
    occurrences: list[OccurrenceOut] | None = None

    @classmethod
    def of(
        cls,
        view: BookingView,
        occurrences: tuple[BookingView, ...] = (),
        payment: PaymentView | None = None,
    ) -> BookingOut:
        return cls(
            id=view.id,
            status=view.status,
            start=view.start,
            end=view.end,
            resource_id=view.resource_id,
            total=MoneyOut(view.total.amount_minor, view.total.currency),
            payment=payment_out(view, payment or view.payment),
            service_id=view.service_id,
            branch_id=view.branch_id,
            party_size=view.party_size,
            customer=CustomerOut(
                view.customer_name, view.customer_email, view.customer_phone, view.customer_locale
            ),
            hold_expires_at=view.hold_expires_at,
            series_id=view.series_id,
            version=view.version,
            products=[LineOut(p.product_id, p.quantity, p.unit_price_minor) for p in view.products],
            occurrences=[OccurrenceOut(o.id, o.start, o.end) for o in occurrences]
            if len(occurrences) > 1
            else None,
        )


def payment_out(view: BookingView, payment: PaymentView | None) -> PaymentOut:
    if payment is None:
        return PaymentOut(None, view.provider, "none")
    return PaymentOut(payment.id, payment.provider, payment.status, payment.checkout_url)


class CancelOut(msgspec.Struct):
    cancelled: list[BookingOut]
