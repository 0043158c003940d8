"""HTTP shapes for invoices, credit notes and the invoicing settings."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec

from app.invoices.views import InvoiceView, SettingsView
from app.money import Money


class MoneyOut(msgspec.Struct):
    amount_minor: int
    currency: str

    @classmethod
    def of(cls, money: Money) -> MoneyOut:
        return cls(money.amount_minor, money.currency)


class LineOut(msgspec.Struct):
    position: int
    description: str
    quantity: int
    unit_price: MoneyOut
    amount: MoneyOut
    booking_id: uuid.UUID | None
    product_id: uuid.UUID | None


class CustomerOut(msgspec.Struct):
    name: str
    email: str | None


class InvoiceOut(msgspec.Struct):
    id: uuid.UUID
    kind: str
    number: str
    issued_at: datetime
    business_name: str
    timezone: str
    customer: CustomerOut
    payment_id: uuid.UUID
    booking_id: uuid.UUID
    refund_id: uuid.UUID | None
    credits_invoice_id: uuid.UUID | None
    credits_number: str | None
    lines: list[LineOut]
    subtotal: MoneyOut
    tax: MoneyOut
    total: MoneyOut
    tax_rate_bps: int
    tax_label: str
    footer: str | None

    @classmethod
    def of(cls, view: InvoiceView) -> InvoiceOut:
        return cls(
            id=view.id,
            kind=view.kind,
            number=view.number,
            issued_at=view.issued_at,
            business_name=view.business_name,
            timezone=view.timezone,
            customer=CustomerOut(view.customer_name, view.customer_email),
            payment_id=view.payment_id,
            booking_id=view.booking_id,
            refund_id=view.refund_id,
            credits_invoice_id=view.credits_invoice_id,
            credits_number=view.credits_number,
            lines=[
                LineOut(
                    line.position,
                    line.description,
                    line.quantity,
                    MoneyOut.of(line.unit_price),
                    MoneyOut.of(line.amount),
                    line.booking_id,
                    line.product_id,
                )
                for line in view.lines
            ],
            subtotal=MoneyOut.of(view.subtotal),
            tax=MoneyOut.of(view.tax),
            total=MoneyOut.of(view.total),
            tax_rate_bps=view.tax_rate_bps,
            tax_label=view.tax_label,
            footer=view.footer,
        )


class InvoiceSettingsIn(msgspec.Struct, forbid_unknown_fields=True):
    tax_rate_bps: int
    tax_label: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    footer: Annotated[str, msgspec.Meta(max_length=4000)] | None = None


class InvoiceSettingsOut(msgspec.Struct):
    tax_rate_bps: int
    tax_label: str
    footer: str | None

    @classmethod
    def of(cls, view: SettingsView) -> InvoiceSettingsOut:
        return cls(view.tax_rate_bps, view.tax_label, view.footer)
