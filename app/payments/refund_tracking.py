"""What a provider refund job remembers between attempts, on the refund row itself.

Kashier takes no idempotency key, so the refund job must recognise its own refund at Kashier
on a later attempt. Two facts serve: our refund id (sent with the refund) and the transaction
id Kashier gave the refund when it answered "pending". The second is kept here, in
refunds.provider_ref, where record_refund_result would put it anyway once the refund ends.
Each function is one short transaction; none decides anything about money.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import set_lock_timeout, set_tenant
from app.errors import NotFound
from app.payments.models import Refund

PENDING = "pending"


@dataclass(frozen=True, slots=True)
class KnownRefs:
    own: str | None  # the provider's id for this refund, when it gave one already
    others: frozenset[str]  # the provider ids the payment's other refunds own


async def known_refs(
    session: AsyncSession, tenant_id: uuid.UUID, refund_id: uuid.UUID
) -> KnownRefs:
    async with session.begin():
        await set_tenant(session, tenant_id)
        refund = await session.get(Refund, (tenant_id, refund_id))
        if refund is None:
            raise NotFound("Refund not found", entity="refund", id=str(refund_id))
        rows = await session.execute(
            select(Refund.id, Refund.provider_ref).where(
                Refund.tenant_id == tenant_id,
                Refund.payment_id == refund.payment_id,
                Refund.provider_ref.is_not(None),
            )
        )
        others = frozenset(str(ref) for rid, ref in rows if rid != refund_id)
        return KnownRefs(refund.provider_ref, others)


async def remember_provider_ref(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    refund_id: uuid.UUID,
    provider_ref: str,
    now: datetime,
) -> bool:
    """Keep the provider's id of a refund it has not finished. Only on a pending refund that
    has none yet: one conditional statement, so it never overwrites an ending written by
    record_refund_result, and it holds no other row while it waits for this one."""
    async with session.begin():
        await set_tenant(session, tenant_id)
        await set_lock_timeout(session, 3000)
        result = await session.execute(
            update(Refund)
            .where(
                Refund.tenant_id == tenant_id,
                Refund.id == refund_id,
                Refund.status == PENDING,
                Refund.provider_ref.is_(None),
            )
            .values(provider_ref=provider_ref, updated_at=now)
        )
        return bool(getattr(result, "rowcount", 0) == 1)
