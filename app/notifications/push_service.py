"""Web Push for staff devices: subscriptions (one per browser endpoint per business) and the
transactions around a send.

A send is tx1 `claim_pushes` (a 'sending' delivery row per subscription of the business not
yet sent this event) -> the push service -> tx2 `mark_sent` / `forget_subscription` (the
endpoint is gone) / `mark_rejected` / `record_push_failure`. A redelivered event finds its
'sent' rows and sends to nobody twice; the one window where a device can be notified twice is
a crash (or a lost response) after the push service accepted a message and before tx2
committed — and since every message of a booking carries the same Topic, the push service
replaces an undelivered copy instead of showing both.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.bookings import events
from app.bookings.models import PENDING_PAYMENT, Booking
from app.catalog.models import Branch, Resource, Service
from app.db import new_id, set_lock_timeout, set_tenant
from app.notifications.push_models import (
    REJECTED,
    SENDING,
    SENT,
    PushDelivery,
    PushSubscription,
)
from app.tenancy.service import Principal
from app.validation import field_error

# Booking topics a staff device is told about.
PUSH_TOPICS = (events.BOOKING_PLACED, events.BOOKING_CANCELLED)
MAX_ENDPOINT = 2048
P256DH_BYTES = 65  # an uncompressed P-256 point
AUTH_BYTES = 16
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True, slots=True)
class PushTarget:
    subscription_id: uuid.UUID
    endpoint: str
    p256dh: str
    auth: str


@dataclass(frozen=True, slots=True)
class PushMessage:
    """What the device shows: no amounts, no customer contact details."""

    booking_id: uuid.UUID
    event: str
    title: str
    body: str
    url: str

    def as_json(self) -> dict[str, str]:
        return {
            "booking_id": str(self.booking_id),
            "event": self.event,
            "title": self.title,
            "body": self.body,
            "url": self.url,
            "tag": f"booking-{self.booking_id}",
        }


@dataclass(frozen=True, slots=True)
class PushBatch:
    message: PushMessage
    targets: tuple[PushTarget, ...]


def _key_bytes(value: str, field: str, size: int) -> str:
    value = value.strip()
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise field_error(field, "must be base64url") from None
    if len(raw) != size:
        raise field_error(field, f"must encode {size} bytes")
    if field == "keys.p256dh" and raw[0] != 4:
        raise field_error(field, "must be an uncompressed P-256 public key")
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def check_endpoint(endpoint: str, *, allow_loopback_http: bool) -> str:
    """Push services are HTTPS. Plain HTTP is taken only for a loopback host outside
    production (a local push service in development and tests)."""
    endpoint = endpoint.strip()
    parts = urlsplit(endpoint)
    if len(endpoint) > MAX_ENDPOINT or not parts.hostname:
        raise field_error("endpoint", "must be the push service URL of a subscription")
    if parts.scheme == "https":
        return endpoint
    if parts.scheme == "http" and allow_loopback_http and parts.hostname in LOOPBACK_HOSTS:
        return endpoint
    raise field_error("endpoint", "must be an https URL")


async def subscribe(
    session: AsyncSession,
    user: Principal,
    *,
    endpoint: str,
    p256dh: str,
    auth: str,
    allow_loopback_http: bool = False,
) -> uuid.UUID:
    """Store this device's subscription for the signed-in user; subscribing the same
    endpoint again (new keys, another user signed in on it) updates the one row."""
    endpoint = check_endpoint(endpoint, allow_loopback_http=allow_loopback_http)
    p256dh = _key_bytes(p256dh, "keys.p256dh", P256DH_BYTES)
    auth = _key_bytes(auth, "keys.auth", AUTH_BYTES)
    async with session.begin():
        await set_tenant(session, user.tenant_id)
        subscription_id: uuid.UUID | None = await session.scalar(
            insert(PushSubscription)
            .values(
                tenant_id=user.tenant_id,
                id=new_id(),
                user_id=user.user_id,
                endpoint=endpoint,
                p256dh=p256dh,
                auth=auth,
            )
            .on_conflict_do_update(
                index_elements=["tenant_id", "endpoint"],
                set_={"user_id": user.user_id, "p256dh": p256dh, "auth": auth},
            )
            .returning(PushSubscription.id)
        )
    assert subscription_id is not None
    return subscription_id


async def unsubscribe(session: AsyncSession, user: Principal, endpoint: str) -> bool:
    """Forget this device; the endpoint is the device's own secret, so whoever holds it may
    turn it off. False when it was not subscribed."""
    async with session.begin():
        await set_tenant(session, user.tenant_id)
        gone = await session.scalar(
            delete(PushSubscription)
            .where(
                PushSubscription.tenant_id == user.tenant_id,
                PushSubscription.endpoint == endpoint.strip(),
            )
            .returning(PushSubscription.id)
        )
    return gone is not None


async def _message(
    session: AsyncSession, tenant_id: uuid.UUID, booking_id: uuid.UUID, event: str
) -> PushMessage | None:
    row = (
        await session.execute(
            select(Booking, Service.name, Resource.name, Branch.timezone)
            .join(
                Service,
                (Service.tenant_id == Booking.tenant_id) & (Service.id == Booking.service_id),
            )
            .join(
                Resource,
                (Resource.tenant_id == Booking.tenant_id) & (Resource.id == Booking.resource_id),
            )
            .join(
                Branch, (Branch.tenant_id == Booking.tenant_id) & (Branch.id == Booking.branch_id)
            )
            .where(Booking.tenant_id == tenant_id, Booking.id == booking_id)
        )
    ).first()
    if row is None:
        return None
    booking, service, resource, timezone = row
    start = booking.starts_at.astimezone(ZoneInfo(timezone)).strftime("%a %d %b %H:%M")
    if event == events.BOOKING_CANCELLED:
        title = "Booking cancelled"
    elif booking.status == PENDING_PAYMENT:
        title = "New booking (awaiting payment)"
    else:
        title = "New booking"
    body = f"{service} · {start} · {resource} · {booking.customer_name}"
    return PushMessage(booking_id, event, title, body, f"/dashboard/bookings/{booking_id}")


async def claim_pushes(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    outbox_id: uuid.UUID,
    booking_id: uuid.UUID,
    event: str,
) -> PushBatch | None:
    """tx1: the message and the business's subscriptions this event has not yet reached (or
    been refused by), each delivery marked 'sending'. None when there is nothing to send."""
    async with session.begin():
        await set_tenant(session, tenant_id)
        subscriptions = (
            await session.scalars(
                select(PushSubscription)
                .where(PushSubscription.tenant_id == tenant_id)
                .order_by(PushSubscription.id)
            )
        ).all()
        if not subscriptions:
            return None
        message = await _message(session, tenant_id, booking_id, event)
        if message is None:
            return None
        await session.execute(
            insert(PushDelivery)
            .values(
                [
                    {
                        "tenant_id": tenant_id,
                        "id": new_id(),
                        "outbox_id": outbox_id,
                        "subscription_id": s.id,
                        "status": SENDING,
                    }
                    for s in subscriptions
                ]
            )
            .on_conflict_do_nothing(index_elements=["tenant_id", "outbox_id", "subscription_id"])
        )
        await set_lock_timeout(session)
        owed = (
            await session.scalars(
                select(PushDelivery.subscription_id)
                .where(
                    PushDelivery.tenant_id == tenant_id,
                    PushDelivery.outbox_id == outbox_id,
                    PushDelivery.status == SENDING,
                )
                .with_for_update()
            )
        ).all()
        await session.execute(
            update(PushDelivery)
            .where(
                PushDelivery.tenant_id == tenant_id,
                PushDelivery.outbox_id == outbox_id,
                PushDelivery.status == SENDING,
            )
            .values(attempts=PushDelivery.attempts + 1)
        )
        wanted = set(owed)
        targets = tuple(
            PushTarget(s.id, s.endpoint, s.p256dh, s.auth) for s in subscriptions if s.id in wanted
        )
    return PushBatch(message, targets)


async def _finish(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    outbox_id: uuid.UUID,
    subscription_id: uuid.UUID,
    **values: object,
) -> None:
    async with session.begin():
        await set_tenant(session, tenant_id)
        await session.execute(
            update(PushDelivery)
            .where(
                PushDelivery.tenant_id == tenant_id,
                PushDelivery.outbox_id == outbox_id,
                PushDelivery.subscription_id == subscription_id,
                PushDelivery.status == SENDING,
            )
            .values(**values)
        )


async def mark_sent(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    outbox_id: uuid.UUID,
    subscription_id: uuid.UUID,
    now: datetime,
) -> None:
    """tx2: the push service accepted the message; no retry sends it again."""
    await _finish(
        session, tenant_id, outbox_id, subscription_id, status=SENT, sent_at=now, last_error=None
    )


async def mark_rejected(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    outbox_id: uuid.UUID,
    subscription_id: uuid.UUID,
    error: str,
) -> None:
    await _finish(
        session, tenant_id, outbox_id, subscription_id, status=REJECTED, last_error=error[:1000]
    )


async def record_push_failure(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    outbox_id: uuid.UUID,
    subscription_id: uuid.UUID,
    error: str,
) -> None:
    await _finish(session, tenant_id, outbox_id, subscription_id, last_error=error[:1000])


async def forget_subscription(
    session: AsyncSession, tenant_id: uuid.UUID, subscription_id: uuid.UUID
) -> None:
    """The push service says the endpoint no longer exists (404/410): the browser dropped
    the subscription, so we do too (its deliveries go with it)."""
    async with session.begin():
        await set_tenant(session, tenant_id)
        await session.execute(
            delete(PushSubscription).where(
                PushSubscription.tenant_id == tenant_id, PushSubscription.id == subscription_id
            )
        )
