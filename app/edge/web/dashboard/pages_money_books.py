"""The books from the dashboard (owners and admins), each page through the use case its JSON
route calls: ledger accounts, trial balance and entries (paged); reconciliation runs and
discrepancies with resolve; dead outbox rows with retry; invoices and credit notes."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Response, get, post
from litestar.params import Parameter
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from app import errors
from app.audit import trail as audit
from app.edge.http import principal
from app.edge.web.dashboard.queries import Business, get_business
from app.edge.web.dashboard.rendering import page
from app.edge.web.rendering import AnyRequest, now
from app.invoices import queries as invoices
from app.ledger import accounts
from app.ledger import queries as ledger
from app.outbox import service as outbox
from app.presentation.i18n import N_
from app.reconciliation import queries as reconciliation
from app.reconciliation import service as reconciliation_service
from app.reconciliation.service import KINDS_FILTER

PAGE_SIZE = 50
DEFAULT_DAYS = 30
MAX_DAYS = 366


def _next(request: AnyRequest, cursor: str | None) -> str | None:
    if cursor is None:
        return None
    query = {k: v for k, v in request.query_params.items() if k != "cursor"}
    return "?" + urlencode({**query, "cursor": cursor})


def _range(business: Business, first: date | None, last: date | None) -> tuple[date, date]:
    last = last or now().astimezone(business.tz).date()
    first = first if first and first <= last else last - timedelta(days=DEFAULT_DAYS - 1)
    return max(first, last - timedelta(days=MAX_DAYS - 1)), last


# -- ledger ------------------------------------------------------------------------------


@get("/money/ledger", include_in_schema=False)
async def ledger_page(
    request: AnyRequest,
    session: AsyncSession,
    from_: Annotated[date | None, Parameter(query="from")] = None,
    to: date | None = None,
    cursor: str | None = None,
) -> Template:
    tenant_id = principal(request).tenant_id
    business = await get_business(session, tenant_id)
    first, last = _range(business, from_, to)
    balance = await accounts.trial_balance(session, tenant_id)
    rows = await accounts.list_accounts(session, tenant_id)
    entries = await ledger.list_entries(
        session, tenant_id, start=first, end=last, cursor=cursor, limit=PAGE_SIZE
    )
    return page(
        request,
        "dashboard/money/ledger.html",
        business=business,
        balance=balance,
        accounts=rows,
        entries=entries.items,
        first=first,
        last=last,
        next_url=_next(request, entries.next),
    )


# -- reconciliation --------------------------------------------------------------------


async def _reconciliation(
    request: AnyRequest,
    session: AsyncSession,
    *,
    status: str,
    cursor: str | None,
    problem: str | None = None,
    code: int = 200,
) -> Template:
    tenant_id = principal(request).tenant_id
    business = await get_business(session, tenant_id)
    runs = await reconciliation.list_runs(session, tenant_id, limit=PAGE_SIZE)
    found = await reconciliation.list_discrepancies(
        session,
        tenant_id,
        status=None if status == "all" else status,
        cursor=cursor,
        limit=PAGE_SIZE,
    )
    return page(
        request,
        "dashboard/money/reconciliation.html",
        status=code,
        business=business,
        runs=runs.items,
        discrepancies=found.items,
        shown=status,
        statuses=(*KINDS_FILTER, "all"),
        next_url=_next(request, found.next),
        problem=problem,
        resolved=request.query_params.get("resolved"),
    )


@get("/money/reconciliation", include_in_schema=False)
async def reconciliation_page(
    request: AnyRequest, session: AsyncSession, status: str = "open", cursor: str | None = None
) -> Template:
    shown = status if status in (*KINDS_FILTER, "all") else "open"
    return await _reconciliation(request, session, status=shown, cursor=cursor)


@post("/money/reconciliation/{discrepancy_id:uuid}/resolve", include_in_schema=False)
async def resolve(
    request: AnyRequest, session: AsyncSession, discrepancy_id: uuid.UUID
) -> Response[Any]:
    user = principal(request)
    form = await request.form()
    note = str(form.get("note") or "").strip()[:2000]
    if not note:
        return await _reconciliation(
            request,
            session,
            status="open",
            cursor=None,
            problem=N_("Write a note saying why the discrepancy is resolved."),
            code=422,
        )
    try:
        await reconciliation_service.resolve_discrepancy(
            session,
            user.tenant_id,
            discrepancy_id,
            note=note,
            adjust=form.get("adjust") == "1",
            actor=audit.Actor.user(user.user_id),
            now=now(),
        )
    except (errors.InvalidState, errors.Conflict):
        return await _reconciliation(
            request,
            session,
            status="open",
            cursor=None,
            problem=N_("This discrepancy is closed or has nothing to adjust."),
            code=409,
        )
    return Redirect("/dashboard/money/reconciliation?resolved=1", status_code=303)


# -- outbox ------------------------------------------------------------------------------


async def _outbox(
    request: AnyRequest, session: AsyncSession, problem: str | None = None, code: int = 200
) -> Template:
    tenant_id = principal(request).tenant_id
    business = await get_business(session, tenant_id)
    dead = await outbox.list_entries(session, tenant_id, "dead", limit=200)
    return page(
        request,
        "dashboard/money/outbox.html",
        status=code,
        business=business,
        rows=dead,
        problem=problem,
        retried=request.query_params.get("retried"),
    )


@get("/money/outbox", include_in_schema=False)
async def outbox_page(request: AnyRequest, session: AsyncSession) -> Template:
    return await _outbox(request, session)


@post("/money/outbox/{entry_id:uuid}/retry", include_in_schema=False)
async def retry(request: AnyRequest, session: AsyncSession, entry_id: uuid.UUID) -> Response[Any]:
    tenant_id = principal(request).tenant_id
    try:
        await outbox.retry_entry(session, tenant_id, entry_id, now())
    except errors.DomainError:
        problem = N_("That message was delivered or is gone; nothing to retry.")
        return await _outbox(request, session, problem, 409)
    return Redirect("/dashboard/money/outbox?retried=1", status_code=303)


# -- invoices ----------------------------------------------------------------------------


@get("/money/invoices", include_in_schema=False)
async def invoices_page(
    request: AnyRequest,
    session: AsyncSession,
    from_: Annotated[date | None, Parameter(query="from")] = None,
    to: date | None = None,
    kind: str | None = None,
    cursor: str | None = None,
) -> Template:
    tenant_id = principal(request).tenant_id
    business = await get_business(session, tenant_id)
    first, last = _range(business, from_, to)
    shown = kind if kind in ("invoice", "credit_note") else None
    found = await invoices.list_invoices(
        session, tenant_id, start=first, end=last, kind=shown, cursor=cursor, limit=PAGE_SIZE
    )
    return page(
        request,
        "dashboard/money/invoices.html",
        business=business,
        rows=found.items,
        first=first,
        last=last,
        kind=shown or "",
        next_url=_next(request, found.next),
    )


@get("/money/invoices/{invoice_id:uuid}", include_in_schema=False)
async def invoice_page(
    request: AnyRequest, session: AsyncSession, invoice_id: uuid.UUID
) -> Template:
    tenant_id = principal(request).tenant_id
    business = await get_business(session, tenant_id)
    view = await invoices.get_invoice(session, tenant_id, invoice_id)
    return page(request, "dashboard/money/invoice.html", business=business, invoice=view)
