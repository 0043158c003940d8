"""Payment attempts and refunds."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, TenantScoped

REQUIRES_PAYMENT = "requires_payment"
PROCESSING = "processing"
SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELLED = "cancelled"
PARTIALLY_REFUNDED = "partially_refunded"
REFUNDED = "refunded"

OPEN = frozenset({REQUIRES_PAYMENT, PROCESSING})
CAPTURED = frozenset({SUCCEEDED, PARTIALLY_REFUNDED, REFUNDED})


class Payment(TenantScoped, Base):
    __tablename__ = "payments"

    booking_id: Mapped[uuid.UUID]
    provider: Mapped[str]
    status: Mapped[str]
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    captured_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    refunded_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    fee_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    provider_ref: Mapped[str | None]
    provider_charge_ref: Mapped[str | None]
    checkout_session_id: Mapped[str | None]
    checkout_url: Mapped[str | None]
    failure_reason: Mapped[str | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class Refund(TenantScoped, Base):
    __tablename__ = "refunds"

    payment_id: Mapped[uuid.UUID]
    booking_id: Mapped[uuid.UUID]
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(default="pending")
    reason: Mapped[str]
    provider_ref: Mapped[str | None]
    failure_reason: Mapped[str | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class InboxEvent(Base):
    __tablename__ = "inbox"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    owner_tenant_id: Mapped[uuid.UUID | None]
    provider: Mapped[str]
    event_id: Mapped[str]
    event_type: Mapped[str]
    payload: Mapped[dict[str, object]] = mapped_column(JSONB)
    received_at: Mapped[datetime] = mapped_column(server_default=func.now())
    processed_at: Mapped[datetime | None]
    outcome: Mapped[str | None]
