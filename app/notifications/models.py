"""One row per WhatsApp message we mean to send; a stored wamid means Meta accepted it."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKeyConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, TenantScoped

BOOKING_CONFIRMED = "booking_confirmed"
BOOKING_REMINDER = "booking_reminder"
BOOKING_CANCELLED = "booking_cancelled"
BOOKING_REFUNDED = "booking_refunded"
KINDS = (BOOKING_CONFIRMED, BOOKING_REMINDER, BOOKING_CANCELLED, BOOKING_REFUNDED)

QUEUED = "queued"
SENDING = "sending"
SENT = "sent"

# Approved template language codes per customer locale.
TEMPLATE_LANGUAGES = {"ar": "ar", "en": "en_US"}


class WhatsAppMessage(TenantScoped, Base):
    __tablename__ = "whatsapp_messages"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "booking_id"], ["bookings.tenant_id", "bookings.id"]),
    )

    booking_id: Mapped[uuid.UUID]
    kind: Mapped[str]
    dedupe_key: Mapped[str]
    outbox_id: Mapped[uuid.UUID | None]
    status: Mapped[str]
    template: Mapped[str | None]
    language: Mapped[str | None]
    to_phone: Mapped[str | None]
    wamid: Mapped[str | None]
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    sent_at: Mapped[datetime | None]


def template_name(kind: str) -> str:
    return f"reckon_{kind}"


def dedupe_key(kind: str, booking_id: uuid.UUID, outbox_id: uuid.UUID | None) -> str:
    """Once per booking for confirmed/reminder/cancelled; once per event for refunds, since
    a booking may be refunded in several parts."""
    if kind == BOOKING_REFUNDED and outbox_id is not None:
        return f"{kind}:{outbox_id}"
    return f"{kind}:{booking_id}"
