"""The reminder sweep: once per booking, 24 h ahead, only for tenants with WhatsApp on."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import respx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.notifications.service import REMINDER_TOPIC
from app.outbox.dispatch import HandlerContext
from app.settings import Settings
from app.worker.jobs.notifications import queue_reminders, send_booking_message
from tests.tenant_settings.support import (
    START,
    World,
    booking_event,
    enable,
    make_booking,
    make_world,
    move_booking,
)

NOW = START - timedelta(hours=20)


async def outbox_reminders(owner_engine: AsyncEngine) -> list[Any]:
    async with owner_engine.connect() as connection:
        return list(
            await connection.execute(
                text("SELECT aggregate_id, payload FROM outbox WHERE topic = :t"),
                {"t": REMINDER_TOPIC},
            )
        )


async def test_sweep_queues_one_reminder_per_due_booking_only(
    sessions: async_sessionmaker[AsyncSession],
    owner_engine: AsyncEngine,
    world: World,
    settings: Settings,
) -> None:
    shop = world.shop
    await enable(sessions, world.box, shop.tenant_id, ["whatsapp"])
    due = await make_booking(owner_engine, shop)
    await make_booking(owner_engine, shop, start=START + timedelta(hours=10))  # 30 h away
    await make_booking(  # booked 2 h before it starts: the confirmation was enough
        owner_engine, shop, start=START + timedelta(hours=1), created_at=NOW
    )
    await make_booking(owner_engine, shop, start=START + timedelta(hours=2), phone=None)
    await make_booking(owner_engine, shop, start=START + timedelta(hours=3), status="cancelled")
    silent = await make_world(owner_engine, settings.secret_key)  # WhatsApp off
    await make_booking(owner_engine, silent.shop)

    assert await queue_reminders(sessions, NOW) == 1
    assert await queue_reminders(sessions, NOW + timedelta(minutes=5)) == 0

    [row] = await outbox_reminders(owner_engine)
    assert row.aggregate_id == due
    assert row.payload == {"booking_id": str(due), "kind": "booking_reminder"}


async def test_concurrent_sweeps_queue_a_booking_once(
    sessions: async_sessionmaker[AsyncSession], owner_engine: AsyncEngine, world: World
) -> None:
    await enable(sessions, world.box, world.shop.tenant_id, ["whatsapp"])
    await make_booking(owner_engine, world.shop)
    counts = await asyncio.gather(*(queue_reminders(sessions, NOW) for _ in range(4)))
    assert sum(counts) == 1
    assert len(await outbox_reminders(owner_engine)) == 1


async def test_reminder_event_sends_the_reminder_template_unless_cancelled_since(
    ctx: HandlerContext,
    meta: respx.MockRouter,
    sessions: async_sessionmaker[AsyncSession],
    owner_engine: AsyncEngine,
    world: World,
) -> None:
    shop = world.shop
    await enable(sessions, world.box, shop.tenant_id, ["whatsapp"])
    kept = await make_booking(owner_engine, shop, locale="ar")
    dropped = await make_booking(owner_engine, shop, start=START + timedelta(hours=2))
    await queue_reminders(sessions, NOW)
    await move_booking(owner_engine, shop.tenant_id, dropped, status="cancelled")
    route = meta.post(url__regex=r"/v21\.0/\d+/messages$").respond(
        200, json={"messaging_product": "whatsapp", "messages": [{"id": "wamid.rem"}]}
    )
    for booking_id in (kept, dropped):
        await send_booking_message(ctx, booking_event(shop.tenant_id, REMINDER_TOPIC, booking_id))
    assert route.call_count == 1
    template = json.loads(route.calls.last.request.content)["template"]
    assert template["name"] == "reckon_booking_reminder"
    assert template["language"] == {"code": "ar"}
    async with owner_engine.connect() as connection:
        statuses: dict[Any, str] = dict(
            (
                await connection.execute(text("SELECT booking_id, status FROM whatsapp_messages"))
            ).all()
        )
    assert statuses == {kept: "sent", dropped: "queued"}
