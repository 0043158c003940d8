"""The signed manage link: view, cancel with the policy's refund shown first, reschedule to a
free time; it names one booking of one business and stops working once the booking ends."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.presentation.links import ManageLinks
from app.settings import Settings
from tests.web.support import (
    Client,
    Site,
    at,
    details_form,
    hidden,
    make_site,
    manage_path,
    tomorrow_local,
)


async def place(client: Client, site: Site, hour: int, **fields: str) -> str:
    form = details_form(site, at(tomorrow_local() + timedelta(days=2), hour), **fields)
    form.setdefault("idempotency_key", uuid.uuid4().hex)
    placed = await client.post(f"/b/{site.slug}/book/details", data=form, follow_redirects=False)
    assert placed.status_code == 303, placed.text
    return manage_path(placed.headers["location"])


async def pay_on_sandbox(client: Client, manage: str) -> None:
    page = await client.get(manage)
    checkout = re.search(r'href="http://[^"/]+(/sandbox/pay/[^"]+)"', page.text)
    assert checkout, page.text
    paid = await client.post(checkout.group(1) + "/pay", follow_redirects=False)
    assert paid.status_code == 303


async def test_cancel_shows_the_full_refund_first_then_cancels_once(client: Client) -> None:
    site = await make_site(client)
    manage = await place(client, site, 10, payment="sandbox")
    await pay_on_sandbox(client, manage)
    confirm = await client.get(manage + "/cancel")
    assert confirm.status_code == 200
    assert "If you cancel now you get back the full EGP350.00." in confirm.text
    assert "At least 24 hours before the start: 100% back" in confirm.text
    key = hidden(confirm.text, "idempotency_key")
    done = await client.post(
        manage + "/cancel", data={"idempotency_key": key}, follow_redirects=False
    )
    assert done.status_code == 303 and done.headers["location"].endswith("?cancelled=1")
    again = await client.post(
        manage + "/cancel", data={"idempotency_key": key}, follow_redirects=False
    )
    assert again.status_code == 303
    page = await client.get(manage)
    assert "Your booking is cancelled" in page.text
    assert "Cancel the booking" not in page.text


async def test_cancel_of_an_unpaid_booking_says_nothing_is_refunded(client: Client) -> None:
    site = await make_site(client)
    manage = await place(client, site, 11)
    confirm = await client.get(manage + "/cancel")
    assert "Nothing has been charged, so there is nothing to refund." in confirm.text


async def test_reschedule_moves_to_a_free_time_of_the_same_person(client: Client) -> None:
    site = await make_site(client)
    manage = await place(client, site, 10, who=site.resources["mona"])
    day = tomorrow_local() + timedelta(days=2)
    page = await client.get(manage + "/reschedule", params={"day": day.isoformat()})
    assert page.status_code == 200
    assert 'value="' + at(day, 10).isoformat() + '"' not in page.text  # its own time
    new_start = at(day, 15).isoformat()
    assert f'value="{new_start}"' in page.text
    moved = await client.post(
        manage + "/reschedule",
        data={"idempotency_key": hidden(page.text, "idempotency_key"), "start": new_start},
        follow_redirects=False,
    )
    assert moved.status_code == 303 and moved.headers["location"].endswith("?moved=1")
    shown = await client.get(moved.headers["location"])
    assert "moved to the new time" in shown.text
    assert "3:00\u202fPM" in shown.text


async def test_a_token_is_refused_for_another_business_and_when_tampered(
    client: Client, settings: Settings
) -> None:
    ours = await make_site(client)
    theirs = await make_site(client)
    manage = await place(client, ours, 10)
    token = manage.rsplit("/", 1)[1]
    assert (await client.get(f"/b/{theirs.slug}/m/{token}")).status_code == 404
    assert (await client.get(f"/b/{theirs.slug}/m/{token}/status")).status_code == 404
    ref = ManageLinks(settings.secret_key).verify(token)
    assert ref is not None and ref.tenant_id == ours.business.tenant_id
    forged = ManageLinks("another secret").token(ref.tenant_id, ref.booking_id)
    assert (await client.get(f"/b/{ours.slug}/m/{forged}")).status_code == 404
    flipped = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert (await client.get(f"/b/{ours.slug}/m/{flipped}")).status_code == 404
    assert (await client.get(manage)).status_code == 200


async def test_the_link_stops_working_once_the_booking_has_ended(
    client: Client, owner_engine: AsyncEngine
) -> None:
    site = await make_site(client)
    manage = await place(client, site, 10)
    async with owner_engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE bookings SET starts_at = now() - interval '3 hours', "
                "ends_at = now() - interval '2 hours', "
                "blocked = tstzrange(now() - interval '3 hours', now() - interval '2 hours') "
                "WHERE tenant_id = :t"
            ),
            {"t": site.business.tenant_id},
        )
    assert (await client.get(manage)).status_code == 410
    assert (await client.get(manage + "/cancel")).status_code == 410
    assert (await client.get(manage + "/status")).status_code == 410


async def test_the_return_page_turns_confirmed_once_paid_and_says_when_the_hold_ran_out(
    client: Client, owner_engine: AsyncEngine
) -> None:
    site = await make_site(client)
    paid = await place(client, site, 12, payment="sandbox")
    assert (await client.get(paid + "/status")).json()["state"] == "waiting"
    await pay_on_sandbox(client, paid)
    status = (await client.get(paid + "/status")).json()
    assert (status["state"], status["payment_status"]) == ("confirmed", "succeeded")
    assert "Your booking is confirmed" in (await client.get(paid)).text

    lapsed = await place(client, site, 13, payment="sandbox")
    async with owner_engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE bookings SET hold_expires_at = now() - interval '1 minute' "
                "WHERE tenant_id = :t AND status = 'pending_payment'"
            ),
            {"t": site.business.tenant_id},
        )
    assert (await client.get(lapsed + "/status")).json()["state"] == "expired"
    page = await client.get(lapsed)
    assert "The time we held for you has run out" in page.text
    assert "Book again" in page.text
    assert "Pay EGP350.00 now" not in page.text


async def test_stripe_waits_for_its_checkout_page_then_offers_it(
    client: Client, owner_engine: AsyncEngine
) -> None:
    site = await make_site(client, providers=["stripe", "cash"])
    manage = await place(client, site, 14, payment="stripe")
    page = await client.get(manage + "?placed=1")
    assert "Preparing the payment page" in page.text
    assert 'data-autopay="true"' in page.text
    assert '<noscript><meta http-equiv="refresh" content="5"></noscript>' in page.text
    url = "https://checkout.stripe.com/c/pay/cs_test_reckon"
    async with owner_engine.begin() as conn:
        await conn.execute(
            text("UPDATE payments SET checkout_url = :u WHERE tenant_id = :t"),
            {"u": url, "t": site.business.tenant_id},
        )
    assert (await client.get(manage + "/status")).json()["checkout_url"] == url
    assert f'href="{url}"' in (await client.get(manage)).text
