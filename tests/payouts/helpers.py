"""Payout test helpers built on the real use cases."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit import trail as audit
from app.db import tenant_transaction
from app.payouts import service
from app.payouts.models import Payout, PayoutAccount
from tests.reconciliation.world import DAY_START, World, earn_commission

PERIOD = (date(2026, 3, 2), date(2026, 3, 9))


async def connect_stripe(
    sessions: async_sessionmaker[AsyncSession], world: World, account: str = "acct_1Staff"
) -> None:
    async with sessions() as session:
        await service.set_payout_account(
            session,
            world.tenant_id,
            world.resource_ids[0],
            rail="stripe",
            connected_account_id=account,
            now=DAY_START,
            actor=audit.SYSTEM,
        )


async def paid_stripe_payout(
    sessions: async_sessionmaker[AsyncSession], world: World, *, amount: int, transfer_id: str
) -> Payout:
    """Commission earned last week, paid out on DAY_START's day through Stripe Connect."""
    await connect_stripe(sessions, world)
    await earn_commission(
        sessions, world, world.resource_ids[0], amount, at=DAY_START - timedelta(days=3)
    )
    async with sessions() as session:
        result = await service.run_payouts(
            session,
            world.tenant_id,
            period_start=PERIOD[0],
            period_end=PERIOD[1],
            minimum_minor=1,
            now=DAY_START + timedelta(hours=12),
            actor=audit.SYSTEM,
        )
    (payout,) = result.created
    async with sessions() as session:
        return await service.mark_payout_paid(
            session,
            world.tenant_id,
            payout.id,
            provider_ref=transfer_id,
            now=DAY_START + timedelta(hours=13),
            actor=audit.SYSTEM,
        )


async def payout_accounts(
    sessions: async_sessionmaker[AsyncSession], world: World
) -> list[PayoutAccount]:
    from sqlalchemy import select

    async with tenant_transaction(sessions, world.tenant_id) as session:
        return list((await session.scalars(select(PayoutAccount))).all())
