"""Booking rows and their product line items."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import BigInteger, ForeignKeyConstraint, String, func
from sqlalchemy.dialects.postgresql import TSTZRANGE, Range
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, TenantScoped

PENDING_PAYMENT = "pending_payment"
CONFIRMED = "confirmed"
CHECKED_IN = "checked_in"
COMPLETED = "completed"
CANCELLED = "cancelled"
NO_SHOW = "no_show"
EXPIRED = "expired"

STATUSES = (PENDING_PAYMENT, CONFIRMED, CHECKED_IN, COMPLETED, CANCELLED, NO_SHOW, EXPIRED)
# Active bookings hold their slot; the exclusion constraint and the recount look at these only.
ACTIVE = frozenset({PENDING_PAYMENT, CONFIRMED, CHECKED_IN})
FINAL = frozenset({COMPLETED, CANCELLED, NO_SHOW, EXPIRED})

LOCALES = ("en", "ar")


class Booking(TenantScoped, Base):
    __tablename__ = "bookings"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "branch_id"], ["branches.tenant_id", "branches.id"]),
        ForeignKeyConstraint(["tenant_id", "service_id"], ["services.tenant_id", "services.id"]),
        ForeignKeyConstraint(["tenant_id", "resource_id"], ["resources.tenant_id", "resources.id"]),
    )

    branch_id: Mapped[uuid.UUID]
    service_id: Mapped[uuid.UUID]
    resource_id: Mapped[uuid.UUID]
    series_id: Mapped[uuid.UUID | None]
    customer_id: Mapped[uuid.UUID | None]
    """The customer record (app.customers) matched when the booking was placed."""
    customer_name: Mapped[str]
    customer_email: Mapped[str | None]
    customer_phone: Mapped[str | None]
    customer_locale: Mapped[str] = mapped_column(default="en")
    party_size: Mapped[int] = mapped_column(default=1)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    blocked: Mapped[Range[datetime]] = mapped_column(TSTZRANGE)
    exclusive: Mapped[bool]
    status: Mapped[str]
    hold_expires_at: Mapped[datetime | None]
    unit_price_minor: Mapped[int] = mapped_column(BigInteger)
    pricing: Mapped[str]
    quantity: Mapped[int]
    total_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    payment_provider: Mapped[str]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())
    checked_in_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(default=1)

    def snapshot(self) -> dict[str, Any]:
        """The fields an audit row records before and after a change."""
        return snapshot_of(self)


class Snapshotted(Protocol):
    @property
    def status(self) -> str: ...
    @property
    def starts_at(self) -> datetime: ...
    @property
    def ends_at(self) -> datetime: ...
    @property
    def resource_id(self) -> uuid.UUID: ...
    @property
    def party_size(self) -> int: ...
    @property
    def total_minor(self) -> int: ...
    @property
    def currency(self) -> str: ...
    @property
    def version(self) -> int: ...


def snapshot_of(row: Snapshotted) -> dict[str, Any]:
    """Booking.snapshot() of a booking's columns read without the ORM."""
    return {
        "status": row.status,
        "start": row.starts_at.isoformat(),
        "end": row.ends_at.isoformat(),
        "resource_id": str(row.resource_id),
        "party_size": row.party_size,
        "total_minor": row.total_minor,
        "currency": row.currency,
        "version": row.version,
    }


class BookingProduct(Base):
    __tablename__ = "booking_products"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "booking_id"], ["bookings.tenant_id", "bookings.id"]),
        ForeignKeyConstraint(["tenant_id", "product_id"], ["products.tenant_id", "products.id"]),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    booking_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    product_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    quantity: Mapped[int]
    unit_price_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
