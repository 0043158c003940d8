from __future__ import annotations

import asyncio
import random
import uuid
from collections import defaultdict

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.db import tenant_transaction
from app.outbox.dispatch import Dispatcher, HandlerContext
from app.outbox.errors import PermanentError, RetryableError
from app.outbox.models import OutboxEvent
from app.outbox.relay import RelayConfig
from app.outbox.service import stage
from tests.outbox.conftest import FAST, RelayFactory, make_tenant, outbox_rows, stage_one


async def _until_settled(
    owner_engine: AsyncEngine,
    relays_drain: object,
    rounds: int = 200,
) -> None:
    for _ in range(rounds):
        rows = await outbox_rows(owner_engine)
        if all(row.status != "pending" for row in rows):
            return
        await relays_drain()  # type: ignore[operator]
        await asyncio.sleep(0.02)
    raise AssertionError("outbox did not settle")


async def test_per_aggregate_order_holds_with_several_concurrent_relays(
    owner_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    make_relay: RelayFactory,
) -> None:
    tenants = [await make_tenant(owner_engine) for _ in range(2)]
    aggregates = [(tenants[i % 2], uuid.uuid4()) for i in range(12)]
    expected: dict[uuid.UUID, list[int]] = defaultdict(list)
    # Interleave staging across aggregates, several transactions writing at once.
    for step in range(15):

        async def write(tenant_id: uuid.UUID, aggregate: uuid.UUID, step: int = step) -> None:
            await stage_one(sessions, tenant_id, "booking.changed", aggregate, {"step": step})
            expected[aggregate].append(step)

        await asyncio.gather(*(write(t, a) for t, a in aggregates))

    handled: dict[uuid.UUID, list[int]] = defaultdict(list)
    in_flight: set[uuid.UUID] = set()
    overlaps: list[uuid.UUID] = []
    rng = random.Random(3)

    async def handler(_: HandlerContext, event: OutboxEvent) -> None:
        if event.aggregate_id in in_flight:
            overlaps.append(event.aggregate_id)
        in_flight.add(event.aggregate_id)
        await asyncio.sleep(rng.uniform(0, 0.003))
        handled[event.aggregate_id].append(event.payload["step"])
        in_flight.discard(event.aggregate_id)

    dispatcher = Dispatcher()
    dispatcher.register("booking.*", handler)
    small = RelayConfig(batch_size=7, concurrency=4, lease_seconds=10, poll_interval=0.05)
    relays = [make_relay(dispatcher, small) for _ in range(4)]

    async def drain_all() -> None:
        await asyncio.gather(*(relay.drain() for relay in relays))

    await _until_settled(owner_engine, drain_all)
    assert overlaps == []
    assert dict(handled) == dict(expected)
    assert {row.status for row in await outbox_rows(owner_engine)} == {"delivered"}


async def test_failing_event_holds_back_only_its_own_aggregate(
    owner_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    make_relay: RelayFactory,
) -> None:
    tenant_id = await make_tenant(owner_engine)
    stuck, free = uuid.uuid4(), uuid.uuid4()
    for n in range(3):
        await stage_one(sessions, tenant_id, "booking.changed", stuck, {"n": n})
        await stage_one(sessions, tenant_id, "booking.changed", free, {"n": n})
    handled: list[tuple[uuid.UUID, int]] = []

    async def handler(_: HandlerContext, event: OutboxEvent) -> None:
        if event.aggregate_id == stuck and event.payload["n"] == 1:
            raise RetryableError("provider timeout", retry_after=60)
        handled.append((event.aggregate_id, event.payload["n"]))

    dispatcher = Dispatcher()
    dispatcher.register("booking.changed", handler)
    relay = make_relay(dispatcher)
    await relay.drain()
    await relay.drain()
    assert set(handled) == {(stuck, 0), (free, 0), (free, 1), (free, 2)}
    statuses = {
        (row.aggregate_id, row.status, row.attempts) for row in await outbox_rows(owner_engine)
    }
    assert (stuck, "pending", 1) in statuses
    # The event after the failing one was handed back, not charged an attempt.
    assert sum(1 for a, s, n in statuses if a == stuck and s == "pending" and n == 0) == 1


