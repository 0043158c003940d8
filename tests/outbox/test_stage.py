from __future__ import annotations

import uuid

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.db import set_tenant, tenant_transaction
from app.outbox.dispatch import Dispatcher, HandlerContext
from app.outbox.models import OutboxEvent
from app.outbox.service import StageOutsideTransaction, stage
from tests.outbox.conftest import RelayFactory, make_tenant, outbox_rows, stage_one


async def test_stage_outside_a_transaction_is_refused(
    owner_engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    tenant_id = await make_tenant(owner_engine)
    async with sessions() as session:
        with pytest.raises(StageOutsideTransaction):
            await stage(session, tenant_id, "booking.placed", "booking", uuid.uuid4(), {})
    assert await outbox_rows(owner_engine) == []


async def test_stage_for_another_tenant_is_rejected_by_rls(
    owner_engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    mine, theirs = await make_tenant(owner_engine), await make_tenant(owner_engine)
    with pytest.raises(Exception, match="row-level security"):
        async with sessions() as session, session.begin():
            await set_tenant(session, mine)
            await stage(session, theirs, "booking.placed", "booking", uuid.uuid4(), {})
    assert await outbox_rows(owner_engine) == []


async def test_row_staged_in_rolled_back_transaction_is_never_delivered(
    owner_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    make_relay: RelayFactory,
) -> None:
    tenant_id = await make_tenant(owner_engine)
    aggregate = uuid.uuid4()

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with tenant_transaction(sessions, tenant_id) as session:
            await stage(
                session, tenant_id, "booking.placed", "booking", aggregate, {"n": "rolled back"}
            )
            raise Boom
    kept = await stage_one(sessions, tenant_id, "booking.placed", aggregate, {"n": "kept"})

    seen: list[OutboxEvent] = []

    async def handler(_: HandlerContext, event: OutboxEvent) -> None:
        seen.append(event)

    dispatcher = Dispatcher()
    dispatcher.register("booking.placed", handler)
    assert await make_relay(dispatcher).drain() == 1
    assert [(event.id, event.payload) for event in seen] == [(kept, {"n": "kept"})]
    assert [(row.id, row.status) for row in await outbox_rows(owner_engine)] == [
        (kept, "delivered")
    ]
