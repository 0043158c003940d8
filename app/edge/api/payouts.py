"""Payout endpoints: owners and admins only."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from litestar import Request, Response, Router, get, post, put
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from app import paging
from app.audit import trail as audit
from app.edge.http import idempotent, manager_only, principal
from app.money import format_minor
from app.payouts import queries, service
from app.payouts.models import Payout
from app.payouts.schemas import (
    FailIn,
    MarkPaidIn,
    MoneyOut,
    PayableOut,
    PayoutAccountIn,
    PayoutAccountOut,
    PayoutOut,
    PayoutRunIn,
    PayoutRunOut,
)


@get("/payouts")
async def list_payouts(
    request: Request[Any, Any, Any],
    session: AsyncSession,
    status: str | None = None,
    limit: Annotated[int, Parameter(ge=1)] = paging.ARRAY_DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Response[list[PayoutOut]]:
    """Payouts, newest first. A page holds `limit` payouts (default and most 500); the next
    page's link is in the `Link` (rel="next") and `X-Next-Cursor` headers, absent on the
    last page."""
    page = await queries.list_payouts(
        session, principal(request).tenant_id, status=status, cursor=cursor, limit=limit
    )
    return Response(
        [PayoutOut.of(p) for p in page.items],
        headers=paging.next_headers(request.url.path, request.url.query, page.next),
    )


@get("/payouts/payables")
async def list_payables(request: Request[Any, Any, Any], session: AsyncSession) -> list[PayableOut]:
    payables = await service.list_payables(session, principal(request).tenant_id)
    return [PayableOut(p.resource_id, MoneyOut(p.owed_minor, p.currency)) for p in payables]


@post("/payouts/run")
async def run_payouts(
    request: Request[Any, Any, Any], data: PayoutRunIn, session: AsyncSession
) -> Response[bytes]:
    caller = principal(request)
    now = datetime.now(UTC)
    start, end = service.default_period(now.date())

    async def run() -> tuple[int, Any]:
        result = await service.run_payouts(
            session,
            caller.tenant_id,
            period_start=data.period_start or start,
            period_end=data.period_end or end,
            minimum_minor=data.minimum_minor or service.DEFAULT_MINIMUM_MINOR,
            now=now,
            actor=audit.Actor.user(caller.user_id),
        )
        return 201, PayoutRunOut(
            result.period_start,
            result.period_end,
            [PayoutOut.of(p) for p in result.created],
            [PayableOut(p.resource_id, MoneyOut(p.owed_minor, p.currency)) for p in result.skipped],
        )

    return await idempotent(request, caller.tenant_id, run)


@post("/payouts/{payout_id:uuid}/mark-paid")
async def mark_paid(
    request: Request[Any, Any, Any], data: MarkPaidIn, session: AsyncSession, payout_id: uuid.UUID
) -> Response[bytes]:
    caller = principal(request)

    async def run() -> tuple[int, Any]:
        payout = await service.mark_payout_paid(
            session,
            caller.tenant_id,
            payout_id,
            provider_ref=data.reference,
            now=datetime.now(UTC),
            actor=audit.Actor.user(caller.user_id),
        )
        return 200, PayoutOut.of(payout)

    return await idempotent(request, caller.tenant_id, run)


@post("/payouts/{payout_id:uuid}/fail")
async def fail(
    request: Request[Any, Any, Any], data: FailIn, session: AsyncSession, payout_id: uuid.UUID
) -> Response[bytes]:
    caller = principal(request)

    async def run() -> tuple[int, Any]:
        payout = await service.fail_payout(
            session,
            caller.tenant_id,
            payout_id,
            reason=data.reason,
            now=datetime.now(UTC),
            actor=audit.Actor.user(caller.user_id),
        )
        return 200, PayoutOut.of(payout)

    return await idempotent(request, caller.tenant_id, run)


@put("/payouts/accounts/{resource_id:uuid}")
async def set_account(
    request: Request[Any, Any, Any],
    data: PayoutAccountIn,
    session: AsyncSession,
    resource_id: uuid.UUID,
) -> PayoutAccountOut:
    caller = principal(request)
    account = await service.set_payout_account(
        session,
        caller.tenant_id,
        resource_id,
        rail=data.rail,
        connected_account_id=data.connected_account_id,
        now=datetime.now(UTC),
        actor=audit.Actor.user(caller.user_id),
    )
    return PayoutAccountOut(account.resource_id, account.rail, account.connected_account_id)


CSV_COLUMNS = [
    "payout_id",
    "resource_id",
    "amount",
    "currency",
    "period_start",
    "period_end",
    "created_at",
]


@get("/payouts/export.csv")
async def export_csv(request: Request[Any, Any, Any], session: AsyncSession) -> Response[str]:
    """Every manual-rail payout waiting to be paid, for the bank transfer sheet: all of
    them, unpaged (a sheet cut short would leave staff unpaid)."""
    payouts = await queries.manual_payouts_in_transit(session, principal(request).tenant_id)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(_csv_row(p) for p in payouts)
    return Response(
        buffer.getvalue(),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="payouts.csv"'},
    )


def _csv_row(p: Payout) -> list[object]:
    currency = p.currency.strip()
    return [
        p.id,
        p.resource_id,
        format_minor(p.amount_minor, currency),
        currency,
        p.period_start,
        p.period_end,
        p.created_at.isoformat(),
    ]


def router() -> Router:
    return Router(
        path="/api/v1",
        route_handlers=[
            list_payouts,
            list_payables,
            run_payouts,
            mark_paid,
            fail,
            set_account,
            export_csv,
        ],
        guards=[manager_only],
        tags=["payouts"],
    )
