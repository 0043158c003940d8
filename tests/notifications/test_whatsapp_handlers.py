"""WhatsApp handlers against Meta's wire shapes (respx) and the real database."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
import respx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.outbox.dispatch import HandlerContext
from app.outbox.errors import PermanentError, RetryableError
from app.worker.jobs.notifications import send_booking_message
from tests.notifications.conftest import GRAPH, PLATFORM_PHONE_ID
from tests.tenant_settings.support import World, booking_event, enable, make_booking

TENANT_PHONE_ID = "106540352242922"
MESSAGES = f"{GRAPH}/v21.0/{TENANT_PHONE_ID}/messages"
TO = "201001234567"


def accepted(wamid: str) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "contacts": [{"input": TO, "wa_id": TO}],
        "messages": [{"id": wamid, "message_status": "accepted"}],
    }


def graph_error(status: int, code: int, message: str, **headers: str) -> httpx.Response:
    error = {
        "message": f"(#{code}) {message}",
        "type": "OAuthException",
        "code": code,
        "error_data": {"messaging_product": "whatsapp", "details": message},
        "fbtrace_id": "AbCdEf123",
    }
    return httpx.Response(status, json={"error": error}, headers=headers)


@pytest.fixture
async def enabled(sessions: async_sessionmaker[AsyncSession], world: World) -> World:
    credentials: dict[str, dict[str, str | None]] = {
        "whatsapp": {"access_token": "tenant-token", "phone_number_id": TENANT_PHONE_ID}
    }
    await enable(sessions, world.box, world.shop.tenant_id, ["whatsapp"], credentials)
    return world


async def messages(owner_engine: AsyncEngine) -> list[Any]:
    async with owner_engine.connect() as connection:
        return list(
            await connection.execute(
                text(
                    "SELECT kind, status, wamid, attempts, language, to_phone, last_error "
                    "FROM whatsapp_messages ORDER BY created_at"
                )
            )
        )


async def test_confirmation_sends_the_english_template_and_stores_the_wamid(
    ctx: HandlerContext, meta: respx.MockRouter, enabled: World, owner_engine: AsyncEngine
) -> None:
    booking_id = await make_booking(owner_engine, enabled.shop)
    route = meta.post(MESSAGES).respond(200, json=accepted("wamid.HBgLMjAxMDAxMjM0NTY3FQIA"))

    await send_booking_message(
        ctx, booking_event(enabled.shop.tenant_id, "booking.confirmed", booking_id)
    )

    request = route.calls.last.request
    assert request.headers["Authorization"] == "Bearer tenant-token"
    assert json.loads(request.content) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": TO,
        "type": "template",
        "template": {
            "name": "reckon_booking_confirmed",
            "language": {"code": "en_US"},
            "components": [
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "text": "Layla Hassan"},
                        {"type": "text", "text": "Test"},
                        {"type": "text", "text": "Service"},
                        {"type": "text", "text": "2030-01-02 10:00"},
                    ],
                }
            ],
        },
    }
    [row] = await messages(owner_engine)
    assert (row.kind, row.status, row.wamid) == (
        "booking_confirmed",
        "sent",
        "wamid.HBgLMjAxMDAxMjM0NTY3FQIA",
    )


async def test_arabic_customers_get_the_arabic_template(
    ctx: HandlerContext, meta: respx.MockRouter, enabled: World, owner_engine: AsyncEngine
) -> None:
    booking_id = await make_booking(owner_engine, enabled.shop, locale="ar")
    route = meta.post(MESSAGES).respond(200, json=accepted("wamid.ar1"))
    await send_booking_message(
        ctx, booking_event(enabled.shop.tenant_id, "booking.cancelled", booking_id)
    )
    template = json.loads(route.calls.last.request.content)["template"]
    assert template["name"] == "reckon_booking_cancelled"
    assert template["language"] == {"code": "ar"}


async def test_redelivery_after_meta_accepted_sends_nothing(
    ctx: HandlerContext, meta: respx.MockRouter, enabled: World, owner_engine: AsyncEngine
) -> None:
    booking_id = await make_booking(owner_engine, enabled.shop)
    route = meta.post(MESSAGES).respond(200, json=accepted("wamid.once"))
    event = booking_event(enabled.shop.tenant_id, "booking.confirmed", booking_id)
    for _ in range(3):
        await send_booking_message(ctx, event)
    # A second confirmed event for the same booking (another outbox id) is the same message.
    await send_booking_message(
        ctx, booking_event(enabled.shop.tenant_id, "booking.confirmed", booking_id)
    )
    assert route.call_count == 1
    assert len(await messages(owner_engine)) == 1


async def test_a_failed_send_leaves_sending_and_the_retry_sends_once(
    ctx: HandlerContext, meta: respx.MockRouter, enabled: World, owner_engine: AsyncEngine
) -> None:
    booking_id = await make_booking(owner_engine, enabled.shop)
    route = meta.post(MESSAGES)
    route.side_effect = [
        httpx.Response(503, json={"error": {"message": "Service unavailable", "code": 2}}),
        httpx.Response(200, json=accepted("wamid.second")),
    ]
    event = booking_event(enabled.shop.tenant_id, "booking.confirmed", booking_id)
    with pytest.raises(RetryableError):
        await send_booking_message(ctx, event)
    [pending] = await messages(owner_engine)
    assert (pending.status, pending.wamid, pending.attempts) == ("sending", None, 1)
    assert "Service unavailable" in pending.last_error
    await send_booking_message(ctx, event)
    await send_booking_message(ctx, event)
    [sent] = await messages(owner_engine)
    assert (sent.status, sent.wamid, sent.attempts, sent.last_error) == (
        "sent",
        "wamid.second",
        2,
        None,
    )
    assert route.call_count == 2


class ProcessDied(Exception):
    """Raised inside the request, as the worker dying mid-send would leave it: no error is
    recorded anywhere."""


async def test_a_send_cut_off_mid_flight_is_never_sent_again(
    ctx: HandlerContext, meta: respx.MockRouter, enabled: World, owner_engine: AsyncEngine
) -> None:
    """The worker died between handing the message to Meta and recording it: Meta may have
    it and takes no idempotency key, so no redelivery sends it a second time — not the first
    (which marks it "outcome unknown") and not any after that (the chaos run's 10,000
    bookings found the third attempt sending again)."""
    booking_id = await make_booking(owner_engine, enabled.shop)
    route = meta.post(MESSAGES)
    route.side_effect = ProcessDied
    event = booking_event(enabled.shop.tenant_id, "booking.confirmed", booking_id)
    with pytest.raises(ProcessDied):
        await send_booking_message(ctx, event)
    route.side_effect = None
    route.return_value = httpx.Response(200, json=accepted("wamid.again"))
    for _ in range(3):
        await send_booking_message(ctx, event)
    [row] = await messages(owner_engine)
    assert route.call_count == 1
    assert (row.status, row.wamid) == ("sending", None)
    assert row.last_error.startswith("outcome unknown")


async def test_an_answer_lost_on_the_wire_is_never_sent_again(
    ctx: HandlerContext, meta: respx.MockRouter, enabled: World, owner_engine: AsyncEngine
) -> None:
    """A read timeout: the request went out, Meta may have delivered it. Recorded as outcome
    unknown, the handler finishes, and redeliveries send nothing."""
    booking_id = await make_booking(owner_engine, enabled.shop)
    route = meta.post(MESSAGES)
    route.side_effect = httpx.ReadTimeout("timed out")
    event = booking_event(enabled.shop.tenant_id, "booking.confirmed", booking_id)
    await send_booking_message(ctx, event)
    route.side_effect = None
    route.return_value = httpx.Response(200, json=accepted("wamid.twice"))
    await send_booking_message(ctx, event)
    await send_booking_message(ctx, event)
    [row] = await messages(owner_engine)
    assert route.call_count == 1 and row.wamid is None
    assert row.last_error.startswith("outcome unknown") and "ReadTimeout" in row.last_error


async def test_a_request_that_never_left_is_sent_on_the_retry(
    ctx: HandlerContext, meta: respx.MockRouter, enabled: World, owner_engine: AsyncEngine
) -> None:
    booking_id = await make_booking(owner_engine, enabled.shop)
    route = meta.post(MESSAGES)
    route.side_effect = [
        httpx.ConnectError("connection refused"),
        httpx.Response(200, json=accepted("wamid.retried")),
    ]
    event = booking_event(enabled.shop.tenant_id, "booking.confirmed", booking_id)
    with pytest.raises(RetryableError):
        await send_booking_message(ctx, event)
    await send_booking_message(ctx, event)
    [row] = await messages(owner_engine)
    assert route.call_count == 2 and (row.status, row.wamid) == ("sent", "wamid.retried")


@pytest.mark.parametrize(
    ("response", "retry_after"),
    [
        (httpx.Response(429, headers={"Retry-After": "17"}), 17.0),
        (graph_error(400, 130429, "Rate limit hit"), None),
    ],
)
async def test_throttling_is_retryable(
    ctx: HandlerContext,
    meta: respx.MockRouter,
    enabled: World,
    owner_engine: AsyncEngine,
    response: httpx.Response,
    retry_after: float | None,
) -> None:
    booking_id = await make_booking(owner_engine, enabled.shop)
    meta.post(MESSAGES).mock(return_value=response)
    with pytest.raises(RetryableError) as info:
        await send_booking_message(
            ctx, booking_event(enabled.shop.tenant_id, "booking.confirmed", booking_id)
        )
    assert info.value.retry_after == retry_after
    [row] = await messages(owner_engine)
    assert row.wamid is None and row.status == "sending"


async def test_an_unapproved_template_is_permanent(
    ctx: HandlerContext, meta: respx.MockRouter, enabled: World, owner_engine: AsyncEngine
) -> None:
    booking_id = await make_booking(owner_engine, enabled.shop)
    meta.post(MESSAGES).mock(
        return_value=graph_error(404, 132001, "Template name does not exist in the translation")
    )
    with pytest.raises(PermanentError):
        await send_booking_message(
            ctx, booking_event(enabled.shop.tenant_id, "booking.confirmed", booking_id)
        )


async def test_customer_without_a_phone_gets_nothing(
    ctx: HandlerContext, meta: respx.MockRouter, enabled: World, owner_engine: AsyncEngine
) -> None:
    booking_id = await make_booking(owner_engine, enabled.shop, phone=None)
    await send_booking_message(
        ctx, booking_event(enabled.shop.tenant_id, "booking.confirmed", booking_id)
    )
    assert meta.calls.call_count == 0
    assert await messages(owner_engine) == []


async def test_tenant_with_whatsapp_off_gets_nothing(
    ctx: HandlerContext, meta: respx.MockRouter, world: World, owner_engine: AsyncEngine
) -> None:
    booking_id = await make_booking(owner_engine, world.shop)
    await send_booking_message(
        ctx, booking_event(world.shop.tenant_id, "booking.confirmed", booking_id)
    )
    assert meta.calls.call_count == 0


async def test_without_tenant_credentials_the_platform_number_sends(
    ctx: HandlerContext,
    meta: respx.MockRouter,
    world: World,
    owner_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await enable(sessions, world.box, world.shop.tenant_id, ["whatsapp"])
    booking_id = await make_booking(owner_engine, world.shop)
    route = meta.post(f"{GRAPH}/v21.0/{PLATFORM_PHONE_ID}/messages").respond(
        200, json=accepted("wamid.platform")
    )
    await send_booking_message(
        ctx, booking_event(world.shop.tenant_id, "booking.confirmed", booking_id)
    )
    assert route.calls.last.request.headers["Authorization"] == "Bearer platform-token"


async def test_each_refund_event_is_its_own_message_but_a_redelivery_is_not(
    ctx: HandlerContext, meta: respx.MockRouter, enabled: World, owner_engine: AsyncEngine
) -> None:
    booking_id = await make_booking(owner_engine, enabled.shop)
    route = meta.post(MESSAGES)
    route.side_effect = [httpx.Response(200, json=accepted(f"wamid.r{n}")) for n in range(2)]
    first, second = uuid.uuid4(), uuid.uuid4()
    for event_id in (first, first, second, second):
        await send_booking_message(
            ctx,
            booking_event(
                enabled.shop.tenant_id, "booking.refunded", booking_id, event_id=event_id
            ),
        )
    assert route.call_count == 2
    rows = await messages(owner_engine)
    assert sorted(r.wamid for r in rows) == ["wamid.r0", "wamid.r1"]
    assert {r.kind for r in rows} == {"booking_refunded"}
