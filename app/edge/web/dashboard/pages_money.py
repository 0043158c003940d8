"""The revenue and analytics page (owners and admins, as the API's reports): money collected
and revenue earned side by side, by day, week or month and by service, resource or branch,
both sums of ledger postings (app.reports.money); occupancy and utilisation from bookings and
schedules (app.reports.service). Each chart is SVG drawn here with its table beside it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated

from litestar import get
from litestar.params import Parameter
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncSession

from app.edge.http import principal
from app.edge.web.dashboard import charts
from app.edge.web.dashboard.queries import get_business, get_catalog
from app.edge.web.dashboard.rendering import page
from app.edge.web.rendering import AnyRequest, now
from app.presentation.i18n import N_
from app.reconciliation.summary import reconciliation_summary
from app.reports.money import MoneyReport, MoneyRow, money_report, period_starts
from app.reports.occupancy import MINUTES, OccupancyReport
from app.reports.service import occupancy_report

MAX_DAYS = 366
MAX_DAY_BUCKETS = 92
PERIODS = ("day", "week", "month")
DIMENSIONS = ("service", "resource", "branch")
COLLECTED, EARNED = N_("Money collected"), N_("Revenue earned")
TIME_USED, NIGHTS_USED = N_("Time booked"), N_("Nights booked")


@dataclass(frozen=True, slots=True)
class Picker:
    first: date
    last: date
    period: str
    by: str


def pick(
    today: date, first: date | None, last: date | None, period: str | None, by: str | None
) -> Picker:
    """The period the form asked for, made sensible: to defaults to today, from to 29 days
    before; at most a year; days only up to 92 buckets (weeks beyond)."""
    last = last or today
    first = first if first and first <= last else last - timedelta(days=29)
    first = max(first, last - timedelta(days=MAX_DAYS - 1))
    grain = period if period in PERIODS else "day"
    if grain == "day" and (last - first).days >= MAX_DAY_BUCKETS:
        grain = "week"
    return Picker(first, last, grain, by if by in DIMENSIONS else "service")


@dataclass(frozen=True, slots=True)
class MoneyTable:
    """One currency's rows for a chart and its table (empty buckets included)."""

    currency: str
    chart: charts.Chart
    rows: list[tuple[date | str, MoneyRow]]
    total: MoneyRow


def _money_tables(
    report: MoneyReport, keys: list[date | str], chart_id: str, grain: str, labels: dict[str, str]
) -> list[MoneyTable]:
    tables = []
    for total in report.totals:
        currency = total.currency
        found: dict[date | str, MoneyRow] = {
            (r.period or "" if report.period else r.dimension or ""): r
            for r in report.rows
            if r.currency == currency
        }
        wanted = keys or list(found)
        empty = MoneyRow(None, None, currency, 0, 0, 0, 0, 0)
        rows: list[tuple[date | str, MoneyRow]] = [(k, found.get(k, empty)) for k in wanted]
        if not report.period:
            rows.sort(key=lambda kr: -max(kr[1].collected_minor, kr[1].earned_minor))
        chart = charts.Chart(
            id=f"{chart_id}-{currency.lower()}",
            categories=[k for k, _ in rows],
            series=[
                charts.Series(COLLECTED, [r.collected_minor for _, r in rows], "s1"),
                charts.Series(EARNED, [r.earned_minor for _, r in rows], "s2"),
            ],
            currency=currency,
            grain=grain,
            labels=labels,
        )
        tables.append(MoneyTable(currency, chart, rows, total))
    return tables


def _occupancy_charts(
    by_day: OccupancyReport, by_dimension: OccupancyReport, days: list[date]
) -> tuple[charts.Chart, charts.Chart]:
    units = sorted({r.unit for r in by_day.totals})
    per_day = {(r.period, r.unit): r.utilisation_bps for r in by_day.rows}
    line = charts.Chart(
        id="use-days",
        categories=list(days),
        series=[
            charts.Series(
                TIME_USED if unit == MINUTES else NIGHTS_USED,
                [per_day.get((d, unit), 0) for d in days],
                "s1" if unit == MINUTES else "s2",
            )
            for unit in units
        ],
        unit=charts.SHARE,
        kind="line",
    )
    rows = sorted(by_dimension.rows, key=lambda r: (-r.utilisation_bps, r.label or ""))
    bars = charts.Chart(
        id="use-by",
        categories=[f"{r.dimension}:{r.unit}" for r in rows],
        series=[charts.Series(N_("Utilisation"), [r.utilisation_bps for r in rows], "s1")],
        unit=charts.SHARE,
        labels={f"{r.dimension}:{r.unit}": r.label or "" for r in rows},
    )
    return line, bars


@get("/money/revenue", include_in_schema=False)
async def revenue(
    request: AnyRequest,
    session: AsyncSession,
    from_: Annotated[date | None, Parameter(query="from")] = None,
    to: date | None = None,
    period: str | None = None,
    by: str | None = None,
) -> Template:
    tenant_id = principal(request).tenant_id
    business = await get_business(session, tenant_id)
    picker = pick(now().astimezone(business.tz).date(), from_, to, period, by)
    catalog = await get_catalog(session, tenant_id)
    tz = business.tz.key
    first, last = picker.first, picker.last
    over_time = await money_report(
        session, tenant_id, start=first, end=last, timezone=tz, period=picker.period
    )
    by_dimension = await money_report(
        session, tenant_id, start=first, end=last, timezone=tz, period=None, dimension=picker.by
    )
    names = {
        "service": catalog.service_names(),
        "resource": catalog.resource_names(),
        "branch": catalog.branch_names(),
    }[picker.by]
    labels = {str(k): v for k, v in names.items()}
    buckets: list[date | str] = list(period_starts(picker.first, picker.last, picker.period))
    days = list(period_starts(picker.first, picker.last, "day"))
    use_day = await occupancy_report(session, tenant_id, start=first, end=last, group_by="day")
    use_by = await occupancy_report(session, tenant_id, start=first, end=last, group_by=picker.by)
    line, bars = _occupancy_charts(use_day, use_by, days)
    reconciled = await reconciliation_summary(session, tenant_id, first, last)
    return page(
        request,
        "dashboard/money/revenue.html",
        business=business,
        picker=picker,
        over_time=_money_tables(over_time, buckets, "money-time", picker.period, labels),
        by_dimension=_money_tables(by_dimension, [], "money-by", picker.period, labels),
        labels=labels,
        use_line=line,
        use_bars=bars,
        use_rows=sorted(use_by.rows, key=lambda r: (-r.utilisation_bps, r.label or "")),
        use_totals=use_day.totals,
        reconciliation=reconciled,
        **charts.context(),
    )
