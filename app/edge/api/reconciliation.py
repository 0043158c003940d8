"""Reconciliation endpoints: owners and admins only."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Annotated, Any

from litestar import Request, Response, Router, get, post
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from app import paging
from app.audit import trail as audit
from app.edge.deps import ApiDeps
from app.edge.http import idempotent, manager_only, principal
from app.gateways import reconciliation_run as run_day
from app.reconciliation import queries, service
from app.reconciliation.errors import ReconciliationProviderNotConfigured
from app.reconciliation.matching import Tolerances
from app.reconciliation.schemas import DiscrepancyOut, ResolveIn, RunIn, RunOut, SummaryOut
from app.reconciliation.summary import reconciliation_summary
from app.validation import field_error


@get("/reconciliation/runs")
async def list_runs(
    request: Request[Any, Any, Any],
    session: AsyncSession,
    provider: str | None = None,
    limit: Annotated[int, Parameter(ge=1)] = paging.ARRAY_DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Response[list[RunOut]]:
    """Runs, latest day first. A page holds `limit` runs (default and most 500); the next
    page's link is in the `Link` (rel="next") and `X-Next-Cursor` headers, absent on the
    last page."""
    page = await queries.list_runs(
        session, principal(request).tenant_id, provider=provider, cursor=cursor, limit=limit
    )
    return Response(
        [RunOut.of(run) for run in page.items],
        headers=paging.next_headers(request.url.path, request.url.query, page.next),
    )


@post("/reconciliation/runs")
async def create_run(
    request: Request[Any, Any, Any], data: RunIn, deps: ApiDeps
) -> Response[bytes]:
    caller = principal(request)
    sessions = deps.sessions
    limits = data.tolerances
    tolerances = Tolerances(limits.amount_minor, limits.fee_minor) if limits else Tolerances()

    async def run() -> tuple[int, Any]:
        try:
            stored = await run_day.reconcile_day(
                sessions,
                caller.tenant_id,
                data.provider,
                data.date,
                deps.providers,
                tolerances=tolerances,
            )
        except run_day.ProviderNotConfigured:
            # Missing keys are a setup to finish, not an outage: a 409 naming them, not a 503.
            raise ReconciliationProviderNotConfigured(data.provider) from None
        return 201, RunOut.of(stored.run)

    return await idempotent(request, caller.tenant_id, run)


@get("/reconciliation/discrepancies")
async def list_discrepancies(
    request: Request[Any, Any, Any],
    session: AsyncSession,
    status: str | None = "open",
    run_id: uuid.UUID | None = None,
    kind: str | None = None,
    limit: Annotated[int, Parameter(ge=1)] = paging.ARRAY_DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Response[list[DiscrepancyOut]]:
    """Findings, newest first (`status`: open by default, resolved, cleared or all). A page
    holds `limit` findings (default and most 500); the next page's link is in the `Link`
    (rel="next") and `X-Next-Cursor` headers, absent on the last page."""
    page = await queries.list_discrepancies(
        session,
        principal(request).tenant_id,
        status=None if status == "all" else status,
        run_id=run_id,
        kind=kind,
        cursor=cursor,
        limit=limit,
    )
    return Response(
        [DiscrepancyOut.of(d) for d in page.items],
        headers=paging.next_headers(request.url.path, request.url.query, page.next),
    )


@post("/reconciliation/discrepancies/{discrepancy_id:uuid}/resolve")
async def resolve(
    request: Request[Any, Any, Any],
    data: ResolveIn,
    session: AsyncSession,
    discrepancy_id: uuid.UUID,
) -> Response[bytes]:
    caller = principal(request)

    async def run() -> tuple[int, Any]:
        found = await service.resolve_discrepancy(
            session,
            caller.tenant_id,
            discrepancy_id,
            note=data.note,
            adjust=data.adjust,
            actor=audit.Actor.user(caller.user_id),
            now=datetime.now(UTC),
        )
        return 200, DiscrepancyOut.of(found)

    return await idempotent(request, caller.tenant_id, run)


@get("/reconciliation/summary")
async def summary(
    request: Request[Any, Any, Any],
    session: AsyncSession,
    start: Annotated[date, Parameter(query="from")],
    end: Annotated[date, Parameter(query="to")],
) -> list[SummaryOut]:
    if end < start or (end - start).days > 3660:
        raise field_error("to", "must be on or after from, within ten years")
    rows = await reconciliation_summary(session, principal(request).tenant_id, start, end)
    return [SummaryOut.of(row) for row in rows]


def router() -> Router:
    return Router(
        path="/api/v1",
        route_handlers=[list_runs, create_run, list_discrepancies, resolve, summary],
        guards=[manager_only],
        tags=["reconciliation"],
    )
