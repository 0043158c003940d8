"""Invoice settings, gapless number counters, invoices and credit notes, and their lines."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, String, func
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, TenantScoped

INVOICE = "invoice"
CREDIT_NOTE = "credit_note"
SERIES = {INVOICE: "INV", CREDIT_NOTE: "CN"}
DEFAULT_TAX_LABEL = "VAT"


class InvoiceSettings(TenantScoped, Base):
    __tablename__ = "invoice_settings"

    tax_rate_bps: Mapped[int] = mapped_column(default=0)
    tax_label: Mapped[str] = mapped_column(default=DEFAULT_TAX_LABEL)
    footer: Mapped[str | None]
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class InvoiceCounter(TenantScoped, Base):
    __tablename__ = "invoice_counters"

    series: Mapped[str]
    year: Mapped[int]
    last_value: Mapped[int] = mapped_column(BigInteger)


class Invoice(TenantScoped, Base):
    """An invoice (kind "invoice") or a credit note against one (kind "credit_note").

    Business name, timezone, customer and tax terms are snapshots: a document never changes
    after it is issued, whatever happens to the tenant or the booking later.
    """

    __tablename__ = "invoices"

    kind: Mapped[str]
    series: Mapped[str]
    year: Mapped[int]
    # NULL only inside the issuing transaction: numbered at its commit (migration 0021).
    sequence: Mapped[int | None] = mapped_column(BigInteger)
    number: Mapped[str | None]
    payment_id: Mapped[uuid.UUID]
    refund_id: Mapped[uuid.UUID | None]
    credits_invoice_id: Mapped[uuid.UUID | None]
    credits_number: Mapped[str | None]
    booking_id: Mapped[uuid.UUID]
    issued_at: Mapped[datetime]
    business_name: Mapped[str]
    timezone: Mapped[str]
    customer_name: Mapped[str]
    customer_email: Mapped[str | None]
    subtotal_minor: Mapped[int] = mapped_column(BigInteger)
    tax_minor: Mapped[int] = mapped_column(BigInteger)
    total_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    tax_rate_bps: Mapped[int]
    tax_label: Mapped[str]
    footer: Mapped[str | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class InvoiceLine(TenantScoped, Base):
    __tablename__ = "invoice_lines"

    invoice_id: Mapped[uuid.UUID]
    position: Mapped[int]
    description: Mapped[str]
    quantity: Mapped[int]
    unit_price_minor: Mapped[int] = mapped_column(BigInteger)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    booking_id: Mapped[uuid.UUID | None]
    product_id: Mapped[uuid.UUID | None]
