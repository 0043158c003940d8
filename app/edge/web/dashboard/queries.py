"""What the dashboard's pages read, each through the use cases the JSON routes call."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from app.bookings.queries import CalendarRow, bookings_overlapping
from app.bookings.service import BookingView, list_bookings
from app.catalog.service import read_catalog
from app.catalog.views import BranchView, ResourceView, ServiceView
from app.paging import MAX_LIMIT
from app.tenancy.service import get_tenant

# A stay that started this long before the first day shown still appears on it.
LOOKBACK = timedelta(days=31)
# The statuses that hold a booking's time, as the calendar grid draws them.
DRAWN = frozenset({"pending_payment", "confirmed", "checked_in", "completed", "no_show"})


@dataclass(frozen=True, slots=True)
class Business:
    id: uuid.UUID
    name: str
    currency: str
    tz: ZoneInfo


@dataclass(frozen=True, slots=True)
class Catalog:
    branches: list[BranchView]
    resources: list[ResourceView]
    services: list[ServiceView]

    def resource_names(self) -> dict[uuid.UUID, str]:
        return {r.id: r.name for r in self.resources}

    def service_names(self) -> dict[uuid.UUID, str]:
        return {s.id: s.name for s in self.services}

    def branch_names(self) -> dict[uuid.UUID, str]:
        return {b.id: b.name for b in self.branches}


async def get_business(session: AsyncSession, tenant_id: uuid.UUID) -> Business:
    tenant = await get_tenant(session, tenant_id)
    return Business(tenant.id, tenant.name, tenant.currency, ZoneInfo(tenant.timezone))


async def get_catalog(session: AsyncSession, tenant_id: uuid.UUID) -> Catalog:
    return Catalog(*await read_catalog(session, tenant_id))


async def bookings_between(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    first: date,
    last: date,
    *,
    lookback: timedelta = LOOKBACK,
    status: str | None = None,
) -> list[BookingView]:
    """Every booking starting from `first - lookback` to `last` (local dates, included),
    all pages of list_bookings."""
    found: list[BookingView] = []
    cursor: str | None = None
    while True:
        page = await list_bookings(
            session,
            tenant_id,
            start=first - lookback,
            end=last,
            status=status,
            cursor=cursor,
            limit=MAX_LIMIT,
        )
        found.extend(page.items)
        if page.next is None:
            return found
        cursor = page.next


async def calendar_bookings(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    first: date,
    last: date,
    tz: ZoneInfo,
    *,
    lookback: timedelta = LOOKBACK,
) -> list[CalendarRow]:
    """What the day and week calendars draw: bookings that hold their time (not cancelled or
    expired) overlapping the local days `first`..`last`, in one query of the columns drawn."""
    since = datetime.combine(first, time(), tz)
    until = datetime.combine(last + timedelta(days=1), time(), tz)
    return await bookings_overlapping(
        session, tenant_id, since, until, statuses=DRAWN, longest=lookback
    )


def overlapping(bookings: list[BookingView], since: datetime, until: datetime) -> list[BookingView]:
    return [b for b in bookings if b.start < until and b.end > since]
