"""Web Push of new and cancelled bookings, delivered to a push service on loopback: the
device's keys decrypt what arrived (aes128gcm, RFC 8291) and it names the booking; a gone
endpoint loses its subscription; a redelivered event notifies nobody twice; another
business's bookings never reach this business's devices."""

from __future__ import annotations

import json
import uuid
from typing import Any

import http_ece
import jwt
import pytest
from py_vapid import Vapid02
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.gateways.webpush import VapidKeys
from app.outbox.dispatch import HandlerContext
from app.outbox.errors import RetryableError
from app.outbox.models import OutboxEvent
from app.worker.jobs.push import send_booking_push
from tests.push.conftest import Device, PushService, Received, new_device
from tests.web.dashboard.support import sign_in
from tests.web.support import Client, Site, at, make_site, tomorrow_local

SUBSCRIPTIONS = "/dashboard/api/push/subscriptions"


async def subscribe(client: Client, site: Site, device: Device) -> None:
    client.cookies.clear()
    csrf = await sign_in(client, site.business.email)
    response = await client.post(
        SUBSCRIPTIONS, json=device.as_json(), headers={"X-CSRF-Token": csrf}
    )
    assert response.status_code == 201, response.text
    client.cookies.clear()


async def book(client: Client, site: Site, hour: int, name: str = "Layla Hassan") -> str:
    response = await client.post(
        "/api/v1/bookings",
        headers=site.business.headers,
        json={
            "service_id": site.services["haircut"],
            "branch_id": site.branch_id,
            "resource_id": site.resources["mona"],
            "start": at(tomorrow_local(), hour).isoformat(),
            "customer": {"name": name, "phone": "+201001112223"},
            "payment": {"provider": "cash"},
        },
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def events_of(owner_engine: AsyncEngine, booking_id: str, topic: str) -> list[OutboxEvent]:
    async with owner_engine.connect() as connection:
        rows = await connection.execute(
            text(
                "SELECT tenant_id, id, seq, topic, aggregate_type, aggregate_id, payload, "
                "created_at FROM outbox WHERE aggregate_id = :id AND topic = :topic ORDER BY seq"
            ),
            {"id": uuid.UUID(booking_id), "topic": topic},
        )
        return [OutboxEvent(**row._asdict(), attempts=1) for row in rows]


def decrypt(device: Device, received: Received) -> dict[str, Any]:
    assert received.headers["Content-Encoding"] == "aes128gcm"
    plain = http_ece.decrypt(
        received.body,
        private_key=device.private_key,
        auth_secret=device.auth,
        version="aes128gcm",
    )
    decoded: dict[str, Any] = json.loads(plain)
    return decoded


async def subscriptions(owner_engine: AsyncEngine) -> list[Any]:
    async with owner_engine.connect() as connection:
        return list(
            await connection.execute(
                text("SELECT tenant_id, endpoint FROM push_subscriptions ORDER BY endpoint")
            )
        )


async def test_new_and_cancelled_bookings_reach_the_device_encrypted_and_signed(
    client: Client,
    owner_engine: AsyncEngine,
    push_service: PushService,
    push_ctx: HandlerContext,
    vapid: VapidKeys,
) -> None:
    site = await make_site(client, name="Nile Hair & Beauty")
    phone = new_device(push_service, "phone")
    await subscribe(client, site, phone)
    booking_id = await book(client, site, 10)
    cancelled = await client.post(
        f"/api/v1/bookings/{booking_id}/cancel", headers=site.business.headers, json={}
    )
    assert cancelled.status_code == 200, cancelled.text

    [placed] = await events_of(owner_engine, booking_id, "booking.placed")
    [cancel] = await events_of(owner_engine, booking_id, "booking.cancelled")
    await send_booking_push(push_ctx, placed)
    await send_booking_push(push_ctx, cancel)

    first, second = push_service.to("phone")
    new, gone = decrypt(phone, first), decrypt(phone, second)
    assert new["booking_id"] == gone["booking_id"] == booking_id
    assert (new["event"], new["title"]) == ("booking.placed", "New booking")
    assert (gone["event"], gone["title"]) == ("booking.cancelled", "Booking cancelled")
    assert "Haircut" in new["body"] and "Layla Hassan" in new["body"] and "Mona" in new["body"]
    assert new["url"] == f"/dashboard/bookings/{booking_id}"
    # One topic per booking: the cancellation replaces an undelivered "new booking" notice.
    assert first.headers["Topic"] == second.headers["Topic"]
    assert len(first.headers["Topic"]) <= 32
    assert first.headers["TTL"] == str(24 * 3600)
    # VAPID (RFC 8292): signed by our key, for this push service's origin.
    authorization = first.headers["Authorization"]
    assert Vapid02.verify(authorization)
    assert f"k={vapid.public_key}" in authorization
    token = authorization.split("t=", 1)[1].split(",", 1)[0]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["aud"] == push_service.base
    assert claims["sub"] == "mailto:ops@reckon.test"


async def test_a_gone_endpoint_loses_its_subscription(
    client: Client,
    owner_engine: AsyncEngine,
    push_service: PushService,
    push_ctx: HandlerContext,
) -> None:
    site = await make_site(client)
    old, new = new_device(push_service, "old"), new_device(push_service, "new")
    await subscribe(client, site, old)
    await subscribe(client, site, new)
    push_service.answers["old"] = [410]
    booking_id = await book(client, site, 11)
    [placed] = await events_of(owner_engine, booking_id, "booking.placed")

    await send_booking_push(push_ctx, placed)  # delivered: a gone device is not a failure

    assert [r.endpoint for r in await subscriptions(owner_engine)] == [new.endpoint]
    assert decrypt(new, push_service.to("new")[0])["booking_id"] == booking_id
    await send_booking_push(push_ctx, placed)
    assert len(push_service.to("old")) == 1


async def test_a_redelivered_event_notifies_no_device_twice(
    client: Client,
    owner_engine: AsyncEngine,
    push_service: PushService,
    push_ctx: HandlerContext,
) -> None:
    site = await make_site(client)
    phone, laptop = new_device(push_service, "phone"), new_device(push_service, "laptop")
    await subscribe(client, site, phone)
    await subscribe(client, site, laptop)
    push_service.answers["laptop"] = [503]
    booking_id = await book(client, site, 12)
    [placed] = await events_of(owner_engine, booking_id, "booking.placed")

    with pytest.raises(RetryableError):
        await send_booking_push(push_ctx, placed)
    assert (len(push_service.to("phone")), len(push_service.to("laptop"))) == (1, 1)

    await send_booking_push(push_ctx, placed)  # the outbox's retry: only the laptop is owed
    await send_booking_push(push_ctx, placed)  # and a duplicate delivery sends nothing
    assert (len(push_service.to("phone")), len(push_service.to("laptop"))) == (1, 2)
    assert decrypt(laptop, push_service.to("laptop")[1])["booking_id"] == booking_id
    async with owner_engine.connect() as connection:
        rows = await connection.execute(
            text("SELECT status, attempts FROM push_deliveries ORDER BY attempts")
        )
        assert [tuple(r) for r in rows] == [("sent", 1), ("sent", 2)]


async def test_another_business_bookings_never_reach_this_business_devices(
    client: Client,
    owner_engine: AsyncEngine,
    push_service: PushService,
    push_ctx: HandlerContext,
) -> None:
    salon, spa = await make_site(client), await make_site(client)
    salon_phone, spa_phone = new_device(push_service, "salon"), new_device(push_service, "spa")
    await subscribe(client, salon, salon_phone)
    await subscribe(client, spa, spa_phone)
    booking_id = await book(client, salon, 13)
    [placed] = await events_of(owner_engine, booking_id, "booking.placed")

    await send_booking_push(push_ctx, placed)

    assert push_service.to("spa") == []
    assert decrypt(salon_phone, push_service.to("salon")[0])["booking_id"] == booking_id
