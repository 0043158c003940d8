"""Payouts from the dashboard (owners and admins): what staff are owed, the payouts (paged),
a payout run and marking a bank transfer paid — the same use cases as POST
/api/v1/payouts/run and /mark-paid — and the bank transfer sheet as CSV, the API's columns."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

from litestar import Response, get, post
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from app import errors
from app.audit import trail as audit
from app.edge.api.payouts import CSV_COLUMNS
from app.edge.http import principal
from app.edge.web.dashboard.queries import get_business, get_catalog
from app.edge.web.dashboard.rendering import page
from app.edge.web.rendering import AnyRequest, now
from app.money import currency_exponent, format_minor
from app.payouts import queries, service
from app.payouts.models import IN_TRANSIT, RAIL_MANUAL, Payout
from app.presentation.i18n import N_

PAGE_SIZE = 50
PROBLEMS = {
    "period": N_("The period must end after it starts."),
    "minimum": N_("Enter the smallest amount to pay, more than zero."),
    "state": N_("That payout is already paid or failed."),
}


async def _page(
    request: AnyRequest,
    session: AsyncSession,
    *,
    cursor: str | None,
    problem: str | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
) -> Template:
    tenant_id = principal(request).tenant_id
    business = await get_business(session, tenant_id)
    found = await queries.list_payouts(session, tenant_id, cursor=cursor, limit=PAGE_SIZE)
    payables = await service.list_payables(session, tenant_id)
    catalog = await get_catalog(session, tenant_id)
    start, end = service.default_period(now().astimezone(business.tz).date())
    defaults = {"period_start": start.isoformat(), "period_end": end.isoformat(), "minimum": "1"}
    return page(
        request,
        "dashboard/money/payouts.html",
        status=status,
        business=business,
        rows=found.items,
        next_url=f"?{urlencode({'cursor': found.next})}" if found.next else None,
        payables=[p for p in payables if p.owed_minor > 0],
        resources=catalog.resource_names(),
        values=values or defaults,
        problem=problem,
        ran=request.query_params.get("ran"),
        manual=RAIL_MANUAL,
        in_transit=IN_TRANSIT,
    )


@get("/money/payouts", include_in_schema=False)
async def payouts_page(
    request: AnyRequest, session: AsyncSession, cursor: str | None = None
) -> Template:
    return await _page(request, session, cursor=cursor)


def _date(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _minimum(text: str, currency: str) -> int | None:
    """The form's minimum in major units ("1", "12.50") as minor units."""
    try:
        value = Decimal(text).scaleb(currency_exponent(currency))
    except InvalidOperation:
        return None
    if not value.is_finite() or value != value.to_integral_value() or value < 1:
        return None
    return int(value)


@post("/money/payouts/run", include_in_schema=False)
async def run(request: AnyRequest, session: AsyncSession) -> Response[Any]:
    user = principal(request)
    business = await get_business(session, user.tenant_id)
    form = await request.form()
    values = {
        k: str(form.get(k) or "").strip()[:32] for k in ("period_start", "period_end", "minimum")
    }
    start, end = _date(values["period_start"]), _date(values["period_end"])
    minimum = _minimum(values["minimum"], business.currency)
    problem = None
    if start is None or end is None or end <= start:
        problem = PROBLEMS["period"]
    elif minimum is None:
        problem = PROBLEMS["minimum"]
    if problem or start is None or end is None or minimum is None:
        return await _page(
            request, session, cursor=None, problem=problem, values=values, status=422
        )
    result = await service.run_payouts(
        session,
        user.tenant_id,
        period_start=start,
        period_end=end,
        minimum_minor=minimum,
        now=now(),
        actor=audit.Actor.user(user.user_id),
    )
    return Redirect(f"/dashboard/money/payouts?ran={len(result.created)}", status_code=303)


@post("/money/payouts/{payout_id:uuid}/mark-paid", include_in_schema=False)
async def mark_paid(
    request: AnyRequest, session: AsyncSession, payout_id: uuid.UUID
) -> Response[Any]:
    user = principal(request)
    form = await request.form()
    reference = str(form.get("reference") or "").strip()[:200] or None
    try:
        await service.mark_payout_paid(
            session,
            user.tenant_id,
            payout_id,
            provider_ref=reference,
            now=now(),
            actor=audit.Actor.user(user.user_id),
        )
    except errors.InvalidState:
        return await _page(request, session, cursor=None, problem=PROBLEMS["state"], status=409)
    return Redirect("/dashboard/money/payouts", status_code=303)


def payouts_csv(payouts: list[Payout]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for p in payouts:
        currency = p.currency.strip()
        writer.writerow(
            [
                p.id,
                p.resource_id,
                format_minor(p.amount_minor, currency),
                currency,
                p.period_start,
                p.period_end,
                p.created_at.isoformat(),
            ]
        )
    return buffer.getvalue()


@get("/money/payouts/export.csv", include_in_schema=False)
async def export_csv(request: AnyRequest, session: AsyncSession) -> Response[str]:
    """Every manual-rail payout waiting to be paid, whole: the bank transfer sheet."""
    payouts = await queries.manual_payouts_in_transit(session, principal(request).tenant_id)
    return Response(
        payouts_csv(payouts),
        media_type="text/csv",
        headers={
            "Content-Disposition": 'attachment; filename="payouts.csv"',
            "Cache-Control": "no-store",
        },
    )
