"""Revenue report, computed from ledger postings only.

Which postings feed each figure (amounts in the ledger's sign: debit > 0, credit < 0). Code
prefixes below match the code itself or the code followed by ":..." (e.g. `revenue` and
`revenue:service:<uuid>`). The codes are the chart's (app/ledger/chart.py), whose lines every
domain posts, so the report sees them:

- gross       = credits minus debits to `revenue` accounts in NON-refund entries. With no
                corrections this is exactly "credits to revenue:*"; a reversal of a revenue
                recognition therefore nets out of gross instead of counting as a refund.
- refunds     = debits minus credits to `revenue` and `deferred_revenue` accounts in refund
                entries: entries with reason 'refund', or reversing an entry with that reason
                (a reversed refund reduces refunds).
- fees        = debits minus credits to `expense:fees` accounts (provider fees).
- commissions = debits minus credits to `expense:commission` accounts.
- net         = gross - refunds - fees. (Commissions are reported, not subtracted.)

Rows are bucketed by the entry's `occurred_at` in the tenant's timezone (day, ISO week
starting Monday, month) and/or by the entry's `dimensions` key `branch_id`, `service_id` or
`resource_id`. Every row is per currency; amounts are never mixed across currencies.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Row, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import set_tenant
from app.errors import ValidationFailed
from app.ledger import chart
from app.money import format_minor

PERIODS = ("day", "week", "month")
DIMENSIONS = {"branch": "branch_id", "service": "service_id", "resource": "resource_id"}
REFUND_REASON = "refund"
MAX_DAYS = 3660


@dataclass(frozen=True, slots=True)
class RevenueRow:
    period: date | None
    dimension: str | None
    currency: str
    gross_minor: int
    refunds_minor: int
    fees_minor: int
    commissions_minor: int

    @property
    def net_minor(self) -> int:
        return self.gross_minor - self.refunds_minor - self.fees_minor


@dataclass(frozen=True, slots=True)
class RevenueReport:
    start: date
    end: date
    timezone: str
    group_by: tuple[str, ...]
    rows: list[RevenueRow]
    totals: list[RevenueRow]
    """One row per currency over the whole range (period and dimension None)."""


def _matches(prefix: str) -> str:
    return f"(a.code = '{prefix}' OR a.code LIKE '{prefix}:%')"


_LINES = f"""
    SELECT e.occurred_at, e.dimensions, p.currency, p.amount_minor,
           (e.reason = '{REFUND_REASON}' OR r.reason IS NOT DISTINCT FROM '{REFUND_REASON}')
               AS is_refund,
           {_matches(chart.REVENUE_ROOT)} AS is_revenue,
           {_matches(chart.DEFERRED)} AS is_deferred,
           {_matches(chart.FEES_ROOT)} AS is_fee,
           {_matches(chart.COMMISSION_EXPENSE)} AS is_commission
      FROM journal_entries e
      JOIN postings p ON p.tenant_id = e.tenant_id AND p.entry_id = e.id
      JOIN ledger_accounts a ON a.tenant_id = p.tenant_id AND a.id = p.account_id
      LEFT JOIN journal_entries r ON r.tenant_id = e.tenant_id AND r.id = e.reverses_entry_id
     WHERE e.tenant_id = :tenant_id
       AND e.occurred_at >= (CAST(:start AS date)::timestamp AT TIME ZONE :tz)
       AND e.occurred_at < (CAST(:end_excl AS date)::timestamp AT TIME ZONE :tz)
       AND ({_matches(chart.REVENUE_ROOT)} OR {_matches(chart.DEFERRED)}
            OR {_matches(chart.FEES_ROOT)} OR {_matches(chart.COMMISSION_EXPENSE)})
"""

_FIGURES = """
    coalesce(-sum(amount_minor) FILTER (WHERE is_revenue AND NOT is_refund), 0) AS gross,
    coalesce(sum(amount_minor) FILTER (WHERE (is_revenue OR is_deferred) AND is_refund), 0)
        AS refunds,
    coalesce(sum(amount_minor) FILTER (WHERE is_fee), 0) AS fees,
    coalesce(sum(amount_minor) FILTER (WHERE is_commission), 0) AS commissions
