"""Ledger endpoints: owners and admins only. The revenue report is served by app.reports."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from litestar import Request, Router, get
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from app.http import manager_only, principal
from app.ledger import accounts, service
from app.ledger.schemas import (
    AccountOut,
    EntryOut,
    PostingOut,
    TrialBalanceOut,
)
from app.validation import field_error

From = Annotated[datetime, Parameter(query="from")]
To = Annotated[datetime, Parameter(query="to")]


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
    start: From,
    end: To,
    limit: Annotated[int, Parameter(ge=1, le=1000)] = 500,
) -> list[EntryOut]:
    entries = await service.list_entries(
        session,
        principal(request).tenant_id,
        start=_aware(start, "from"),
        end=_aware(end, "to"),
        limit=limit,
    )
    return [
        EntryOut(
            id=e.id,
            idempotency_key=e.idempotency_key,
            reason=e.reason,
            occurred_at=e.occurred_at,
            created_at=e.created_at,
            booking_id=e.booking_id,
            payment_id=e.payment_id,
            reverses_entry_id=e.reverses_entry_id,
            dimensions=e.dimensions,
            postings=[
                PostingOut(p.account_code, p.account_type, p.amount.amount_minor, p.amount.currency)
                for p in e.postings
            ],
        )
        for e in entries
    ]


def router() -> Router:
    return Router(
        path="/api/v1",
        guards=[manager_only],
        tags=["ledger"],
        route_handlers=[list_accounts, balances_at, trial_balance, list_entries],
    )
