"""Calendar handlers against Google's wire shapes (respx) and the real database."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, quote

import httpx
import pytest
import respx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.calendar_sync.service import connect_calendar
from app.integrations.gcal import event_id_for
from app.outbox.dispatch import HandlerContext
from app.outbox.errors import RetryableError
from app.worker.jobs.calendar_sync import sync_booking_calendar
from tests.calendar_sync.conftest import API, CLIENT_ID, TOKEN_URL
from tests.tenant_settings.support import (
    START,
    World,
    booking_event,
    enable,
    make_booking,
    move_booking,
    owner_of,
)

CALENDAR = "salon.main@group.calendar.google.com"
OTHER_CALENDAR = "room.two@group.calendar.google.com"
REFRESH_TOKEN = "1//0gRefreshTokenPlaintext"


def events_url(calendar: str, event_id: str | None = None) -> str:
    url = f"{API}/calendars/{quote(calendar, safe='')}/events"
    return f"{url}/{event_id}" if event_id else url


def google_event(event_id: str, status: str = "confirmed", **fields: Any) -> dict[str, Any]:
    """The resource Google returns from events.insert / events.patch."""
    return {
        "kind": "calendar#event",
        "etag": '"3181161784712000"',
        "id": event_id,
        "status": status,
        "htmlLink": f"https://www.google.com/calendar/event?eid={event_id}",
        "created": "2029-12-26T08:00:00.000Z",
        "updated": "2029-12-26T08:00:00.356Z",
        "iCalUID": f"{event_id}@google.com",
        "sequence": 0,
        "reminders": {"useDefault": True},
        "eventType": "default",
        **fields,
    }


def google_error(status: int, reason: str, message: str) -> httpx.Response:
    error = {
        "code": status,
        "message": message,
        "errors": [{"domain": "usageLimits", "reason": reason, "message": message}],
    }
    return httpx.Response(status, json={"error": error})


def token_route(google: respx.MockRouter) -> respx.Route:
    return google.post(TOKEN_URL).respond(
        200,
        json={
            "access_token": "ya29.a0AfB_access",
            "expires_in": 3599,
            "scope": "https://www.googleapis.com/auth/calendar.events",
            "token_type": "Bearer",
        },
    )


async def connect(
    sessions: async_sessionmaker[AsyncSession],
    world: World,
    resource_id: uuid.UUID,
    calendar: str = CALENDAR,
) -> None:
    async with sessions() as session:
        await connect_calendar(
            session,
            owner_of(world.shop.tenant_id),
            world.box,
            resource_id,
            START - timedelta(days=30),
            calendar_id=calendar,
            refresh_token=REFRESH_TOKEN,
        )


async def synced(owner_engine: AsyncEngine, booking_id: uuid.UUID) -> Any:
    async with owner_engine.connect() as connection:
        return (
            await connection.execute(
                text(
                    "SELECT calendar_id, event_id, state, synced_version FROM calendar_events "
                    "WHERE booking_id = :b"
                ),
                {"b": booking_id},
            )
        ).first()


@pytest.fixture
async def connected(sessions: async_sessionmaker[AsyncSession], world: World) -> World:
    await enable(sessions, world.box, world.shop.tenant_id, ["google_calendar"])
    await connect(sessions, world, world.shop.resource_id)
    return world


async def confirm(
    ctx: HandlerContext, google: respx.MockRouter, world: World, booking_id: uuid.UUID
) -> respx.Route:
    event_id = event_id_for(booking_id)
    insert = google.post(events_url(CALENDAR)).respond(200, json=google_event(event_id))
    await sync_booking_calendar(
        ctx, booking_event(world.shop.tenant_id, "booking.confirmed", booking_id)
    )
    return insert


async def test_confirmed_booking_is_inserted_with_our_event_id(
    ctx: HandlerContext,
    google: respx.MockRouter,
    connected: World,
    owner_engine: AsyncEngine,
) -> None:
    booking_id = await make_booking(owner_engine, connected.shop)
    token = token_route(google)
    insert = await confirm(ctx, google, connected, booking_id)

    form = dict(parse_qsl(token.calls.last.request.content.decode()))
    assert form == {
        "grant_type": "refresh_token",
        "refresh_token": REFRESH_TOKEN,
        "client_id": CLIENT_ID,
        "client_secret": "platform-secret",
    }
    request = insert.calls.last.request
    assert request.headers["Authorization"] == "Bearer ya29.a0AfB_access"
    body = json.loads(request.content)
    assert body["id"] == event_id_for(booking_id)
    assert body["start"] == {"dateTime": "2030-01-02T10:00:00+02:00", "timeZone": "Africa/Cairo"}
    assert body["end"] == {"dateTime": "2030-01-02T11:00:00+02:00", "timeZone": "Africa/Cairo"}
    assert body["summary"] == "Service — Layla Hassan"
    assert body["extendedProperties"]["private"]["reckon_booking_id"] == str(booking_id)
    assert "layla@example.com" not in request.content.decode()
    row = await synced(owner_engine, booking_id)
    assert (row.calendar_id, row.state, row.synced_version) == (CALENDAR, "live", 1)


async def test_redelivered_confirmation_makes_no_second_call(
    ctx: HandlerContext, google: respx.MockRouter, connected: World, owner_engine: AsyncEngine
) -> None:
    booking_id = await make_booking(owner_engine, connected.shop)
    token = token_route(google)
    event = booking_event(connected.shop.tenant_id, "booking.confirmed", booking_id)
    insert = google.post(events_url(CALENDAR)).respond(
        200, json=google_event(event_id_for(booking_id))
    )
    await sync_booking_calendar(ctx, event)
    await sync_booking_calendar(ctx, event)
    assert insert.call_count == 1
    assert token.call_count == 1


async def test_retry_after_a_lost_record_patches_the_existing_event(
    ctx: HandlerContext, google: respx.MockRouter, connected: World, owner_engine: AsyncEngine
) -> None:
    """Google accepted the insert but tx2 never committed: the retry's insert hits 409 (the
    id is taken by our own event) and becomes a patch, not a second event."""
    booking_id = await make_booking(owner_engine, connected.shop)
    event_id = event_id_for(booking_id)
    token_route(google)
    conflict = google.post(events_url(CALENDAR)).mock(
        return_value=google_error(409, "duplicate", "The requested identifier already exists.")
    )
    patch = google.patch(events_url(CALENDAR, event_id)).respond(200, json=google_event(event_id))

    await sync_booking_calendar(
        ctx, booking_event(connected.shop.tenant_id, "booking.confirmed", booking_id, attempts=2)
    )

    assert conflict.call_count == 1 and patch.call_count == 1
    patched = json.loads(patch.calls.last.request.content)
    assert patched["status"] == "confirmed"
    assert patched["start"]["dateTime"] == "2030-01-02T10:00:00+02:00"
    assert (await synced(owner_engine, booking_id)).state == "live"


async def test_reschedule_patches_the_event_times(
    ctx: HandlerContext, google: respx.MockRouter, connected: World, owner_engine: AsyncEngine
) -> None:
    booking_id = await make_booking(owner_engine, connected.shop)
    token_route(google)
    await confirm(ctx, google, connected, booking_id)
    await move_booking(
        owner_engine, connected.shop.tenant_id, booking_id, start=START + timedelta(hours=3)
    )
    event_id = event_id_for(booking_id)
    patch = google.patch(events_url(CALENDAR, event_id)).respond(200, json=google_event(event_id))

    event = booking_event(connected.shop.tenant_id, "booking.rescheduled", booking_id, version=2)
    await sync_booking_calendar(ctx, event)
    await sync_booking_calendar(ctx, event)

    assert patch.call_count == 1
    body = json.loads(patch.calls.last.request.content)
    assert body["start"]["dateTime"] == "2030-01-02T13:00:00+02:00"
    assert body["end"]["dateTime"] == "2030-01-02T14:00:00+02:00"
    assert (await synced(owner_engine, booking_id)).synced_version == 2


async def test_reschedule_onto_another_resource_moves_the_event_between_calendars(
    ctx: HandlerContext,
    google: respx.MockRouter,
    connected: World,
    owner_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    other = connected.shop.resource_ids[1]
    await connect(sessions, connected, other, OTHER_CALENDAR)
    booking_id = await make_booking(owner_engine, connected.shop)
    token_route(google)
    await confirm(ctx, google, connected, booking_id)
    await move_booking(owner_engine, connected.shop.tenant_id, booking_id, resource_id=other)
    event_id = event_id_for(booking_id)
    cancel_old = google.patch(events_url(CALENDAR, event_id)).respond(
        200, json=google_event(event_id, "cancelled")
    )
    insert_new = google.post(events_url(OTHER_CALENDAR)).respond(200, json=google_event(event_id))

    await sync_booking_calendar(
        ctx, booking_event(connected.shop.tenant_id, "booking.rescheduled", booking_id, version=2)
    )

    assert json.loads(cancel_old.calls.last.request.content) == {"status": "cancelled"}
    assert json.loads(insert_new.calls.last.request.content)["id"] == event_id
    row = await synced(owner_engine, booking_id)
    assert (row.calendar_id, row.state, row.synced_version) == (OTHER_CALENDAR, "live", 2)


@pytest.mark.parametrize(
    ("topic", "status"),
    [("booking.cancelled", 200), ("booking.expired", 410), ("booking.no_show", 404)],
)
async def test_cancel_topics_cancel_the_event_and_gone_counts_as_done(
    ctx: HandlerContext,
    google: respx.MockRouter,
    connected: World,
    owner_engine: AsyncEngine,
    topic: str,
    status: int,
) -> None:
    booking_id = await make_booking(owner_engine, connected.shop)
    token_route(google)
    await confirm(ctx, google, connected, booking_id)
    event_id = event_id_for(booking_id)
    cancel = google.patch(events_url(CALENDAR, event_id)).respond(
        status, json=google_event(event_id, "cancelled") if status == 200 else None
    )

    event = booking_event(connected.shop.tenant_id, topic, booking_id, version=2)
    await sync_booking_calendar(ctx, event)
    await sync_booking_calendar(ctx, event)

    assert cancel.call_count == 1
    assert json.loads(cancel.calls.last.request.content) == {"status": "cancelled"}
    assert (await synced(owner_engine, booking_id)).state == "cancelled"


async def test_google_rate_limit_403_is_retryable_with_backoff(
    ctx: HandlerContext, google: respx.MockRouter, connected: World, owner_engine: AsyncEngine
) -> None:
    booking_id = await make_booking(owner_engine, connected.shop)
    token_route(google)
    google.post(events_url(CALENDAR)).mock(
        return_value=google_error(403, "rateLimitExceeded", "Rate Limit Exceeded")
    )
    event = booking_event(connected.shop.tenant_id, "booking.confirmed", booking_id, attempts=3)
    with pytest.raises(RetryableError) as info:
        await sync_booking_calendar(ctx, event)
    # Third attempt: base 5 s doubled twice = 20 s, half fixed and half jitter.
    assert info.value.retry_after is not None and 10.0 <= info.value.retry_after <= 20.0
    assert await synced(owner_engine, booking_id) is None


async def test_google_429_honours_retry_after(
    ctx: HandlerContext, google: respx.MockRouter, connected: World, owner_engine: AsyncEngine
) -> None:
    booking_id = await make_booking(owner_engine, connected.shop)
    token_route(google)
    google.post(events_url(CALENDAR)).respond(429, headers={"Retry-After": "42"})
    with pytest.raises(RetryableError) as info:
        await sync_booking_calendar(
            ctx, booking_event(connected.shop.tenant_id, "booking.confirmed", booking_id)
        )
    assert info.value.retry_after == 42.0


async def test_resource_without_connection_makes_no_call(
    ctx: HandlerContext,
    google: respx.MockRouter,
    connected: World,
    owner_engine: AsyncEngine,
) -> None:
    unconnected = connected.shop.resource_ids[1]
    booking_id = await make_booking(owner_engine, connected.shop, resource_id=unconnected)
    for topic in ("booking.confirmed", "booking.rescheduled", "booking.cancelled"):
        await sync_booking_calendar(ctx, booking_event(connected.shop.tenant_id, topic, booking_id))
    assert google.calls.call_count == 0
    assert await synced(owner_engine, booking_id) is None


async def test_tenant_with_google_calendar_off_makes_no_call(
    ctx: HandlerContext,
    google: respx.MockRouter,
    world: World,
    owner_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await connect(sessions, world, world.shop.resource_id)
    booking_id = await make_booking(owner_engine, world.shop)
    await sync_booking_calendar(
        ctx, booking_event(world.shop.tenant_id, "booking.confirmed", booking_id)
    )
    assert google.calls.call_count == 0


async def test_cancelling_a_booking_never_written_makes_no_call(
    ctx: HandlerContext, google: respx.MockRouter, connected: World, owner_engine: AsyncEngine
) -> None:
    booking_id = await make_booking(
        owner_engine, connected.shop, status="pending_payment", start=START + timedelta(days=1)
    )
    await sync_booking_calendar(
        ctx, booking_event(connected.shop.tenant_id, "booking.expired", booking_id)
    )
    assert google.calls.call_count == 0
