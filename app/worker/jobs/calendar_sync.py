"""Outbox handlers mirroring bookings into their resource's Google calendar.

tx1 (`load_sync_target`) -> Google call -> tx2 (`record_sync`). The event id is derived from
the booking id, so a retry after a crash between the call and tx2 re-inserts, gets 409 and
patches: the same event, never a second one. A redelivered event whose version is already
recorded makes no call at all. Resources without a connection, and tenants with
google_calendar off, are a no-op.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from app.bookings import events
from app.bookings.models import CHECKED_IN, CONFIRMED
from app.calendar_sync.models import CANCELLED, LIVE, token_associated_data
from app.calendar_sync.service import (
    BookingForCalendar,
    Connection,
    SyncedEvent,
    SyncTarget,
    load_sync_target,
    record_sync,
)
from app.gateways.accounts import Providers
from app.gateways.runtime import http_client, provider_config, secret_box
from app.integrations.crypto import DecryptionFailed
from app.integrations.errors import PermanentProviderError, RetryableProviderError
from app.integrations.gcal import GcalClient, GoogleOAuthRefresher
from app.integrations.gcal import event_id_for as gcal_event_id
from app.outbox.dispatch import Dispatcher, HandlerContext
from app.outbox.errors import PermanentError, RetryableError
from app.outbox.models import OutboxEvent
from app.worker.config import GoogleConfig


class HasGoogle(Protocol):
    """What calendar sync uses of the worker's JobDeps."""

    @property
    def providers(self) -> Providers: ...
    @property
    def google(self) -> GoogleConfig: ...
    @property
    def google_refreshers(self) -> dict[tuple[str, ...], GoogleOAuthRefresher]: ...


Ctx = HandlerContext[HasGoogle]

MAX_CACHED_REFRESHERS = 1000
LIVE_TOPICS = (events.BOOKING_CONFIRMED, events.BOOKING_RESCHEDULED)
CANCEL_TOPICS = (events.BOOKING_CANCELLED, events.BOOKING_EXPIRED, events.BOOKING_NO_SHOW)
RATE_LIMIT_BASE_SECONDS = 5.0
RATE_LIMIT_CAP_SECONDS = 900.0


def event_body(booking: BookingForCalendar) -> dict[str, Any]:
    zone = ZoneInfo(booking.timezone)
    summary = f"{booking.service_name} — {booking.customer_name}"
    if booking.party_size > 1:
        summary += f" (party of {booking.party_size})"
    return {
        "summary": summary,
        "description": f"Reckon booking {booking.id}",
        "start": {
            "dateTime": booking.starts_at.astimezone(zone).isoformat(),
            "timeZone": booking.timezone,
        },
        "end": {
            "dateTime": booking.ends_at.astimezone(zone).isoformat(),
            "timeZone": booking.timezone,
        },
        "extendedProperties": {"private": {"reckon_booking_id": str(booking.id)}},
    }


def rate_limit_delay(attempts: int, rng: random.Random | None = None) -> float:
    """Google asks for exponential backoff on rate limits; jitter spreads the retries."""
    delay = min(RATE_LIMIT_CAP_SECONDS, RATE_LIMIT_BASE_SECONDS * 2 ** max(attempts - 1, 0))
    jitter = (rng or random.Random()).uniform(0, delay / 2)  # noqa: S311 - spacing, not secrecy
    return float(delay / 2 + jitter)


class _Clients:
    """One GcalClient per connected resource, sharing cached access tokens across events."""

    def __init__(self, deps: HasGoogle, tenant_id: uuid.UUID, google: GoogleConfig) -> None:
        self._deps = deps
        self._tenant_id = tenant_id
        self._google = google

    def for_connection(self, connection: Connection) -> GcalClient:
        try:
            token = secret_box(self._deps.providers).decrypt(
                connection.sealed_refresh_token,
                associated_data=token_associated_data(self._tenant_id, connection.resource_id),
            )
        except DecryptionFailed as error:
            raise PermanentError(f"calendar refresh token does not decrypt: {error}") from error
        cache = self._deps.google_refreshers
        key = (str(self._tenant_id), self._google.client_id, token)
        if key not in cache:
            if len(cache) >= MAX_CACHED_REFRESHERS:
                cache.clear()
            cache[key] = GoogleOAuthRefresher(
                client_id=self._google.client_id,
                client_secret=self._google.client_secret,
                refresh_token=token,
                http=http_client(self._deps.providers),
                token_url=self._google.token_url,
            )
        http = http_client(self._deps.providers)
        return GcalClient(cache[key], http, api_base=self._google.api_base)


