"""End to end: checkout with the sandbox provider -> its signed webhook -> booking confirmed ->
ledger posted -> the outbox rows run through the worker's real dispatcher -> the Google
Calendar event and the WhatsApp message each sent once (Google and Meta behind respx, even
when every event is delivered twice) -> the invoice numbered."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import respx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.gateways.accounts import Providers
from app.integrations.crypto import SecretBox
from app.settings import Settings
from app.worker.config import GoogleConfig, WhatsAppConfig
from app.worker.deps import JobDeps
from app.worker.registry import build_dispatcher
from tests.checkout.support import PRICE, Client, balance, book, count, get_booking, open_shop
from tests.checkout.test_money_path import pay_on_sandbox_page

GCAL = "https://gcal.test/calendar/v3"
TOKEN_URL = "https://oauth2.test/token"
GRAPH = "https://graph.test"
PHONE_ID = "106540352242922"


def mock_providers(router: respx.MockRouter) -> tuple[respx.Route, respx.Route]:
    router.post(TOKEN_URL).respond(
        200, json={"access_token": "ya29.test-access", "expires_in": 3599, "token_type": "Bearer"}
    )
    calendar = router.post(url__startswith=f"{GCAL}/calendars/").respond(
        200, json={"kind": "calendar#event", "id": "generated", "status": "confirmed"}
    )
    router.patch(url__startswith=f"{GCAL}/calendars/").respond(
        200, json={"kind": "calendar#event", "status": "confirmed"}
    )
    whatsapp = router.post(f"{GRAPH}/v21.0/{PHONE_ID}/messages").respond(
        200,
        json={
            "messaging_product": "whatsapp",
            "contacts": [{"input": "+201001234567", "wa_id": "201001234567"}],
            "messages": [{"id": "wamid.HBgMMjAxMDAxMjM0NTY3FQIAERgSQUFBQUFBQUFBQUFBQUFBAA=="}],
        },
    )
    return calendar, whatsapp


async def test_sandbox_checkout_to_calendar_whatsapp_and_invoice(
    client: Client,
    owner_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:
    shop = await open_shop(client)
    headers = shop.business.headers
    enabled = await client.put(
        "/api/v1/settings/providers",
        headers=headers,
        json={"enabled": ["sandbox", "cash", "whatsapp", "google_calendar"]},
    )
    assert enabled.status_code == 200, enabled.text
    connected = await client.post(
        f"/api/v1/resources/{shop.resource_id}/calendar",
        headers=headers,
        json={"calendar_id": "stylist@example.com", "refresh_token": "1//refresh-token"},
    )
    assert connected.status_code == 201, connected.text

    created = await book(client, shop)
    await pay_on_sandbox_page(client, created["payment"]["checkout_url"])
    assert (await get_booking(client, shop, created["id"]))["status"] == "confirmed"
    assert await balance(owner_engine, shop.business.tenant_id, "clearing:sandbox") == PRICE

    dispatcher = build_dispatcher()
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        calendar, whatsapp = mock_providers(router)
        async with httpx.AsyncClient() as http:
            deps = JobDeps(
                providers=Providers(http=http, secret_box=SecretBox(settings.secret_key)),
                google=GoogleConfig(
                    client_id="client", client_secret="secret", api_base=GCAL, token_url=TOKEN_URL
                ),
                whatsapp=WhatsAppConfig(
                    access_token="EAAG-test",
                    api_base=GRAPH,
                    phone_number_id=PHONE_ID,
                    api_version="v21.0",
                ),
                public_base_url="http://127.0.0.1:8000",
            )
            delivered = await run_all(owner_engine, sessions, settings, dispatcher, deps)
            assert delivered == 2  # booking.placed and booking.confirmed
            # At least once: every event delivered a second time changes nothing.
            await redeliver_all(owner_engine, sessions, settings, dispatcher, deps)
    assert calendar.call_count == 1
    assert whatsapp.call_count == 1
    message = json.loads(whatsapp.calls[0].request.content)
    assert message["type"] == "template"
    assert message["template"]["name"] == "reckon_booking_confirmed"
    assert message["to"].replace(" ", "").endswith("1001234567")

    invoices = await client.get(
        "/api/v1/invoices",
        headers=headers,
        params={"from": "2020-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"},
    )
    assert invoices.status_code == 200, invoices.text
    body = invoices.json()
    items = body["items"] if isinstance(body, dict) else body
    year = datetime.now(UTC).year
    assert [i["number"] for i in items] in ([f"INV-{year}-000001"], [f"INV-{year + 1}-000001"])
    assert await count(owner_engine, "SELECT count(*) FROM outbox WHERE status <> 'delivered'") == 0


async def run_all(
    owner: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    dispatcher: object,
    deps: JobDeps,
) -> int:
    from tests.checkout.support import run_outbox

    total = 0
    while handled := await run_outbox(
        owner,
        sessions,
        settings,
        dispatcher,  # type: ignore[arg-type]
        "",
        deps,
    ):
        total += handled
    return total


async def redeliver_all(
    owner: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    dispatcher: object,
    deps: JobDeps,
) -> None:
    from sqlalchemy import text

    async with owner.begin() as connection:
        await connection.execute(text("UPDATE outbox SET status = 'pending', delivered_at = NULL"))
    await run_all(owner, sessions, settings, dispatcher, deps)
