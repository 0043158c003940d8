"""Money collected and revenue earned, side by side, from ledger postings only.

Two views of the same bookings that an owner reads together (amounts in the ledger's sign:
debit > 0, credit < 0; account codes are the chart's, app/ledger/chart.py):

- captured  = credits to `receivable:customer` in capture entries (reason 'payment': what
              customers paid, online or in cash), less debits in entries reversing one.
- refunded  = credits to `clearing:*` in refund entries (reason 'refund', or reversing one:
              a reversed refund reduces it).
- collected = captured - refunded: money in hand, on the day it moved (cash basis).
- earned    = credits minus debits to `revenue:*` in every entry: revenue recognised when a
              service is completed (or kept on a cancellation or no-show), less refunds made
              after completion. A booking paid today for next week is collected today and
              earned next week.
- fees      = debits minus credits to `expense:fees:*`; commissions to `expense:commission`.

Rows are bucketed by the entry's `occurred_at` in the business's timezone (day, ISO week from
Monday, month) and/or by a booking dimension (`branch_id`, `service_id`, `resource_id`). A
capture carries no dimensions of its own, so it takes those of the earliest entry of the same
booking that has them (the checkout's). Every row is per currency.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Row, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import set_tenant
from app.ledger import chart
from app.ledger.reports import DIMENSIONS, PERIODS, REFUND_REASON
from app.validation import field_error

CAPTURE_REASON = "payment"
MAX_DAYS = 3660


@dataclass(frozen=True, slots=True)
class MoneyRow:
    period: date | None
    dimension: str | None
    currency: str
    captured_minor: int
    refunded_minor: int
    earned_minor: int
    fees_minor: int
    commissions_minor: int

    @property
    def collected_minor(self) -> int:
        return self.captured_minor - self.refunded_minor


@dataclass(frozen=True, slots=True)
class MoneyReport:
    start: date
    end: date
    period: str | None
    dimension: str | None
    rows: list[MoneyRow]
    totals: list[MoneyRow]
    """One row per currency over the whole range (period and dimension None)."""

    def currencies(self) -> list[str]:
        return [t.currency for t in self.totals]


def _is(prefix: str) -> str:
    return f"(a.code = '{prefix}' OR a.code LIKE '{prefix}:%')"


_LINES = f"""
    SELECT {{period}} AS period, {{dimension}} AS dimension, p.currency, p.amount_minor,
           (e.reason = '{CAPTURE_REASON}' OR r.reason IS NOT DISTINCT FROM '{CAPTURE_REASON}')
               AS is_capture,
           (e.reason = '{REFUND_REASON}' OR r.reason IS NOT DISTINCT FROM '{REFUND_REASON}')
               AS is_refund,
           a.code = '{chart.RECEIVABLE}' AS is_receivable,
           {_is(chart.CLEARING_ROOT)} AS is_clearing,
           {_is(chart.REVENUE_ROOT)} AS is_revenue,
           {_is(chart.FEES_ROOT)} AS is_fee,
           {_is(chart.COMMISSION_EXPENSE)} AS is_commission
      FROM journal_entries e
      JOIN postings p ON p.tenant_id = e.tenant_id AND p.entry_id = e.id
      JOIN ledger_accounts a ON a.tenant_id = p.tenant_id AND a.id = p.account_id
      LEFT JOIN journal_entries r ON r.tenant_id = e.tenant_id AND r.id = e.reverses_entry_id
     WHERE e.tenant_id = :tenant_id
       AND e.occurred_at >= (CAST(:start AS date)::timestamp AT TIME ZONE :tz)
       AND e.occurred_at < (CAST(:end_excl AS date)::timestamp AT TIME ZONE :tz)
       AND (a.code = '{chart.RECEIVABLE}' OR {_is(chart.CLEARING_ROOT)}
            OR {_is(chart.REVENUE_ROOT)} OR {_is(chart.FEES_ROOT)}
            OR {_is(chart.COMMISSION_EXPENSE)})
"""

# The booking's dimension when the entry has none (a capture): its checkout entry's.
_DIMENSION = """coalesce(e.dimensions->>:dim, (
        SELECT b.dimensions->>:dim FROM journal_entries b
         WHERE b.tenant_id = e.tenant_id AND b.booking_id = e.booking_id
           AND b.dimensions->>:dim IS NOT NULL
         ORDER BY b.occurred_at, b.created_at LIMIT 1))"""

_FIGURES = """
    coalesce(-sum(amount_minor) FILTER (WHERE is_receivable AND is_capture), 0) AS captured,
    coalesce(-sum(amount_minor) FILTER (WHERE is_clearing AND is_refund), 0) AS refunded,
    coalesce(-sum(amount_minor) FILTER (WHERE is_revenue), 0) AS earned,
    coalesce(sum(amount_minor) FILTER (WHERE is_fee), 0) AS fees,
    coalesce(sum(amount_minor) FILTER (WHERE is_commission), 0) AS commissions
"""


async def money_report(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    start: date,
    end: date,
    timezone: str,
    period: str | None = "day",
    dimension: str | None = None,
) -> MoneyReport:
    """Collected and earned for local dates start..end inclusive (own read transaction)."""
    if period is not None and period not in PERIODS:
        raise field_error("period", "must be one of day, week, month")
    if dimension is not None and dimension not in DIMENSIONS:
        raise field_error("by", "must be one of branch, service, resource")
    if end < start or (end - start).days > MAX_DAYS:
        raise field_error("to", "must be on or after from, within ten years")
    period_sql = (
        f"date_trunc('{period}', e.occurred_at AT TIME ZONE :tz)::date" if period else "NULL::date"
    )
    lines = _LINES.format(period=period_sql, dimension=_DIMENSION if dimension else "NULL::text")
    params: dict[str, Any] = {
        "tenant_id": tenant_id,
        "start": start,
        "end_excl": end + timedelta(days=1),
        "tz": timezone,
        "dim": DIMENSIONS[dimension] if dimension else None,
    }
    # One pass: the buckets and, as a second grouping set, the totals per currency.
    query = (
        f"SELECT period, dimension, currency, {_FIGURES}, "
        "GROUPING(period, dimension) = 3 AS is_total "
        f"FROM ({lines}) lines "
        "GROUP BY GROUPING SETS ((period, dimension, currency), (currency)) "
        "ORDER BY is_total, period, dimension, currency"
    )
    async with session.begin():
        await set_tenant(session, tenant_id)
        result = list(await session.execute(text(query), params))
    found = [_row(r) for r in result if not r.is_total]
    total_rows = [_row(r) for r in result if r.is_total]
    return MoneyReport(start, end, period, dimension, found, total_rows)


def _row(row: Row[Any]) -> MoneyRow:
    m = row._mapping
    return MoneyRow(
        m["period"],
        m["dimension"],
        str(m["currency"]).strip(),
        int(m["captured"]),
        int(m["refunded"]),
        int(m["earned"]),
        int(m["fees"]),
        int(m["commissions"]),
    )


def period_starts(first: date, last: date, period: str) -> Iterator[date]:
    """The start of every day, ISO week (Monday) or month that touches first..last, as
    `date_trunc` names them: the buckets a chart shows, empty ones included."""
    if period == "week":
        cursor = first - timedelta(days=first.weekday())
    elif period == "month":
        cursor = first.replace(day=1)
    else:
        cursor = first
    while cursor <= last:
        yield cursor
        if period == "week":
            cursor += timedelta(days=7)
        elif period == "month":
            cursor = (cursor.replace(day=28) + timedelta(days=4)).replace(day=1)
        else:
            cursor += timedelta(days=1)
