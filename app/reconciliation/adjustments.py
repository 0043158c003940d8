"""The adjusting ledger entry that closes a real missing posting or amount/fee difference.

The money side goes through `clearing:<provider>` (what the provider's balance says), the
other side to `suspense:reconciliation` (equity) until someone reclassifies it; a fee
difference goes to `expense:fees:<provider>` (the lines: `chart.reconciliation_adjustment`).
The entry states the amount and fee it adds for the reference in its dimensions, which the
next run sums with the original records.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import InvalidState
from app.ledger import chart
from app.ledger.service import Entry, post
from app.money import Money
from app.reconciliation.ledger_side import ADJUSTMENT_REASON
from app.reconciliation.matching import (
    AMOUNT_MISMATCH,
    FEE_MISMATCH,
    MISSING_AT_PROVIDER,
    MISSING_IN_LEDGER,
)
from app.reconciliation.models import Discrepancy


class DiscrepancyNotAdjustable(InvalidState):
    slug = "discrepancy_not_adjustable"
    title = "Only missing postings and amount or fee differences take an adjusting entry"


def _delta(found: Discrepancy) -> tuple[int, int, str | None]:
    """(amount, fee, currency) the ledger must add for this reference to agree."""
    details = found.details
    ledger, provider = found.ledger_minor or 0, found.provider_minor or 0
    if found.kind == MISSING_IN_LEDGER:
        fee = details.get("provider_fee_minor") or 0
        return provider, int(fee), found.provider_currency
    if found.kind == MISSING_AT_PROVIDER:
        fee = details.get("ledger_fee_minor") or 0
        return -int(details.get("ledger_amount_minor", ledger)), -int(fee), found.currency
    if found.kind == AMOUNT_MISMATCH:
        return provider - ledger, 0, found.currency
    if found.kind == FEE_MISMATCH:
        return 0, provider - ledger, found.currency
    raise DiscrepancyNotAdjustable(kind=found.kind)


async def post_adjustment(
    session: AsyncSession, tenant_id: uuid.UUID, found: Discrepancy, now: datetime
) -> Entry:
    """In the caller's transaction (tenant set, discrepancy locked)."""
    amount, fee, currency = _delta(found)
    if (amount == 0 and fee == 0) or not currency:
        raise DiscrepancyNotAdjustable(kind=found.kind, detail_reason="nothing to adjust")
    currency = currency.strip()
    lines = chart.reconciliation_adjustment(
        found.provider, Money(amount, currency), Money(fee, currency)
    )
    return await post(
        session,
        tenant_id,
        idempotency_key=f"reconciliation:{found.id}:adjust",
        reason=ADJUSTMENT_REASON,
        lines=lines,
        occurred_at=now,
        dimensions={
            "discrepancy_id": found.id,
            "provider": found.provider,
            "reconciliation_ref": found.provider_ref,
            "record_type": found.record_type or "adjustment",
            "amount_minor": amount,
            "fee_minor": fee,
            "currency": currency,
        },
    )
