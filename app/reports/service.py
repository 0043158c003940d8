"""Owner-facing reports that combine domains: occupancy from the catalog and bookings, and
the ledger's revenue report with the reconciliation summary beside it. Read-only; each
function owns its read transaction(s)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.bookings.models import Booking
from app.catalog import queries
from app.db import set_tenant
from app.ledger import reports as ledger_reports
from app.reconciliation.summary import ReconciliationSummary, reconciliation_summary
from app.reports.occupancy import GROUPINGS, BookingFact, Catalog, OccupancyReport, build_report
from app.validation import field_error

MAX_OCCUPANCY_DAYS = 366
# Local dates are at most 14 hours from UTC; two days of slack keep every booking, time off
# and override that can touch the range (a nightly stay's last check-out included).
SLACK = timedelta(days=2)


@dataclass(frozen=True, slots=True)
class RevenueWithReconciliation:
    report: ledger_reports.RevenueReport
    reconciliation: list[ReconciliationSummary]


def check_range(start: date, end: date, max_days: int) -> None:
    if end < start:
        raise field_error("to", "must be on or after from")
    if (end - start).days + 1 > max_days:
        raise field_error("to", f"the range covers at most {max_days} days")


async def occupancy_report(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    start: date,
    end: date,
    group_by: str = "resource",
) -> OccupancyReport:
    """Booked vs available time and nights for local dates start..end inclusive."""
    if group_by not in GROUPINGS:
        raise field_error("group_by", "must be one of resource, branch, service, day")
    check_range(start, end, MAX_OCCUPANCY_DAYS)
    low = datetime.combine(start - SLACK, time(), UTC)
    high = datetime.combine(end + SLACK, time(), UTC)
    async with session.begin():
        await set_tenant(session, tenant_id)
        branches = await queries.load_branches(session, tenant_id)
        resources = await queries.load_resources(session, tenant_id)
        services = await queries.load_services(session, tenant_id)
        schedules = await queries.load_schedules(
            session, tenant_id, [r.id for r in resources], low, high
        )
        rows = await session.execute(
            select(
                Booking.resource_id,
                Booking.branch_id,
                Booking.service_id,
                Booking.starts_at,
                Booking.ends_at,
                Booking.party_size,
                Booking.status,
            ).where(
                Booking.tenant_id == tenant_id,
                Booking.starts_at < high,
                Booking.ends_at > low,
            )
        )
        bookings = [BookingFact(*row) for row in rows.tuples()]
    catalog = Catalog(
        branches={b.id: (b.name, ZoneInfo(b.timezone)) for b in branches},
        resources=resources,
        services=services,
        schedules=schedules,
    )
    return build_report(catalog, bookings, first=start, last=end, group_by=group_by)


async def revenue_report(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    start: date,
    end: date,
    group_by: str = "day",
    with_reconciliation: bool = True,
) -> RevenueWithReconciliation:
    """The ledger's revenue report and, per provider, whether those days are reconciled."""
    report = await ledger_reports.revenue_report(
        session, tenant_id, start=start, end=end, group_by=group_by
    )
    summary = (
        await reconciliation_summary(session, tenant_id, start, end) if with_reconciliation else []
    )
    return RevenueWithReconciliation(report, summary)
