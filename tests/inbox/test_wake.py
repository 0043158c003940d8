"""The applier is woken by a NOTIFY when an event arrives at an idle inbox: the edge stores the
event (its own commit), then `inbox.wake` notifies in a transaction of its own, because on
Citus the INSERT into the reference table commits by two-phase commit, which refuses NOTIFY."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.db import create_engine
from app.payments import inbox
from app.payments.inbox_writer import InboxWriter
from app.payments.provider_events import sandbox_event
from app.settings import Settings, app_role_url
from app.worker.jobs.inbox import ApplierConfig
from tests.checkout.support import Client, book, get_booking, open_shop
from tests.inbox.support import apply_inbox, owner_url, running_applier
from tests.inbox.test_applier import paid_event, post_sandbox
from tests.infra import libpq

# A poll far longer than any test: only a NOTIFY makes the applier look in time.
NO_POLL = ApplierConfig(poll_interval=600.0, lease_seconds=30.0)


@asynccontextmanager
async def listening(owner: AsyncEngine) -> AsyncIterator[psycopg.AsyncConnection[object]]:
    async with await psycopg.AsyncConnection.connect(
        libpq(owner_url(owner)), autocommit=True
    ) as connection:
        await connection.execute(f"LISTEN {inbox.NOTIFY_CHANNEL}")
        yield connection


@asynccontextmanager
async def edge_connection(owner: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection as the webhook edge has one: the application role, autocommit."""
    engine = create_engine(app_role_url(owner_url(owner))).execution_options(
        isolation_level="AUTOCOMMIT"
    )
    try:
        async with engine.connect() as connection:
            yield connection
    finally:
        await engine.dispose()


async def notifications(connection: psycopg.AsyncConnection[object], within: float = 0.3) -> int:
    """How many notifications arrive within `within` seconds."""
    seen = 0
    try:
        async with asyncio.timeout(within):
            async for _ in connection.notifies():
                seen += 1
    except TimeoutError:
        pass
    return seen


async def store(connection: AsyncConnection) -> inbox.Stored:
    payload = {"id": f"evt_wake_{uuid.uuid4().hex}", "type": "payment.succeeded", "data": {}}
    return await inbox.store(connection, sandbox_event(payload), json.dumps(payload))


async def test_a_webhook_at_an_idle_inbox_wakes_the_applier_without_waiting_for_the_poll(
    client: Client, owner_engine: AsyncEngine, settings: Settings
) -> None:
    shop = await open_shop(client)
    booking = await book(client, shop)
    async with running_applier(owner_engine, NO_POLL):
        await asyncio.sleep(0.3)  # listening, and its first look found nothing
        began = time.perf_counter()
        answer = await post_sandbox(client, settings, paid_event(shop, booking))
        assert answer.json()["status"] == "accepted"
        while (await get_booking(client, shop, booking["id"]))["status"] != "confirmed":
            assert time.perf_counter() - began < 10, "the applier was not woken"
            await asyncio.sleep(0.05)


async def test_storing_notifies_no_one_and_a_duplicate_delivery_wakes_no_one(
    client: Client, owner_engine: AsyncEngine, settings: Settings
) -> None:
    shop = await open_shop(client)
    event = paid_event(shop, await book(client, shop))
    async with listening(owner_engine) as listener:
        async with edge_connection(owner_engine) as edge:
            stored = await store(edge)
        # The INSERT's own commit sends nothing (it may be a two-phase commit on Citus).
        assert await notifications(listener) == 0
        assert stored.inbox_id is not None and stored.seq is not None
        await apply_inbox(owner_engine)
        assert (await post_sandbox(client, settings, event)).json()["status"] == "accepted"
        assert await notifications(listener) == 1
        assert (await post_sandbox(client, settings, event)).json() == {"status": "duplicate"}
        assert await notifications(listener) == 0


async def test_wake_after_commit_notifies_only_when_no_earlier_event_waits(
    owner_engine: AsyncEngine,
) -> None:
    async with edge_connection(owner_engine) as edge:
        first, second = await store(edge), await store(edge)
        seqs = (
            (
                await edge.execute(
                    text("SELECT seq FROM inbox WHERE id IN (:a, :b) ORDER BY seq"),
                    {"a": first.inbox_id, "b": second.inbox_id},
                )
            )
            .scalars()
            .all()
        )
        async with listening(owner_engine) as listener:
            assert await inbox.wake(edge, seqs[0]) is True
            assert await notifications(listener) == 1
            assert await inbox.wake(edge, seqs[1]) is False
            assert await notifications(listener) == 0
            # The earlier one claimed (under a lease): the later one is the one to wake for.
            await edge.execute(
                text("UPDATE inbox SET locked_until = now() + interval '1 minute' WHERE id = :a"),
                {"a": first.inbox_id},
            )
            assert await inbox.wake(edge, seqs[1]) is True
            assert await notifications(listener) == 1


async def test_a_burst_stored_by_the_writer_wakes_the_applier_and_not_once_per_delivery(
    owner_engine: AsyncEngine,
) -> None:
    writer = InboxWriter(libpq(app_role_url(owner_url(owner_engine))), size=8)
    try:
        async with listening(owner_engine) as listener:
            payloads = [
                {"id": f"evt_burst_{uuid.uuid4().hex}", "type": "payment.succeeded", "data": {}}
                for _ in range(40)
            ]
            stored = await asyncio.gather(
                *(writer.store(sandbox_event(p), json.dumps(p)) for p in payloads)
            )
            assert all(s.inbox_id is not None for s in stored)
            woken = await notifications(listener, within=1.0)
        # At least one wake-up reached the applier; the ones that ran while another was in
        # flight were folded into the next, and an inbox with earlier events waiting stays
        # quiet, so a burst of 40 is not 40 notifications.
        assert 1 <= woken < 10, woken
    finally:
        await writer.close()
