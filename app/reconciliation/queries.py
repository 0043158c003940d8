"""Paged reads of reconciliation runs and discrepancies for the reconciliation endpoints."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import set_tenant
from app.paging import MAX_LIMIT, Key, Keyset, Page
from app.reconciliation.models import Discrepancy, ReconciliationRun
from app.reconciliation.service import KINDS_FILTER, check_provider
from app.validation import field_error

# The orders the lists always had (latest day first; newest finding first), each ending in
# the id so that every row has one place.
RUN_ORDER = Keyset(
    "reconciliation_runs",
    Key(ReconciliationRun.run_date, date, descending=True),
    Key(ReconciliationRun.provider, str),
    Key(ReconciliationRun.id, uuid.UUID),
)
DISCREPANCY_ORDER = Keyset(
    "reconciliation_discrepancies",
    Key(Discrepancy.created_at, datetime, descending=True),
    Key(Discrepancy.id, uuid.UUID),
)


async def list_runs(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    provider: str | None = None,
    cursor: str | None = None,
    limit: int = MAX_LIMIT,
) -> Page[ReconciliationRun]:
    query = select(ReconciliationRun).where(ReconciliationRun.tenant_id == tenant_id)
    if provider is not None:
        query = query.where(ReconciliationRun.provider == check_provider(provider))
    async with session.begin():
        await set_tenant(session, tenant_id)
        return await RUN_ORDER.fetch(session, query, cursor, limit)


async def list_discrepancies(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    status: str | None = "open",
    run_id: uuid.UUID | None = None,
    kind: str | None = None,
    cursor: str | None = None,
    limit: int = MAX_LIMIT,
) -> Page[Discrepancy]:
    if status is not None and status not in KINDS_FILTER:
        raise field_error("status", f"must be one of {', '.join(KINDS_FILTER)}")
    query = select(Discrepancy).where(Discrepancy.tenant_id == tenant_id)
    if status is not None:
        query = query.where(Discrepancy.status == status)
    if run_id is not None:
        query = query.where(Discrepancy.run_id == run_id)
    if kind is not None:
        query = query.where(Discrepancy.kind == kind)
    async with session.begin():
        await set_tenant(session, tenant_id)
        return await DISCREPANCY_ORDER.fetch(session, query, cursor, limit)
