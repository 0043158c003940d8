"""Ledger endpoints: owners and admins only. The revenue report is served by app.reports."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from litestar import Request, Response, Router, get
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from app import paging
from app.edge.http import manager_only, principal
from app.ledger import accounts, queries
from app.ledger.schemas import (
    AccountOut,
    EntryOut,
    TrialBalanceOut,
)
from app.validation import field_error


def _aware(value: datetime, field: str) -> datetime:
    if value.tzinfo is None:
        raise field_error(field, "must be an RFC 3339 time with an offset")
    return value


@get("/ledger/accounts")
async def list_accounts(request: Request[Any, Any, Any], session: AsyncSession) -> list[AccountOut]:
    rows = await accounts.list_accounts(session, principal(request).tenant_id)
    return [AccountOut(r.code, r.name, r.type, r.currency, r.balance_minor) for r in rows]


@get("/ledger/balances")
async def balances_at(
    request: Request[Any, Any, Any], session: AsyncSession, at: datetime
) -> list[AccountOut]:
    rows = await accounts.balances_at(session, principal(request).tenant_id, _aware(at, "at"))
    return [AccountOut(r.code, r.name, r.type, r.currency, r.balance_minor) for r in rows]


@get("/ledger/trial-balance")
async def trial_balance(
    request: Request[Any, Any, Any], session: AsyncSession, at: datetime | None = None
) -> list[TrialBalanceOut]:
    when = _aware(at, "at") if at is not None else None
    rows = await accounts.trial_balance(session, principal(request).tenant_id, when)
    return [
        TrialBalanceOut(
            r.currency, r.debits_minor, r.credits_minor, r.debits_minor == r.credits_minor
        )
        for r in rows
    ]


@get("/ledger/entries")
async def list_entries(
    request: Request[Any, Any, Any],
    session: AsyncSession,
    start: Annotated[str, Parameter(query="from")],
    end: Annotated[str, Parameter(query="to")],
    limit: Annotated[int, Parameter(ge=1)] = paging.ARRAY_DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Response[list[EntryOut]]:
    """Journal entries that occurred in the period, oldest first, with their postings.
    `from`/`to`: dates (YYYY-MM-DD, the business's timezone, `to` included, as in the
    reports) or RFC 3339 instants (`to` excluded). A page holds `limit` entries (default and
    most 500); the next page's link is in the `Link` (rel="next") and `X-Next-Cursor`
    headers, absent on the last page."""
    page = await queries.list_entries(
        session,
        principal(request).tenant_id,
        start=paging.parse_bound(start, "from"),
        end=paging.parse_bound(end, "to"),
        cursor=cursor,
        limit=limit,
    )
    return Response(
        [EntryOut.of(entry) for entry in page.items],
        headers=paging.next_headers(request.url.path, request.url.query, page.next),
    )


def router() -> Router:
    return Router(
        path="/api/v1",
        guards=[manager_only],
        tags=["ledger"],
        route_handlers=[list_accounts, balances_at, trial_balance, list_entries],
    )