async def _google_for(ctx: Ctx, tenant_id: uuid.UUID) -> GoogleConfig | None:
    deps = ctx.need()
    config = await provider_config(ctx.sessions, deps.providers, tenant_id, "google_calendar")
    if not config.enabled:
        return None
    base = deps.google
    return GoogleConfig(
        client_id=config.credentials.get("client_id", base.client_id),
        client_secret=config.credentials.get("client_secret", base.client_secret),
        api_base=base.api_base,
        token_url=base.token_url,
    )


async def _cancel(
    clients: _Clients, target: SyncTarget, synced: SyncedEvent, version: int
) -> SyncedEvent | None:
    connection = target.connections.get(synced.resource_id)
    if connection is None or synced.state == CANCELLED:
        return None  # disconnected since: nothing we may still touch
    await clients.for_connection(connection).cancel_event(synced.calendar_id, synced.event_id)
    return SyncedEvent(synced.resource_id, synced.calendar_id, synced.event_id, CANCELLED, version)


async def _write_live(
    clients: _Clients, target: SyncTarget, topic: str, version: int
) -> SyncedEvent | None:
    booking, synced = target.booking, target.synced
    connection = target.connections.get(booking.resource_id)
    moved = (
        synced is not None
        and synced.state == LIVE
        and (connection is None or synced.calendar_id != connection.calendar_id)
    )
    outcome: SyncedEvent | None = None
    if moved and synced is not None:
        outcome = await _cancel(clients, target, synced, version)
    if connection is None:
        return outcome
    if synced is None and booking.status not in (CONFIRMED, CHECKED_IN):
        return outcome  # e.g. an unpaid hold rescheduled: it has no event yet
    client = clients.for_connection(connection)
    event_id = gcal_event_id(booking.id)
    body = event_body(booking)
    if topic == events.BOOKING_RESCHEDULED and synced is not None and not moved:
        changes = {"start": body["start"], "end": body["end"], "summary": body["summary"]}
        await client.patch_event(connection.calendar_id, event_id, changes)
    else:
        await client.insert_event(connection.calendar_id, event_id, body)
    return SyncedEvent(connection.resource_id, connection.calendar_id, event_id, LIVE, version)


def _already_synced(target: SyncTarget, topic: str, version: int) -> bool:
    synced = target.synced
    if synced is None:
        return topic in CANCEL_TOPICS  # never written: nothing to cancel
    wanted = CANCELLED if topic in CANCEL_TOPICS else LIVE
    return synced.state == wanted and synced.synced_version >= version


async def sync_booking_calendar(ctx: Ctx, event: OutboxEvent) -> None:
    booking_id = uuid.UUID(str(event.payload.get("booking_id", event.aggregate_id)))
    version = int(event.payload.get("version") or 0)
    log = ctx.log(event).bind(booking_id=str(booking_id))
    google = await _google_for(ctx, event.tenant_id)
    if google is None:
        return
    async with ctx.sessions() as session:
        target = await load_sync_target(session, event.tenant_id, booking_id)
    if target is None or _already_synced(target, event.topic, version):
        return
    clients = _Clients(ctx.need(), event.tenant_id, google)
    try:
        if event.topic in CANCEL_TOPICS and target.synced is not None:
            outcome = await _cancel(clients, target, target.synced, version)
        else:
            outcome = await _write_live(clients, target, event.topic, version)
    except RetryableProviderError as error:
        delay = error.retry_after
        if delay is None and error.status in (403, 429):
            delay = rate_limit_delay(event.attempts)
        raise RetryableError(str(error), retry_after=delay) from error
    except PermanentProviderError as error:
        raise PermanentError(str(error)) from error
    if outcome is not None:
        async with ctx.sessions() as session:
            await record_sync(session, event.tenant_id, booking_id, outcome, datetime.now(UTC))
        log.info("calendar.synced", state=outcome.state, calendar_id=outcome.calendar_id)


# Its own outbox channel: ordered, retried and dead-lettered apart from WhatsApp and live events.
CHANNEL = "calendar_sync.google"


def register_handlers(dispatcher: Dispatcher) -> None:
    for topic in (*LIVE_TOPICS, *CANCEL_TOPICS):
        dispatcher.register(topic, sync_booking_calendar, channel=CHANNEL)
