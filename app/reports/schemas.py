"""HTTP shapes for the occupancy report and the revenue report with reconciliation."""

from __future__ import annotations

from datetime import date

import msgspec

from app.ledger.schemas import RevenueReportOut as LedgerRevenueReportOut


class OccupancyRowOut(msgspec.Struct):
    period: date | None
    dimension: str | None
    label: str | None
    unit: str
    available: int
    booked: int
    utilisation_bps: int
    bookings: int
    cancelled: int
    cancellation_share_bps: int
    no_shows: int
    expired: int


class OccupancyReportOut(msgspec.Struct):
    start: date = msgspec.field(name="from")
    end: date = msgspec.field(name="to")
    group_by: str = "resource"
    rows: list[OccupancyRowOut] = msgspec.field(default_factory=list)
    totals: list[OccupancyRowOut] = msgspec.field(default_factory=list)
    top_resources: list[OccupancyRowOut] = msgspec.field(default_factory=list)


class ReconciliationOut(msgspec.Struct):
    provider: str
    reconciled: bool
    days: int
    days_run: int
    days_reconciled: int
    days_failed: int
    matched: int
    open_discrepancies: int
    resolved_discrepancies: int


class RevenueReportOut(LedgerRevenueReportOut):
    """The ledger's revenue report fields, unchanged, plus the reconciliation summary."""

    reconciliation: list[ReconciliationOut] = msgspec.field(default_factory=list)
