"""Ledger test helpers: a business, and posting through the real service in a transaction."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import tenant_transaction
from app.ledger import service
from app.ledger.service import Entry, Line
from app.money import Money
from tests.factories import Business, sign_up

NOON = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
async def business(client: AsyncTestClient[Litestar]) -> Business:
    return await sign_up(client, timezone="UTC")


def lines(*pairs: tuple[str, str, int], currency: str = "EGP") -> list[Line]:
    """(code, type, signed minor amount) triples -> ledger lines in one currency."""
    return [Line(code, kind, Money(amount, currency)) for code, kind, amount in pairs]


def sale(amount: int, currency: str = "EGP") -> list[Line]:
    return lines(
        ("receivable:customer", "asset", amount),
        ("deferred_revenue", "liability", -amount),
        currency=currency,
    )


async def post(
    sessions: async_sessionmaker[AsyncSession],
    tenant_id: uuid.UUID,
    entry_lines: Sequence[Line],
    *,
    key: str | None = None,
    reason: str = "checkout",
    occurred_at: datetime = NOON,
    **extra: Any,
) -> Entry:
    async with tenant_transaction(sessions, tenant_id) as session:
        return await service.post(
            session,
            tenant_id,
            idempotency_key=key or f"test:{uuid.uuid4()}",
            reason=reason,
            lines=entry_lines,
            occurred_at=occurred_at,
            **extra,
        )
