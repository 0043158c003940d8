"""Paged reads of payouts for the payout endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import set_tenant
from app.paging import MAX_LIMIT, Key, Keyset, Page
from app.payouts.models import IN_TRANSIT, RAIL_MANUAL, Payout

# Newest first, as the list always was; the id breaks ties between payouts of one run.
PAYOUT_ORDER = Keyset(
    "payouts", Key(Payout.created_at, datetime, descending=True), Key(Payout.id, uuid.UUID)
)


async def list_payouts(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    status: str | None = None,
    cursor: str | None = None,
    limit: int = MAX_LIMIT,
) -> Page[Payout]:
    query = select(Payout).where(Payout.tenant_id == tenant_id)
    if status is not None:
        query = query.where(Payout.status == status)
    async with session.begin():
        await set_tenant(session, tenant_id)
        return await PAYOUT_ORDER.fetch(session, query, cursor, limit)


async def manual_payouts_in_transit(session: AsyncSession, tenant_id: uuid.UUID) -> list[Payout]:
    """Every manual-rail payout waiting to be paid, newest first, unpaged: the bank transfer
    sheet must be whole (at most one payout per staff member and period)."""
    query = select(Payout).where(
        Payout.tenant_id == tenant_id, Payout.status == IN_TRANSIT, Payout.rail == RAIL_MANUAL
    )
    async with session.begin():
        await set_tenant(session, tenant_id)
        return list((await session.scalars(query.order_by(*PAYOUT_ORDER.order_by()))).all())
