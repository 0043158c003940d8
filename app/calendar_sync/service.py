"""Use cases for calendar connections, and the two short transactions around a sync call.

The provider call itself happens in jobs.py, between `load_sync_target` (tx1) and
`record_sync` (tx2); nothing here talks to Google.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import trail as audit
from app.bookings.models import Booking
from app.calendar_sync.models import CalendarEvent, ResourceCalendar, token_associated_data
from app.catalog.models import Branch, Resource, Service
from app.db import new_id, set_lock_timeout, set_tenant
from app.errors import NotFound
from app.tenancy.service import Principal
from app.tenant_settings.sealing import Sealer
from app.validation import check_text

MAX_TOKEN_LENGTH = 4096


@dataclass(frozen=True, slots=True)
class CalendarConnectionView:
    resource_id: uuid.UUID
    calendar_id: str
    connected_at: datetime


@dataclass(frozen=True, slots=True)
class Connection:
    resource_id: uuid.UUID
    calendar_id: str
    sealed_refresh_token: str


@dataclass(frozen=True, slots=True)
class SyncedEvent:
    resource_id: uuid.UUID
    calendar_id: str
    event_id: str
    state: str
    synced_version: int


@dataclass(frozen=True, slots=True)
class BookingForCalendar:
    id: uuid.UUID
    status: str
    resource_id: uuid.UUID
    starts_at: datetime
    ends_at: datetime
    customer_name: str
    party_size: int
    service_name: str
    timezone: str
    version: int


@dataclass(frozen=True, slots=True)
class SyncTarget:
    booking: BookingForCalendar
    # Connections of the booking's resource and of the resource the event was last written
    # to (they differ after a reschedule onto another resource).
    connections: dict[uuid.UUID, Connection]
    synced: SyncedEvent | None


async def connect_calendar(
    session: AsyncSession,
    actor: Principal,
    box: Sealer,
    resource_id: uuid.UUID,
    now: datetime,
    *,
    calendar_id: str,
    refresh_token: str,
) -> CalendarConnectionView:
    """Connect (or reconnect) a resource to a Google calendar; the refresh token is sealed."""
    calendar_id = check_text(calendar_id, "calendar_id", max_length=1024)
    refresh_token = check_text(refresh_token, "refresh_token", max_length=MAX_TOKEN_LENGTH)
    tenant_id = actor.tenant_id
    sealed = box.encrypt(
        refresh_token, associated_data=token_associated_data(tenant_id, resource_id)
    )
    async with session.begin():
        await set_tenant(session, tenant_id)
        await set_lock_timeout(session)
        found = await session.scalar(
            select(Resource.id)
            .where(Resource.tenant_id == tenant_id, Resource.id == resource_id)
            .with_for_update()
        )
        if found is None:
            raise NotFound("Resource not found", entity="resource", id=str(resource_id))
        values = {"calendar_id": calendar_id, "sealed_refresh_token": sealed, "updated_at": now}
        await session.execute(
            insert(ResourceCalendar)
            .values(tenant_id=tenant_id, id=new_id(), resource_id=resource_id, **values)
            .on_conflict_do_update(index_elements=["tenant_id", "resource_id"], set_=values)
        )
        audit.record(
            session,
            tenant_id,
            audit.Actor.user(actor.user_id),
            "resource.calendar_connected",
            "resource",
            resource_id,
            after={"calendar_id": calendar_id},
        )
    return CalendarConnectionView(resource_id, calendar_id, now)


async def _load_booking(
    session: AsyncSession, tenant_id: uuid.UUID, booking_id: uuid.UUID
) -> BookingForCalendar | None:
    row = (
        await session.execute(
            select(Booking, Service.name, Branch.timezone)
            .join(
                Service,
                (Service.tenant_id == Booking.tenant_id) & (Service.id == Booking.service_id),
            )
            .join(
                Branch, (Branch.tenant_id == Booking.tenant_id) & (Branch.id == Booking.branch_id)
            )
            .where(Booking.tenant_id == tenant_id, Booking.id == booking_id)
        )
    ).first()
    if row is None:
        return None
    booking, service_name, timezone = row
    return BookingForCalendar(
        booking.id,
        booking.status,
        booking.resource_id,
        booking.starts_at,
        booking.ends_at,
        booking.customer_name,
        booking.party_size,
        service_name,
        timezone,
        booking.version,
    )


async def load_sync_target(
    session: AsyncSession, tenant_id: uuid.UUID, booking_id: uuid.UUID
) -> SyncTarget | None:
    """The booking, the calendars involved and the last synced state (None: no booking)."""
    async with session.begin():
        await set_tenant(session, tenant_id)
        booking = await _load_booking(session, tenant_id, booking_id)
        if booking is None:
            return None
        synced_row = await session.scalar(
            select(CalendarEvent).where(
                CalendarEvent.tenant_id == tenant_id, CalendarEvent.booking_id == booking_id
            )
        )
        synced = (
            SyncedEvent(
                synced_row.resource_id,
                synced_row.calendar_id,
                synced_row.event_id,
                synced_row.state,
                synced_row.synced_version,
            )
            if synced_row
            else None
        )
        resource_ids = {booking.resource_id} | ({synced.resource_id} if synced else set())
        rows = await session.scalars(
            select(ResourceCalendar).where(
                ResourceCalendar.tenant_id == tenant_id,
                ResourceCalendar.resource_id.in_(resource_ids),
            )
        )
        connections = {
            r.resource_id: Connection(r.resource_id, r.calendar_id, r.sealed_refresh_token)
            for r in rows
        }
    return SyncTarget(booking, connections, synced)


async def record_sync(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    booking_id: uuid.UUID,
    event: SyncedEvent,
    now: datetime,
) -> None:
    """Remember where the booking's event is and which version it shows."""
    values = {
        "resource_id": event.resource_id,
        "calendar_id": event.calendar_id,
        "event_id": event.event_id,
        "state": event.state,
        "synced_version": event.synced_version,
        "synced_at": now,
    }
    async with session.begin():
        await set_tenant(session, tenant_id)
        await session.execute(
            insert(CalendarEvent)
            .values(tenant_id=tenant_id, id=new_id(), booking_id=booking_id, **values)
            .on_conflict_do_update(index_elements=["tenant_id", "booking_id"], set_=values)
        )
