"""The calendar: day and week by resource (blocks on a 15-minute grid, coloured and labelled
by status), and the month with each day's bookings and, for owners and admins, occupancy."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal

from litestar import get
from litestar.params import Parameter
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncSession

from app.edge.http import principal
from app.edge.web.dashboard import grid
from app.edge.web.dashboard.calendar_html import ColumnHtml
from app.edge.web.dashboard.labels import STATUS_LABELS
from app.edge.web.dashboard.queries import (
    bookings_between,
    calendar_bookings,
    get_business,
    get_catalog,
)
from app.edge.web.dashboard.rendering import is_manager, page
from app.edge.web.rendering import AnyRequest, now, page_lang
from app.presentation.formatting import Formatter
from app.presentation.i18n import translator
from app.reports.service import occupancy_report

View = Literal["day", "week", "month"]


def calendar_url(view: str, day: date, resource: uuid.UUID | None = None) -> str:
    url = f"/dashboard/calendar?view={view}&date={day.isoformat()}"
    return url + (f"&resource={resource}" if resource else "")


def _shift(view: str, day: date, steps: int) -> date:
    if view == "day":
        return day + timedelta(days=steps)
    if view == "week":
        return day + timedelta(days=7 * steps)
    month = day.month - 1 + steps
    return date(day.year + month // 12, month % 12 + 1, 1)


@get("/calendar", include_in_schema=False)
async def calendar(
    request: AnyRequest,
    session: AsyncSession,
    view: View = "week",
    date_: Annotated[date | None, Parameter(query="date")] = None,
    resource: uuid.UUID | None = None,
) -> Template:
    tenant_id = principal(request).tenant_id
    business = await get_business(session, tenant_id)
    today = now().astimezone(business.tz).date()
    day = date_ or today
    common: dict[str, Any] = {
        "view": view,
        "day": day,
        "today": today,
        "tz": business.tz,
        "resource": resource,
        "labels": STATUS_LABELS,
        "url": calendar_url,
        "prev_url": calendar_url(view, _shift(view, day, -1), resource),
        "next_url": calendar_url(view, _shift(view, day, 1), resource),
        "today_url": calendar_url(view, today, resource),
    }
    if view == "month":
        return await _month(request, session, business, day, common)
    days = [day] if view == "day" else grid.week_of(day)
    catalog = await get_catalog(session, tenant_id)
    lanes = [
        grid.Lane(r.id, r.name) for r in catalog.resources if resource is None or r.id == resource
    ]
    bookings = await calendar_bookings(session, tenant_id, days[0], days[-1], business.tz)
    layout = grid.build_grid(days, lanes, bookings, business.tz, now())
    words = translator(page_lang(request))
    services = catalog.service_names()
    column_html = ColumnHtml(
        words.gettext, Formatter(words.locale), business.tz, STATUS_LABELS, services
    )
    return page(
        request,
        "dashboard/calendar.html",
        business=business,
        grid=layout,
        catalog=catalog,
        services=services,
        column_html=column_html,
        **common,
    )


async def _month(
    request: AnyRequest, session: AsyncSession, business: Any, day: date, common: dict[str, Any]
) -> Template:
    first = day.replace(day=1)
    last = _shift("month", first, 1) - timedelta(days=1)
    bookings = await bookings_between(session, business.id, first, last, lookback=timedelta(0))
    counts: dict[date, int] = {}
    for booking in bookings:
        if booking.status in grid.SHOWN:
            local = booking.start.astimezone(business.tz).date()
            counts[local] = counts.get(local, 0) + 1
    # Occupancy is a report: owners and admins only, as GET /api/v1/reports/occupancy.
    occupancy: dict[date, int] = {}
    if is_manager(request):
        report = await occupancy_report(session, business.id, start=first, end=last, group_by="day")
        for row in report.rows:
            when = _row_day(row.period)
            if when is not None and row.utilisation_bps is not None:
                occupancy[when] = max(occupancy.get(when, 0), row.utilisation_bps)
    return page(
        request,
        "dashboard/month.html",
        business=business,
        weeks=grid.month_weeks(first.year, first.month),
        counts=counts,
        occupancy=occupancy,
        heat=heat_level,
        **common,
    )


def _row_day(period: date | None) -> date | None:
    return period


def heat_level(bps: int | None) -> int:
    """0..4 for the heatmap's five shades (each with its percentage written in the cell)."""
    if not bps:
        return 0
    return min(4, 1 + bps // 2500)


def local_input(moment: datetime, tz: Any) -> str:
    return moment.astimezone(tz).strftime("%Y-%m-%dT%H:%M")
