"""Paged reads of journal entries for the ledger endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.db import set_tenant
from app.ledger.models import JournalEntry
from app.ledger.service import Entry, _load_entries  # the ledger's one entry loader
from app.paging import MAX_LIMIT, Bound, Key, Keyset, Page, business_zone, page_size, period

ENTRY_ORDER = Keyset(
    "ledger_entries",
    Key(JournalEntry.occurred_at, datetime),
    Key(JournalEntry.created_at, datetime),
    Key(JournalEntry.id, uuid.UUID),
)


async def list_entries(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    start: Bound,
    end: Bound,
    cursor: str | None = None,
    limit: int = MAX_LIMIT,
) -> Page[Entry]:
    """One page of the entries that occurred in the period (dates in the business's
    timezone, `end` included), oldest first, with their postings."""
    after = ENTRY_ORDER.after(cursor)
    size = page_size(limit)
    async with session.begin():
        await set_tenant(session, tenant_id)
        since, until = period(start, end, await business_zone(session, tenant_id))
        condition = (JournalEntry.occurred_at >= since) & (JournalEntry.occurred_at < until)
        if after is not None:
            condition = condition & after
        # _load_entries orders by (occurred_at, created_at, id): ENTRY_ORDER's columns.
        entries = await _load_entries(session, tenant_id, condition, limit=size + 1)
        return ENTRY_ORDER.page(entries, size)
