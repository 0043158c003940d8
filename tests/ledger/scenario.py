"""A small month of money movements posted the way the checkout will post them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import tenant_transaction
from app.ledger import service
from tests.ledger.conftest import lines, post

# Business timezone Africa/Cairo (UTC+2 in March): 23:30 UTC on the 10th is the 11th locally.
DAY1 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
DAY2 = datetime(2026, 3, 10, 23, 30, tzinfo=UTC)
BEFORE = datetime(2026, 3, 8, 12, 0, tzinfo=UTC)
BRANCH_A, BRANCH_B = str(uuid.uuid4()), str(uuid.uuid4())
S1, S2 = str(uuid.uuid4()), str(uuid.uuid4())


async def post_month(sessions: async_sessionmaker[AsyncSession], tenant_id: uuid.UUID) -> None:
    a1 = {"branch_id": BRANCH_A, "service_id": S1}
    b2 = {"branch_id": BRANCH_B, "service_id": S2}
    await post(
        sessions,
        tenant_id,
        _completion(S1, 999),
        occurred_at=BEFORE,
        reason="completion",
        dimensions=a1,
    )
    await post(sessions, tenant_id, _checkout(10_000), occurred_at=DAY1, dimensions=a1)
    await post(
        sessions,
        tenant_id,
        lines(
            ("clearing:stripe", "asset", 10_000),
            ("receivable:customer", "asset", -10_000),
            ("expense:fees:stripe", "expense", 320),
            ("clearing:stripe", "asset", -320),
        ),
        occurred_at=DAY1,
        reason="capture",
        dimensions=a1,
    )
    await post(
        sessions,
        tenant_id,
        [
            *_completion(S1, 10_000),
            *lines(
                ("expense:commission", "expense", 1_500),
                ("payable:staff:r1", "liability", -1_500),
            ),
        ],
        occurred_at=DAY1,
        reason="completion",
        dimensions=a1,
    )
    await post(
        sessions,
        tenant_id,
        lines(
            ("revenue:service:x", "revenue", -700),
            ("deferred_revenue", "liability", 700),
            currency="USD",
        ),
        occurred_at=DAY1,
        reason="completion",
        dimensions=a1,
    )
    wrong = await post(
        sessions,
        tenant_id,
        _completion(S2, 5_000),
        occurred_at=DAY2,
        reason="completion",
        dimensions=b2,
    )
    async with tenant_transaction(sessions, tenant_id) as session:
        await service.reverse(session, tenant_id, wrong.id, "rev", "correction", occurred_at=DAY2)
    await post(
        sessions,
        tenant_id,
        lines(
            (f"revenue:service:{S1}", "revenue", 2_500),
            ("clearing:stripe", "asset", -2_500),
        ),
        occurred_at=DAY2,
        reason="refund",
        dimensions=a1,
    )
    await post(sessions, tenant_id, _checkout(3_000), occurred_at=DAY2, dimensions=b2)
    await post(
        sessions,
        tenant_id,
        lines(
            ("deferred_revenue", "liability", 3_000),
            ("clearing:stripe", "asset", -3_000),
        ),
        occurred_at=DAY2,
        reason="refund",
        dimensions=b2,
    )


def _checkout(amount: int) -> list[service.Line]:
    return lines(
        ("receivable:customer", "asset", amount), ("deferred_revenue", "liability", -amount)
    )


def _completion(service_id: str, amount: int) -> list[service.Line]:
    return lines(
        ("deferred_revenue", "liability", amount),
        (f"revenue:service:{service_id}", "revenue", -amount),
    )