async def test_handler_failing_twice_then_succeeding_has_one_effect(
    owner_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    make_relay: RelayFactory,
) -> None:
    tenant_id = await make_tenant(owner_engine)
    event_id = await stage_one(sessions, tenant_id, "invoice.send", uuid.uuid4(), {"x": 1})
    requests: list[str] = []
    applied: dict[str, int] = {}
    calls = 0

    async def handler(ctx: HandlerContext, event: OutboxEvent) -> None:
        nonlocal calls
        calls += 1
        # The provider applies an effect once per idempotency key; then our side times out.
        key = ctx.idempotency_key(event)
        requests.append(key)
        applied.setdefault(key, len(applied) + 1)
        if calls <= 2:
            raise RetryableError("read timeout after the provider committed")

    dispatcher = Dispatcher()
    dispatcher.register("invoice.send", handler)
    relay = make_relay(dispatcher)
    await _until_settled(owner_engine, relay.drain)
    assert requests == [str(event_id)] * 3
    assert applied == {str(event_id): 1}
    [row] = await outbox_rows(owner_engine)
    assert (row.status, row.attempts, row.last_error) == ("delivered", 3, None)


async def test_permanent_failure_and_exhausted_retries_and_unknown_topic_go_dead(
    owner_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    make_relay: RelayFactory,
) -> None:
    tenant_id = await make_tenant(owner_engine)
    await stage_one(sessions, tenant_id, "sms.send", uuid.uuid4())
    await stage_one(sessions, tenant_id, "mail.send", uuid.uuid4())
    await stage_one(sessions, tenant_id, "nobody.listens", uuid.uuid4())

    async def rejected(_: HandlerContext, __: OutboxEvent) -> None:
        raise PermanentError("invalid phone number")

    async def flaky(_: HandlerContext, __: OutboxEvent) -> None:
        raise RetryableError("503 from provider")

    dispatcher = Dispatcher()
    dispatcher.register("sms.send", rejected)
    dispatcher.register("mail.send", flaky)
    relay = make_relay(dispatcher)
    await _until_settled(owner_engine, relay.drain)
    rows = {row.topic: row for row in await outbox_rows(owner_engine)}
    assert (rows["sms.send"].status, rows["sms.send"].attempts) == ("dead", 1)
    assert "invalid phone number" in rows["sms.send"].last_error
    assert (rows["mail.send"].status, rows["mail.send"].attempts) == ("dead", FAST.max_attempts)
    assert rows["nobody.listens"].status == "dead"
    assert "no handler registered for topic 'nobody.listens'" in rows["nobody.listens"].last_error


async def test_expired_lease_lets_another_relay_take_the_rows(
    owner_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    make_relay: RelayFactory,
) -> None:
    tenant_id = await make_tenant(owner_engine)
    await stage_one(sessions, tenant_id, "booking.placed", uuid.uuid4())
    dispatcher = Dispatcher()
    short = RelayConfig(lease_seconds=0.3)
    crashed, survivor = make_relay(dispatcher, short), make_relay(dispatcher, short)
    assert len(await crashed.claim()) == 1  # ...and then the process dies
    assert await survivor.claim() == []
    await asyncio.sleep(0.4)
    [again] = await survivor.claim()
    assert again.attempts == 2


async def test_concurrent_claims_never_hand_out_the_same_row(
    owner_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    make_relay: RelayFactory,
) -> None:
    tenant_id = await make_tenant(owner_engine)
    async with tenant_transaction(sessions, tenant_id) as session:
        for _ in range(300):
            await stage(session, tenant_id, "booking.placed", "booking", uuid.uuid4(), {})
    relays = [make_relay(Dispatcher(), RelayConfig(batch_size=20)) for _ in range(8)]
    claimed: list[uuid.UUID] = []
    while True:
        batches = await asyncio.gather(*(relay.claim() for relay in relays))
        if not any(batches):
            break
        claimed.extend(event.id for batch in batches for event in batch)
    assert len(claimed) == 300
    assert len(set(claimed)) == 300
    async with owner_engine.connect() as connection:
        owners = (
            await connection.execute(text("SELECT count(DISTINCT locked_by) FROM outbox"))
        ).scalar_one()
    assert owners == 8
