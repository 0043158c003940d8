from __future__ import annotations

import uuid

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.outbox import cli
from app.outbox.dispatch import Dispatcher, HandlerContext
from app.outbox.errors import PermanentError, RetryableError
from app.outbox.models import OutboxEvent
from app.settings import Settings
from tests.factories import add_user, sign_up
from tests.outbox.conftest import RelayFactory, make_tenant, outbox_rows, stage_one

Client = AsyncTestClient[Litestar]


async def test_dead_rows_are_listed_and_retried_through_the_api(
    client: Client,
    owner_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    make_relay: RelayFactory,
) -> None:
    salon, other = await sign_up(client), await sign_up(client)
    dead_id = await stage_one(sessions, salon.tenant_id, "sms.send", uuid.uuid4(), {"to": "x"})
    await stage_one(sessions, other.tenant_id, "sms.send", uuid.uuid4())
    provider_up = False
    sent: list[uuid.UUID] = []

    async def send_sms(_: HandlerContext, event: OutboxEvent) -> None:
        if not provider_up:
            raise PermanentError("provider rejected the sender id")
        sent.append(event.id)

    dispatcher = Dispatcher()
    dispatcher.register("sms.send", send_sms)
    relay = make_relay(dispatcher)
    await relay.drain()

    listed = await client.get("/api/v1/outbox", params={"status": "dead"}, headers=salon.headers)
    assert listed.status_code == 200, listed.text
    [entry] = listed.json()
    assert entry["id"] == str(dead_id)  # the other tenant's dead row is not visible
    assert entry["status"] == "dead"
    assert "provider rejected the sender id" in entry["last_error"]

    staff = await add_user(client, salon, "staff")
    forbidden = await client.post(
        f"/api/v1/outbox/{dead_id}/retry", headers={"Authorization": f"Bearer {staff}"}
    )
    assert forbidden.status_code == 403
    foreign = await client.post(f"/api/v1/outbox/{dead_id}/retry", headers=other.headers)
    assert foreign.status_code == 404

    retried = await client.post(f"/api/v1/outbox/{dead_id}/retry", headers=salon.headers)
    assert retried.status_code == 200, retried.text
    assert (retried.json()["status"], retried.json()["attempts"]) == ("pending", 0)
    provider_up = True
    await relay.drain()
    assert sent == [dead_id]
    statuses = {row.id: row.status for row in await outbox_rows(owner_engine)}
    assert statuses[dead_id] == "delivered"

    again = await client.post(f"/api/v1/outbox/{dead_id}/retry", headers=salon.headers)
    assert again.status_code == 409
    assert again.json()["type"] == "outbox_entry_delivered"
    bad = await client.get("/api/v1/outbox", params={"status": "lost"}, headers=salon.headers)
    assert bad.status_code == 422


async def test_metrics_report_outbox_depth_dead_rows_and_oldest_pending_age(
    client: Client,
    owner_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    make_relay: RelayFactory,
) -> None:
    salon = await sign_up(client)
    await stage_one(sessions, salon.tenant_id, "sms.send", uuid.uuid4())
    await stage_one(sessions, salon.tenant_id, "mail.send", uuid.uuid4())
    await stage_one(sessions, salon.tenant_id, "mail.send", uuid.uuid4())

    async def rejected(_: HandlerContext, __: OutboxEvent) -> None:
        raise PermanentError("no")

    dispatcher = Dispatcher()
    dispatcher.register("sms.send", rejected)
    # mail.send has no relay running for it yet: leave those pending.
    for event in await make_relay(dispatcher).claim():
        if event.topic == "sms.send":
            await make_relay(dispatcher).process([event])
    text = (await client.get("/metrics")).text
    assert 'reckon_outbox_depth{status="pending"} 2.0' in text
    assert "reckon_outbox_dead_rows 1.0" in text
    age = next(
        line
        for line in text.splitlines()
        if line.startswith("reckon_outbox_oldest_pending_age_seconds ")
    )
    assert 0 <= float(age.split()[1]) < 60


async def test_metrics_report_recent_delivery_latency_and_attempts(
    client: Client,
    sessions: async_sessionmaker[AsyncSession],
    make_relay: RelayFactory,
) -> None:
    salon = await sign_up(client)
    calls = {"n": 0}

    async def flaky_then_fine(_: HandlerContext, event: OutboxEvent) -> None:
        calls["n"] += 1
        if event.attempts == 1 and event.topic == "mail.send":
            raise RetryableError("try again", retry_after=0)

    dispatcher = Dispatcher()
    dispatcher.register("mail.send", flaky_then_fine)
    dispatcher.register("sms.send", flaky_then_fine)
    await stage_one(sessions, salon.tenant_id, "sms.send", uuid.uuid4())
    await stage_one(sessions, salon.tenant_id, "mail.send", uuid.uuid4())
    for _ in range(3):
        relay = make_relay(dispatcher)
        await relay.process(await relay.claim())
    metrics = {
        line.split()[0]: float(line.split()[1])
        for line in (await client.get("/metrics")).text.splitlines()
        if line.startswith("reckon_outbox_recent")
    }
    assert metrics["reckon_outbox_recent_delivered"] == 2.0
    assert metrics['reckon_outbox_recent_delivery_attempts{kind="total"}'] == 3.0
    assert metrics['reckon_outbox_recent_delivery_attempts{kind="retried_rows"}'] == 1.0
    assert 0 < metrics['reckon_outbox_recent_delivery_latency_seconds{quantile="0.5"}'] < 60


async def test_cli_lists_dead_rows_across_tenants_and_retries_them(
    owner_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    make_relay: RelayFactory,
    settings: Settings,
) -> None:
    first, second = await make_tenant(owner_engine), await make_tenant(owner_engine)
    ids = {
        await stage_one(sessions, tenant, "sms.send", uuid.uuid4()) for tenant in (first, second)
    }

    async def rejected(_: HandlerContext, __: OutboxEvent) -> None:
        raise PermanentError("no")

    dispatcher = Dispatcher()
    dispatcher.register("sms.send", rejected)
    await make_relay(dispatcher).drain()
    dead = await cli.list_entries(settings, "dead")
    assert {entry.id for entry in dead} == ids
    assert {entry.id for entry in await cli.list_entries(settings, "dead", tenant_id=first)} < ids
    retried = await cli.retry_entries(settings, sorted(ids))
    assert {(entry.id, entry.status) for entry in retried} == {(i, "pending") for i in ids}
    assert await cli.list_entries(settings, "dead") == []
    assert "pending" in cli.format_entry(retried[0])
