"""The ledger's side of a reconciliation: LedgerRecords for one provider and window.

What the ledger says moved through `clearing:<provider>`, keyed like the provider keys it:
- captures (`payment:<id>:captured`) and their fees (`payment:<id>:fee`), keyed by the
  Stripe charge id (falling back to the PaymentIntent id) or, for Kashier, by our payment id
  (Kashier echoes it as merchantOrderId);
- refunds (`refund:<id>`), keyed by the provider's refund id;
- paid Stripe payouts (`payout.paid` entries), keyed by the transfer id;
- adjusting entries posted when a discrepancy was resolved, keyed by the reference they fix.
Records come from entries in the window PLUS any entry for a reference the provider
reported, so a posting made just across midnight is matched rather than reported missing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.ledger import chart
from app.reconciliation.matching import ADJUSTMENT, LedgerRecord

ADJUSTMENT_REASON = "reconciliation.adjustment"

_CLEARING = """
    JOIN postings po ON po.tenant_id = e.tenant_id AND po.entry_id = e.id
    JOIN ledger_accounts a ON a.tenant_id = po.tenant_id AND a.id = po.account_id
         AND a.code = :clearing
"""

_PAYMENTS = f"""
WITH refs AS (SELECT unnest(CAST(:refs AS text[])) AS ref),
cand AS (
    SELECT e.payment_id AS id FROM journal_entries e
     WHERE e.tenant_id = :tenant_id AND e.occurred_at >= :start AND e.occurred_at < :end
       AND e.payment_id IS NOT NULL AND e.idempotency_key LIKE 'payment:%'
    UNION SELECT p.id FROM payments p JOIN refs ON refs.ref = p.provider_charge_ref
     WHERE p.tenant_id = :tenant_id
    UNION SELECT p.id FROM payments p JOIN refs ON refs.ref = p.provider_ref
     WHERE p.tenant_id = :tenant_id
    UNION SELECT p.id FROM payments p JOIN refs ON refs.ref = p.id::text
     WHERE p.tenant_id = :tenant_id
)
SELECT p.id, p.provider_ref, p.provider_charge_ref, po.currency,
       coalesce(sum(po.amount_minor) FILTER (WHERE e.idempotency_key LIKE '%\\:captured'), 0)
           AS amount,
       -coalesce(sum(po.amount_minor) FILTER (WHERE e.idempotency_key LIKE '%\\:fee'), 0) AS fee
  FROM cand
  JOIN payments p ON p.tenant_id = :tenant_id AND p.id = cand.id AND p.provider = :provider
  JOIN journal_entries e ON e.tenant_id = p.tenant_id AND e.payment_id = p.id
       AND e.idempotency_key IN ('payment:' || p.id || '\\:captured',
                                 'payment:' || p.id || '\\:fee')
  {_CLEARING}
 GROUP BY p.id, p.provider_ref, p.provider_charge_ref, po.currency
"""

_REFUNDS = f"""
WITH refs AS (SELECT unnest(CAST(:refs AS text[])) AS ref),
cand AS (
    SELECT CAST(substring(e.idempotency_key FROM 8) AS uuid) AS id FROM journal_entries e
     WHERE e.tenant_id = :tenant_id AND e.occurred_at >= :start AND e.occurred_at < :end
       AND e.idempotency_key ~ '^refund:[0-9a-f-]{{36}}$'
    UNION SELECT r.id FROM refunds r JOIN refs ON refs.ref = r.provider_ref
     WHERE r.tenant_id = :tenant_id
)
SELECT r.id, r.provider_ref, po.currency, sum(po.amount_minor) AS amount
  FROM cand
  JOIN refunds r ON r.tenant_id = :tenant_id AND r.id = cand.id
  JOIN payments p ON p.tenant_id = r.tenant_id AND p.id = r.payment_id AND p.provider = :provider
  JOIN journal_entries e ON e.tenant_id = r.tenant_id AND e.idempotency_key = 'refund:' || r.id
  {_CLEARING}
 GROUP BY r.id, r.provider_ref, po.currency
"""

_TAGGED = f"""
SELECT e.reason, e.dimensions, po.currency, sum(po.amount_minor) AS amount
  FROM journal_entries e
  {_CLEARING}
 WHERE e.tenant_id = :tenant_id AND e.reason = 'payout.paid'
   AND ((e.occurred_at >= :start AND e.occurred_at < :end)
        OR e.dimensions->>'provider_ref' = ANY(CAST(:refs AS text[])))
 GROUP BY e.id, e.reason, e.dimensions, po.currency
"""

_ADJUSTMENTS_WITHOUT_CLEARING = f"""
SELECT e.dimensions FROM journal_entries e
 WHERE e.tenant_id = :tenant_id AND e.reason = '{ADJUSTMENT_REASON}'
   AND e.dimensions->>'provider' = :provider
   AND ((e.occurred_at >= :start AND e.occurred_at < :end)
        OR e.dimensions->>'reconciliation_ref' = ANY(CAST(:refs AS text[])))
"""


async def load_ledger_records(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    provider: str,
    start: datetime,
    end: datetime,
    refs: Sequence[str],
) -> list[LedgerRecord]:
    """In the caller's transaction (tenant set)."""
    params = {
        "tenant_id": tenant_id,
        "provider": provider,
        "clearing": chart.clearing(provider),
        "start": start,
        "end": end,
        "refs": list(refs),
    }
    records: list[LedgerRecord] = []
    for row in await session.execute(text(_PAYMENTS), params):
        if provider == "kashier":
            ref = str(row.id)
        else:
            ref = row.provider_charge_ref or row.provider_ref or str(row.id)
        records.append(
            LedgerRecord(
                ref,
                "charge",
                int(row.amount),
                int(row.fee),
                row.currency.strip(),
                f"payment:{row.id}",
            )
        )
    for row in await session.execute(text(_REFUNDS), params):
        records.append(
            LedgerRecord(
                row.provider_ref or f"refund:{row.id}",
                "refund",
                int(row.amount),
                0,
                row.currency.strip(),
                f"refund:{row.id}",
            )
        )
    for row in await session.execute(text(_TAGGED), params):
        if row.dimensions.get("provider_ref"):
            records.append(
                LedgerRecord(
                    row.dimensions["provider_ref"],
                    "transfer",
                    int(row.amount),
                    0,
                    row.currency.strip(),
                    f"payout:{row.dimensions.get('payout_id')}",
                )
            )
    # Adjustments state their own amount and fee: their clearing postings mix both.
    for row in await session.execute(text(_ADJUSTMENTS_WITHOUT_CLEARING), params):
        dims = row.dimensions
        records.append(
            LedgerRecord(
                str(dims["reconciliation_ref"]),
                str(dims["record_type"]),
                int(dims["amount_minor"]),
                int(dims["fee_minor"]),
                str(dims["currency"]),
                ADJUSTMENT,
            )
        )
    return records
