"""Per-channel delivery: one channel failing neither re-runs nor holds back the others.

The handlers are test doubles for a booking's external channels: WhatsApp (a number Meta
rejects), the resource's calendar and the tenant's live event stream.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.outbox import cli
from app.outbox.dispatch import Dispatcher, HandlerContext
from app.outbox.errors import PermanentError, RetryableError
from app.outbox.models import OutboxEvent
from app.outbox.relay import RelayConfig
from app.settings import Settings
from app.worker import registry
from app.worker.jobs import calendar_sync as calendar_jobs
from app.worker.jobs import events as event_jobs
from app.worker.jobs import notifications as notification_jobs
from tests.factories import sign_up
from tests.outbox.conftest import RelayFactory, make_tenant, outbox_rows, stage_one

Client = AsyncTestClient[Litestar]
CHANNELS = ("whatsapp", "calendar", "live")
REJECTED = "(#131026) Message undeliverable: recipient phone number is not valid"


class Channels:
    """WhatsApp, calendar and live-event doubles; WhatsApp rejects the bookings in
    `bad_phones`, the calendar those in `lost_calendars`. Records every call and the order of
    successful ones per channel."""

    def __init__(self) -> None:
        self.bad_phones: set[uuid.UUID] = set()
        self.lost_calendars: set[uuid.UUID] = set()
        self.calls: Counter[tuple[str, uuid.UUID]] = Counter()
        self.succeeded: dict[str, list[uuid.UUID]] = defaultdict(list)

    def dispatcher(self) -> Dispatcher:
        dispatcher = Dispatcher()
        for channel in CHANNELS:
            dispatcher.register("booking.*", self._handler(channel), channel=channel)
        return dispatcher

    def _handler(self, channel: str) -> Callable[[HandlerContext, OutboxEvent], Awaitable[None]]:
        async def handle(_: HandlerContext, event: OutboxEvent) -> None:
            self.calls[channel, event.id] += 1
            if channel == "whatsapp" and event.aggregate_id in self.bad_phones:
                raise PermanentError(REJECTED)
            if channel == "calendar" and event.aggregate_id in self.lost_calendars:
                raise PermanentError("Google answered 404: calendar not found")
            self.succeeded[channel].append(event.id)

        return handle


async def deliveries(owner_engine: AsyncEngine) -> dict[tuple[uuid.UUID, str], tuple[str, int]]:
    async with owner_engine.connect() as connection:
        rows = await connection.execute(
            text("SELECT outbox_id, channel, status, attempts FROM outbox_deliveries")
        )
        return {(r.outbox_id, r.channel): (r.status, r.attempts) for r in rows}


async def statuses(owner_engine: AsyncEngine) -> dict[uuid.UUID, str]:
    return {row.id: row.status for row in await outbox_rows(owner_engine)}


async def test_whatsapp_rejecting_a_number_dead_letters_only_whatsapp_for_that_booking(
    owner_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    make_relay: RelayFactory,
) -> None:
    tenant_id = await make_tenant(owner_engine)
    booking, other = uuid.uuid4(), uuid.uuid4()
    channels = Channels()
    channels.bad_phones.add(booking)
    confirmed = await stage_one(sessions, tenant_id, "booking.confirmed", booking)
    moved = await stage_one(sessions, tenant_id, "booking.rescheduled", booking)
    elsewhere = await stage_one(sessions, tenant_id, "booking.confirmed", other)
    relay = make_relay(channels.dispatcher())

    await relay.drain()
    assert channels.calls == Counter(
        {
            **{(channel, event): 1 for channel in CHANNELS for event in (confirmed, elsewhere)},
            ("calendar", moved): 1,
            ("live", moved): 1,
        }
    )
    # The later WhatsApp message waits behind the dead one; nothing else does.
    assert await deliveries(owner_engine) == {
        (confirmed, "whatsapp"): ("dead", 1),
        (confirmed, "calendar"): ("delivered", 1),
        (confirmed, "live"): ("delivered", 1),
        (moved, "whatsapp"): ("pending", 0),
        (moved, "calendar"): ("delivered", 1),
        (moved, "live"): ("delivered", 1),
    }
    assert await statuses(owner_engine) == {
        confirmed: "dead",
        moved: "pending",
        elsewhere: "delivered",
    }
    [dead] = [row for row in await outbox_rows(owner_engine) if row.id == confirmed]
    assert dead.last_error == f"whatsapp: PermanentError: {REJECTED}"
    # What waits behind a dead channel is not claimed over and over.
    assert await relay.claim() == []

    # A later event of the booking, staged after the failure, still reaches the healthy ones.
    cancelled = await stage_one(sessions, tenant_id, "booking.cancelled", booking)
    await relay.drain()
    await relay.drain()
    assert channels.calls["calendar", cancelled] == channels.calls["live", cancelled] == 1
    assert channels.calls["whatsapp", cancelled] == 0
    assert channels.calls["whatsapp", confirmed] == 1  # a permanent failure is not retried
    assert (await deliveries(owner_engine))[cancelled, "whatsapp"] == ("pending", 0)
    assert sum(channels.calls.values()) == 10


async def test_retrying_the_dead_channel_through_the_api_delivers_it_and_runs_nothing_twice(
    client: Client,
    owner_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    make_relay: RelayFactory,
) -> None:
    salon = await sign_up(client)
    booking = uuid.uuid4()
    channels = Channels()
    channels.bad_phones.add(booking)
    events = [
        await stage_one(sessions, salon.tenant_id, topic, booking)
        for topic in ("booking.confirmed", "booking.rescheduled", "booking.cancelled")
    ]
    relay = make_relay(channels.dispatcher())
    await relay.drain()

    listed = await client.get("/api/v1/outbox", params={"status": "dead"}, headers=salon.headers)
    assert listed.status_code == 200, listed.text
    [entry] = listed.json()
    assert (entry["id"], entry["status"], entry["attempts"]) == (str(events[0]), "dead", 1)
    assert REJECTED in entry["last_error"]
    assert [(c["channel"], c["status"], c["attempts"]) for c in entry["channels"]] == [
        ("calendar", "delivered", 1),
        ("live", "delivered", 1),
        ("whatsapp", "dead", 1),
    ]
    metrics = (await client.get("/metrics")).text
    assert 'reckon_outbox_open_deliveries{channel="whatsapp",status="dead"} 1.0' in metrics
    assert 'reckon_outbox_open_deliveries{channel="whatsapp",status="pending"} 2.0' in metrics
    assert 'channel="calendar"' not in metrics

    url = f"/api/v1/outbox/{events[0]}/retry"
    done = await client.post(url, json={"channel": "calendar"}, headers=salon.headers)
    assert (done.status_code, done.json()["type"]) == (409, "outbox_channel_delivered")
    unknown = await client.post(url, json={"channel": "sms"}, headers=salon.headers)
    assert (unknown.status_code, unknown.json()["type"]) == (404, "outbox_channel_not_found")

    channels.bad_phones.clear()  # the customer fixed their number
    retried = await client.post(url, json={"channel": "whatsapp"}, headers=salon.headers)
    assert retried.status_code == 200, retried.text
    assert (retried.json()["status"], retried.json()["attempts"]) == ("pending", 0)
    await relay.drain()

    assert channels.succeeded["whatsapp"] == events  # the held-back ones follow, in order
    assert channels.calls["whatsapp", events[0]] == 2
    assert all(channels.calls[c, e] == 1 for c in ("calendar", "live") for e in events)
    assert set((await statuses(owner_engine)).values()) == {"delivered"}
    again = await client.get("/api/v1/outbox", params={"status": "dead"}, headers=salon.headers)
    assert again.json() == []
    replay = await client.post(url, headers=salon.headers)
    assert (replay.status_code, replay.json()["type"]) == (409, "outbox_entry_delivered")


async def test_cli_shows_dead_channels_and_retries_only_the_one_asked_for(
    owner_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    make_relay: RelayFactory,
    settings: Settings,
) -> None:
    tenant_id = await make_tenant(owner_engine)
    booking = uuid.uuid4()
    channels = Channels()
    channels.bad_phones.add(booking)
    channels.lost_calendars.add(booking)
    event = await stage_one(sessions, tenant_id, "booking.confirmed", booking)
    relay = make_relay(channels.dispatcher())
    await relay.drain()

    [dead] = await cli.list_entries(settings, "dead")
    assert [(c.channel, c.status) for c in dead.channels] == [
        ("calendar", "dead"),
        ("live", "delivered"),
        ("whatsapp", "dead"),
    ]
    lines = cli.format_entry(dead).splitlines()
    assert [line.split()[:3] for line in lines[1:]] == [
        ["dead", "1", "calendar"],
        ["dead", "1", "whatsapp"],
    ]
    assert REJECTED in lines[2]

    channels.bad_phones.clear()
    [retried] = await cli.retry_entries(settings, [event], channel="whatsapp")
    assert (retried.status, [c.status for c in retried.channels]) == (
        "dead",
        ["dead", "delivered", "pending"],
    )
    await relay.drain()
    assert channels.calls == Counter(
        {("whatsapp", event): 2, ("calendar", event): 1, ("live", event): 1}
    )
    assert await deliveries(owner_engine) == {
        (event, "calendar"): ("dead", 1),
        (event, "live"): ("delivered", 1),
        (event, "whatsapp"): ("delivered", 1),
    }
    assert await statuses(owner_engine) == {event: "dead"}


async def test_a_channel_failing_twice_is_retried_alone_and_delivers_once(
    owner_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    make_relay: RelayFactory,
) -> None:
    tenant_id = await make_tenant(owner_engine)
    event_id = await stage_one(sessions, tenant_id, "booking.confirmed", uuid.uuid4())
    calls: Counter[str] = Counter()

    async def calendar(_: HandlerContext, event: OutboxEvent) -> None:
        calls["calendar"] += 1
        if event.attempts <= 2:
            raise RetryableError("Google answered 503", retry_after=0)

    async def live(_: HandlerContext, __: OutboxEvent) -> None:
        calls["live"] += 1

    dispatcher = Dispatcher()
    dispatcher.register("booking.confirmed", calendar, channel="calendar")
    dispatcher.register("booking.*", live, channel="live")
    relay = make_relay(dispatcher)
    for _ in range(50):
        if (await statuses(owner_engine))[event_id] == "delivered":
            break
        await relay.drain()
        await asyncio.sleep(0.01)
    assert calls == Counter({"calendar": 3, "live": 1})
    [row] = await outbox_rows(owner_engine)
    assert (row.status, row.attempts, row.last_error) == ("delivered", 3, None)
    assert await deliveries(owner_engine) == {
        (event_id, "calendar"): ("delivered", 3),
        (event_id, "live"): ("delivered", 1),
    }


async def test_per_channel_order_holds_and_healthy_channels_run_once_under_concurrent_relays(
    owner_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    make_relay: RelayFactory,
) -> None:
    tenants = [await make_tenant(owner_engine) for _ in range(2)]
    aggregates = [(tenants[i % 2], uuid.uuid4()) for i in range(10)]
    rng = random.Random(11)
    staged: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    # How many attempts WhatsApp fails for each event before it goes through.
    failures: dict[uuid.UUID, int] = {}
    for _ in range(8):

        async def write(tenant_id: uuid.UUID, aggregate: uuid.UUID) -> None:
            event_id = await stage_one(sessions, tenant_id, "booking.changed", aggregate)
            staged[aggregate].append(event_id)
            failures[event_id] = rng.choice((0, 0, 1, 2))

        await asyncio.gather(*(write(t, a) for t, a in aggregates))

    calls: Counter[tuple[str, uuid.UUID]] = Counter()
    succeeded: dict[tuple[str, uuid.UUID], list[uuid.UUID]] = defaultdict(list)
    in_flight: set[tuple[str, uuid.UUID]] = set()
    overlaps: list[tuple[str, uuid.UUID]] = []

    def channel(name: str) -> Callable[[HandlerContext, OutboxEvent], Awaitable[None]]:
        async def handle(_: HandlerContext, event: OutboxEvent) -> None:
            key = (name, event.aggregate_id)
            if key in in_flight:
                overlaps.append(key)
            in_flight.add(key)
            try:
                calls[name, event.id] += 1
                await asyncio.sleep(rng.uniform(0, 0.002))
                if name == "whatsapp" and event.attempts <= failures[event.id]:
                    raise RetryableError("Meta answered 500")
                succeeded[key].append(event.id)
            finally:
                in_flight.discard(key)

        return handle

    dispatcher = Dispatcher()
    for name in CHANNELS:
        dispatcher.register("booking.*", channel(name), channel=name)
    config = RelayConfig(
        batch_size=7,
        concurrency=4,
        lease_seconds=10,
        poll_interval=0.05,
        max_attempts=100,
        backoff_base=0.002,
        backoff_cap=0.01,
    )
    relays = [make_relay(dispatcher, config) for _ in range(4)]
    for _ in range(400):
        if set((await statuses(owner_engine)).values()) == {"delivered"}:
            break
        await asyncio.gather(*(relay.drain() for relay in relays))
        await asyncio.sleep(0.01)
    assert set((await statuses(owner_engine)).values()) == {"delivered"}

    assert overlaps == []
    for _, aggregate in aggregates:
        for name in CHANNELS:
            assert succeeded[name, aggregate] == staged[aggregate], name
    events = [event for events in staged.values() for event in events]
    assert all(calls["calendar", e] == calls["live", e] == 1 for e in events)
    assert all(calls["whatsapp", e] == failures[e] + 1 for e in events)
    assert sum(failures.values()) > 0


def test_production_booking_channels_are_distinct() -> None:
    dispatcher = registry.build_dispatcher()
    confirmed = {route.channel for route in dispatcher.routes_for("booking.confirmed")}
    assert {
        notification_jobs.CHANNEL,
        calendar_jobs.CHANNEL,
        event_jobs.CHANNEL,
    } <= confirmed
    assert len(dispatcher.routes_for("booking.confirmed")) == len(confirmed)


def test_a_channel_has_one_handler_and_runs_once_per_event() -> None:
    async def send(_: HandlerContext, __: OutboxEvent) -> None:
        return None

    async def other(_: HandlerContext, __: OutboxEvent) -> None:
        return None

    dispatcher = Dispatcher()
    dispatcher.register("booking.confirmed", send, channel="whatsapp")
    dispatcher.register("booking.*", send, channel="whatsapp")
    assert [route.channel for route in dispatcher.routes_for("booking.confirmed")] == ["whatsapp"]
    with pytest.raises(ValueError, match="already served"):
        dispatcher.register("booking.cancelled", other, channel="whatsapp")
