"""Back from paying: Stripe and Kashier send the customer to the booking's own manage page
(the live return page), and the sandbox page links back to it. Every way back is made on the
server from the booking; nothing in a request chooses where the customer goes."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
import respx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.gateways.accounts import Providers
from app.integrations.crypto import SecretBox
from app.integrations.kashier import KashierClient
from app.mail.confirmation import MailSetup
from app.outbox.dispatch import Dispatcher
from app.presentation.links import ManageLinks
from app.settings import Settings
from app.worker.deps import JobDeps
from app.worker.jobs import payments as checkout_jobs
from tests.checkout.support import run_outbox
from tests.web.support import (
    Client,
    Site,
    at,
    details_form,
    make_site,
    manage_path,
    tomorrow_local,
)

BASE = "https://reckon.test"
KASHIER = "https://kashier.test"


async def place(client: Client, site: Site, payment: str) -> str:
    form = details_form(
        site,
        at(tomorrow_local() + timedelta(days=2), 10),
        payment=payment,
        idempotency_key=uuid.uuid4().hex,
    )
    placed = await client.post(f"/b/{site.slug}/book/details", data=form, follow_redirects=False)
    assert placed.status_code == 303, placed.text
    return manage_path(placed.headers["location"])


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        yield client


async def test_kashier_sends_the_customer_back_to_the_bookings_manage_page(
    client: Client,
    owner_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    http: httpx.AsyncClient,
) -> None:
    site = await make_site(client, providers=["kashier", "cash"])
    manage = await place(client, site, "kashier")
    dispatcher = Dispatcher()
    checkout_jobs.register_handlers(dispatcher)
    deps = JobDeps(
        providers=Providers(
            kashier=KashierClient(
                merchant_id="MID-1-1", api_key="k", secret_key="s", http=http, api_base=KASHIER
            ),
            http=http,
            secret_box=SecretBox(settings.secret_key),
        ),
        public_base_url=BASE,
        mail=MailSetup(smtp=None, links=ManageLinks(settings.secret_key), public_base_url=BASE),
    )
    with respx.mock(assert_all_mocked=True) as kashier:
        route = kashier.post(f"{KASHIER}/v3/payment/sessions").respond(
            201, json={"_id": "sess_1", "sessionUrl": "https://payments.kashier.test/s/sess_1"}
        )
        ran = await run_outbox(
            owner_engine, sessions, settings, dispatcher, "payment.checkout", deps
        )
    assert ran == 1 and route.call_count == 1
    body = json.loads(route.calls.last.request.content)
    assert body["merchantRedirect"] == f"{BASE}{manage}?placed=1"
    assert body["serverWebhook"] == f"{BASE}/webhooks/kashier"
    # The page the customer lands on is the live return page, offering Kashier's page.
    back = await client.get(manage + "?placed=1")
    assert back.status_code == 200
    assert "Waiting for payment" in back.text
    assert 'href="https://payments.kashier.test/s/sess_1"' in back.text


async def test_coming_back_from_a_cancelled_stripe_page_says_the_payment_is_not_done(
    client: Client,
) -> None:
    site = await make_site(client, providers=["stripe", "cash"])
    manage = await place(client, site, "stripe")
    cancelled = await client.get(manage + "?placed=1&result=cancel")
    assert cancelled.status_code == 200
    assert "Waiting for payment" in cancelled.text
    assert "The payment was not completed." in cancelled.text
    succeeded = await client.get(manage + "?placed=1&result=success")
    assert succeeded.status_code == 200
    assert "The payment was not completed." not in succeeded.text


async def test_the_sandbox_page_links_back_to_the_booking_and_nowhere_else(client: Client) -> None:
    site = await make_site(client)
    manage = await place(client, site, "sandbox")
    page = await client.get(manage)
    found = re.search(r'href="http://[^"/]+(/sandbox/pay/[^"]+)"', page.text)
    assert found, page.text
    checkout = found.group(1)
    # A link smuggled in the query is never where "back" goes.
    before = await client.get(
        checkout, params={"next": "https://evil.example/", "return": "//evil.example"}
    )
    assert before.status_code == 200
    assert f'href="{manage}">Back to your booking</a>' in before.text
    assert "evil" not in before.text
    paid = await client.post(checkout + "/pay", follow_redirects=False)
    assert paid.status_code == 303 and paid.headers["location"] == checkout
    after = await client.get(checkout)
    assert "<strong>succeeded</strong>" in after.text
    back = re.search(r'<a class="back" href="([^"]+)">Back to your booking</a>', after.text)
    assert back and back.group(1) == manage
    shown = await client.get(back.group(1))
    assert "Your booking is confirmed" in shown.text


async def test_after_declining_the_sandbox_page_still_leads_back_to_pay_again(
    client: Client,
) -> None:
    site = await make_site(client)
    manage = await place(client, site, "sandbox")
    found = re.search(r'href="http://[^"/]+(/sandbox/pay/[^"]+)"', (await client.get(manage)).text)
    assert found
    declined = await client.post(found.group(1) + "/decline", follow_redirects=True)
    assert "<strong>failed</strong>" in declined.text
    assert f'href="{manage}">Back to your booking</a>' in declined.text
