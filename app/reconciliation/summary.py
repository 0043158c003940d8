"""Reconciled vs not, per provider, for a date range: what the revenue report shows beside
its figures (callable by the reports code; reads only reconciliation tables)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import set_tenant


@dataclass(frozen=True, slots=True)
class ReconciliationSummary:
    provider: str
    days: int
    days_run: int
    days_reconciled: int
    """Completed runs with no open discrepancy."""
    days_failed: int
    matched: int
    open_discrepancies: int
    resolved_discrepancies: int

    @property
    def reconciled(self) -> bool:
        return self.days_run == self.days and self.days_reconciled == self.days


_SUMMARY = text(
    "SELECT r.provider, count(*) AS days_run,"
    " count(*) FILTER (WHERE r.status = 'completed' AND NOT EXISTS (SELECT 1 FROM"
    " reconciliation_discrepancies d WHERE d.tenant_id = r.tenant_id AND d.run_id = r.id"
    " AND d.status = 'open')) AS reconciled,"
    " count(*) FILTER (WHERE r.status = 'failed') AS failed,"
    " coalesce(sum(r.matched), 0) AS matched,"
    " (SELECT count(*) FROM reconciliation_discrepancies d JOIN reconciliation_runs x"
    " ON x.tenant_id = d.tenant_id AND x.id = d.run_id WHERE d.tenant_id = :tenant_id"
    " AND x.provider = r.provider AND x.run_date BETWEEN :start AND :end"
    " AND d.status = 'open') AS open,"
    " (SELECT count(*) FROM reconciliation_discrepancies d JOIN reconciliation_runs x"
    " ON x.tenant_id = d.tenant_id AND x.id = d.run_id WHERE d.tenant_id = :tenant_id"
    " AND x.provider = r.provider AND x.run_date BETWEEN :start AND :end"
    " AND d.status = 'resolved') AS resolved"
    " FROM reconciliation_runs r WHERE r.tenant_id = :tenant_id"
    " AND r.run_date BETWEEN :start AND :end GROUP BY r.provider ORDER BY r.provider"
)


async def reconciliation_summary(
    session: AsyncSession, tenant_id: uuid.UUID, start: date, end: date
) -> list[ReconciliationSummary]:
    """Per provider that has runs in start..end inclusive (own read transaction)."""
    days = (end - start).days + 1
    async with session.begin():
        await set_tenant(session, tenant_id)
        rows = await session.execute(_SUMMARY, {"tenant_id": tenant_id, "start": start, "end": end})
        return [
            ReconciliationSummary(
                row.provider,
                days,
                int(row.days_run),
                int(row.reconciled),
                int(row.failed),
                int(row.matched),
                int(row.open),
                int(row.resolved),
            )
            for row in rows
        ]