"""


def parse_group_by(value: str | Sequence[str]) -> tuple[str, ...]:
    """'day', 'branch' or 'month,service': at most one period and one dimension."""
    parts = [p.strip() for p in value.split(",")] if isinstance(value, str) else list(value)
    parts = [p for p in parts if p]
    periods = [p for p in parts if p in PERIODS]
    dimensions = [p for p in parts if p in DIMENSIONS]
    if (
        not parts
        or len(periods) > 1
        or len(dimensions) > 1
        or len(periods) + len(dimensions) != len(parts)
    ):
        raise ValidationFailed(
            "group_by takes one of day|week|month and/or one of branch|service|resource",
            errors=[{"field": "group_by", "message": "invalid grouping"}],
        )
    return tuple(periods + dimensions)


async def revenue_report(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    start: date,
    end: date,
    group_by: str | Sequence[str] = "day",
    timezone: str | None = None,
) -> RevenueReport:
    """Revenue figures for the local dates start..end inclusive (own read transaction)."""
    grouping = parse_group_by(group_by)
    if end < start or (end - start).days > MAX_DAYS:
        raise ValidationFailed(
            "to must be on or after from, within ten years",
            errors=[{"field": "to", "message": "invalid range"}],
        )
    period = next((g for g in grouping if g in PERIODS), None)
    dimension = next((DIMENSIONS[g] for g in grouping if g in DIMENSIONS), None)
    period_sql = (
        f"date_trunc('{period}', occurred_at AT TIME ZONE :tz)::date" if period else "NULL::date"
    )
    dimension_sql = f"dimensions->>'{dimension}'" if dimension else "NULL::text"
    async with session.begin():
        await set_tenant(session, tenant_id)
        tz = timezone or await _tenant_timezone(session, tenant_id)
        params = {
            "tenant_id": tenant_id,
            "start": start,
            "end_excl": end + timedelta(days=1),
            "tz": tz,
        }
        rows = await session.execute(
            text(
                f"SELECT {period_sql} AS period, {dimension_sql} AS dimension, currency, "
                f"{_FIGURES} "
                f"FROM ({_LINES}) lines GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
            ),
            params,
        )
        report_rows = [_row(r.period, r.dimension, r) for r in rows]
        totals = await session.execute(
            text(f"SELECT currency, {_FIGURES} FROM ({_LINES}) lines GROUP BY currency ORDER BY 1"),
            params,
        )
        total_rows = [_row(None, None, r) for r in totals]
    return RevenueReport(start, end, tz, grouping, report_rows, total_rows)


def _row(period: date | None, dimension: str | None, row: Row[Any]) -> RevenueRow:
    m = row._mapping
    return RevenueRow(
        period,
        dimension,
        str(m["currency"]).strip(),
        int(m["gross"]),
        int(m["refunds"]),
        int(m["fees"]),
        int(m["commissions"]),
    )


async def _tenant_timezone(session: AsyncSession, tenant_id: uuid.UUID) -> str:
    # Read by SQL, not through app.tenancy: the ledger imports no business domain.
    value = (
        await session.execute(
            text("SELECT timezone FROM tenants WHERE id = :id"), {"id": tenant_id}
        )
    ).scalar_one_or_none()
    return str(value) if value else "UTC"


CSV_COLUMNS = ["period", "dimension", "currency", "gross", "refunds", "fees", "commissions", "net"]


def revenue_csv(report: RevenueReport) -> str:
    """The report's rows as CSV, amounts in major units by currency exponent (KWD 1.234)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in report.rows:
        amounts = [
            row.gross_minor,
            row.refunds_minor,
            row.fees_minor,
            row.commissions_minor,
            row.net_minor,
        ]
        writer.writerow(
            [
                row.period.isoformat() if row.period else "",
                row.dimension or "",
                row.currency,
                *(format_minor(a, row.currency) for a in amounts),
            ]
        )
    return buffer.getvalue()
