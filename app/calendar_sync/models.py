"""A resource's calendar connection and where each booking's event was written."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKeyConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, TenantScoped

LIVE = "live"
CANCELLED = "cancelled"


class ResourceCalendar(TenantScoped, Base):
    __tablename__ = "resource_calendars"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "resource_id"], ["resources.tenant_id", "resources.id"]),
    )

    resource_id: Mapped[uuid.UUID]
    calendar_id: Mapped[str]
    sealed_refresh_token: Mapped[str]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class CalendarEvent(TenantScoped, Base):
    __tablename__ = "calendar_events"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "booking_id"], ["bookings.tenant_id", "bookings.id"]),
    )

    booking_id: Mapped[uuid.UUID]
    resource_id: Mapped[uuid.UUID]
    calendar_id: Mapped[str]
    event_id: Mapped[str]
    state: Mapped[str]
    synced_version: Mapped[int]
    synced_at: Mapped[datetime] = mapped_column(server_default=func.now())


def token_associated_data(tenant_id: uuid.UUID, resource_id: uuid.UUID) -> str:
    """Binds a sealed refresh token to its tenant and resource."""
    return f"{tenant_id}:{resource_id}:gcal"
