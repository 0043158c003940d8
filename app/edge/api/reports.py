"""Owner-facing reports: revenue (from the ledger, with reconciliation) and occupancy."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from litestar import Request, Response, Router, get
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from app.edge.http import manager_only, principal
from app.ledger import reports as ledger_reports
from app.ledger.schemas import RevenueRowOut
from app.reconciliation.summary import ReconciliationSummary
from app.reports import service
from app.reports.occupancy import OccupancyRow
from app.reports.schemas import (
    OccupancyReportOut,
    OccupancyRowOut,
    ReconciliationOut,
    RevenueReportOut,
)
from app.validation import field_error

From = Annotated[date, Parameter(query="from")]
To = Annotated[date, Parameter(query="to")]


@get("/reports/revenue")
async def revenue_report(
    request: Request[Any, Any, Any],
    session: AsyncSession,
    start: From,
    end: To,
    group_by: str = "day",
    output: Annotated[str | None, Parameter(query="format")] = None,
) -> Response[Any]:
    if output not in (None, "json", "csv"):
        raise field_error("format", "must be json or csv")
    result = await service.revenue_report(
        session,
        principal(request).tenant_id,
        start=start,
        end=end,
        group_by=group_by,
        with_reconciliation=output != "csv",
    )
    report = result.report
    if output == "csv":
        filename = f"revenue-{start.isoformat()}-{end.isoformat()}.csv"
        return Response(
            ledger_reports.revenue_csv(report),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )
    return Response(
        RevenueReportOut(
            start=report.start,
            end=report.end,
            timezone=report.timezone,
            group_by=list(report.group_by),
            rows=[_revenue_row(r) for r in report.rows],
            totals=[_revenue_row(r) for r in report.totals],
            reconciliation=[_reconciliation(s) for s in result.reconciliation],
        )
    )


def _revenue_row(row: ledger_reports.RevenueRow) -> RevenueRowOut:
    return RevenueRowOut(
        row.period,
        row.dimension,
        row.currency,
        row.gross_minor,
        row.refunds_minor,
        row.fees_minor,
        row.commissions_minor,
        row.net_minor,
    )


def _reconciliation(summary: ReconciliationSummary) -> ReconciliationOut:
    return ReconciliationOut(
        provider=summary.provider,
        reconciled=summary.reconciled,
        days=summary.days,
        days_run=summary.days_run,
        days_reconciled=summary.days_reconciled,
        days_failed=summary.days_failed,
        matched=summary.matched,
        open_discrepancies=summary.open_discrepancies,
        resolved_discrepancies=summary.resolved_discrepancies,
    )


@get("/reports/occupancy")
async def occupancy_report(
    request: Request[Any, Any, Any],
    session: AsyncSession,
    start: From,
    end: To,
    group_by: str = "resource",
) -> OccupancyReportOut:
    report = await service.occupancy_report(
        session, principal(request).tenant_id, start=start, end=end, group_by=group_by
    )
    return OccupancyReportOut(
        start=report.start,
        end=report.end,
        group_by=report.group_by,
        rows=[_occupancy_row(r) for r in report.rows],
        totals=[_occupancy_row(r) for r in report.totals],
        top_resources=[_occupancy_row(r) for r in report.top_resources],
    )


def _occupancy_row(row: OccupancyRow) -> OccupancyRowOut:
    return OccupancyRowOut(
        period=row.period,
        dimension=row.dimension,
        label=row.label,
        unit=row.unit,
        available=row.available,
        booked=row.booked,
        utilisation_bps=row.utilisation_bps,
        bookings=row.bookings,
        cancelled=row.cancelled,
        cancellation_share_bps=row.cancellation_share_bps,
        no_shows=row.no_shows,
        expired=row.expired,
    )


def router() -> Router:
    return Router(
        path="/api/v1",
        guards=[manager_only],
        tags=["reports"],
        route_handlers=[revenue_report, occupancy_report],
    )
