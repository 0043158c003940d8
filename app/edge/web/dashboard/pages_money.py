"""The money pages (owners and admins, as the API's money routes): revenue from the ledger
with reconciliation, payouts, reconciliation runs and the trial balance."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated

from litestar import get
from litestar.params import Parameter
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncSession

from app.edge.http import principal
from app.edge.web.dashboard.queries import get_business, get_catalog
from app.edge.web.dashboard.rendering import page
from app.edge.web.rendering import AnyRequest, now
from app.ledger import accounts
from app.payouts import service as payouts
from app.reconciliation import service as reconciliation
from app.reports.service import revenue_report

MAX_REVENUE_DAYS = 92


@get("/money/revenue", include_in_schema=False)
async def revenue(
    request: AnyRequest,
    session: AsyncSession,
    from_: Annotated[date | None, Parameter(query="from")] = None,
    to: date | None = None,
) -> Template:
    tenant_id = principal(request).tenant_id
    business = await get_business(session, tenant_id)
    today = now().astimezone(business.tz).date()
    last = to or today
    first = from_ if from_ and from_ <= last else last - timedelta(days=29)
    first = max(first, last - timedelta(days=MAX_REVENUE_DAYS - 1))
    result = await revenue_report(session, tenant_id, start=first, end=last, group_by="day")
    return page(
        request,
        "dashboard/revenue.html",
        business=business,
        report=result.report,
        reconciliation=result.reconciliation,
        first=first,
        last=last,
    )


@get("/money/payouts", include_in_schema=False)
async def payouts_page(request: AnyRequest, session: AsyncSession) -> Template:
    tenant_id = principal(request).tenant_id
    business = await get_business(session, tenant_id)
    rows = await payouts.list_payouts(session, tenant_id, limit=200)
    catalog = await get_catalog(session, tenant_id)
    return page(
        request,
        "dashboard/payouts.html",
        business=business,
        rows=rows,
        resources=catalog.resource_names(),
    )


@get("/money/reconciliation", include_in_schema=False)
async def reconciliation_page(request: AnyRequest, session: AsyncSession) -> Template:
    tenant_id = principal(request).tenant_id
    business = await get_business(session, tenant_id)
    runs = await reconciliation.list_runs(session, tenant_id, limit=100)
    return page(request, "dashboard/reconciliation.html", business=business, runs=runs)


@get("/money/ledger", include_in_schema=False)
async def ledger(request: AnyRequest, session: AsyncSession) -> Template:
    tenant_id = principal(request).tenant_id
    business = await get_business(session, tenant_id)
    balance = await accounts.trial_balance(session, tenant_id)
    rows = await accounts.list_accounts(session, tenant_id)
    return page(request, "dashboard/ledger.html", business=business, balance=balance, accounts=rows)
