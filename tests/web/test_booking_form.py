"""The details form: server-side validation next to each field, one booking per
Idempotency-Key however often it is sent, a taken slot answered with fresh times."""

from __future__ import annotations

import asyncio
import re

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.edge.web.forms import form_errors
from tests.web.support import (
    Client,
    at,
    details_form,
    hidden,
    make_site,
    manage_path,
    tomorrow_local,
)


async def bookings(owner_engine: AsyncEngine, tenant_id: object) -> int:
    async with owner_engine.connect() as conn:
        return int(
            await conn.scalar(
                text("SELECT count(*) FROM bookings WHERE tenant_id = :t"), {"t": tenant_id}
            )
            or 0
        )


async def test_details_page_renders_the_quote_and_a_fresh_idempotency_key(client: Client) -> None:
    site = await make_site(client)
    params = {
        "service": site.services["haircut"],
        "branch": site.branch_id,
        "start": at(tomorrow_local(), 11).isoformat(),
    }
    first = await client.get(f"/b/{site.slug}/book/details", params=params)
    second = await client.get(f"/b/{site.slug}/book/details", params=params)
    assert first.status_code == 200, first.text
    assert "EGP350.00" in first.text
    assert 'for="name"' in first.text and 'for="email"' in first.text
    assert hidden(first.text, "idempotency_key") != hidden(second.text, "idempotency_key")


async def test_invalid_fields_are_reported_next_to_each_field_and_nothing_is_booked(
    client: Client, owner_engine: AsyncEngine
) -> None:
    site = await make_site(client)
    form = details_form(
        site, at(tomorrow_local(), 11), name=" ", email="not-an-email", idempotency_key="k-1"
    )
    response = await client.post(f"/b/{site.slug}/book/details", data=form)
    assert response.status_code == 422
    html = response.text
    assert re.search(r'id="name-error">.*Enter your name\.', html)
    assert 'id="name" name="name"' in html and 'aria-describedby="name-error"' in html
    assert re.search(r'id="email-error">.*Enter a valid email address', html)
    assert 'value="not-an-email"' in html  # what was typed is kept
    assert "phone-error" not in html
    assert 'href="#name"' in html and 'href="#email"' in html  # the summary links to them
    assert hidden(html, "idempotency_key") != "k-1"  # a corrected form is a new request
    assert await bookings(owner_engine, site.business.tenant_id) == 0


async def test_a_bad_phone_number_is_reported_on_its_field(client: Client) -> None:
    site = await make_site(client)
    form = details_form(site, at(tomorrow_local(), 11), phone="call me", idempotency_key="k-2")
    response = await client.post(f"/b/{site.slug}/book/details", data=form)
    assert response.status_code == 422
    assert re.search(r'id="phone-error">.*Enter a phone number', response.text)


async def test_what_only_the_use_case_knows_comes_back_onto_its_field(
    client: Client, owner_engine: AsyncEngine
) -> None:
    site = await make_site(client)
    form = details_form(site, at(tomorrow_local(), 11), idempotency_key="k-3")
    form[f"product-{site.product_id}"] = "6"  # 5 in stock at this branch
    response = await client.post(f"/b/{site.slug}/book/details", data=form)
    assert response.status_code == 409
    assert re.search(r'id="products-error">.*just sold out', response.text)
    assert await bookings(owner_engine, site.business.tenant_id) == 0
    assert form_errors(
        [{"field": "customer.email", "message": "must be a valid email address"}, {"field": "x"}]
    ) == {
        "email": "Enter a valid email address, like name@example.com.",
        "form": "Some details are not valid. Check them and try again.",
    }


async def test_the_same_form_sent_twice_books_once_and_lands_on_the_same_booking(
    client: Client, owner_engine: AsyncEngine
) -> None:
    site = await make_site(client)
    form = details_form(site, at(tomorrow_local(), 12), idempotency_key="web-double-submit")
    url = f"/b/{site.slug}/book/details"
    first, second = await asyncio.gather(
        client.post(url, data=form, follow_redirects=False),
        client.post(url, data=form, follow_redirects=False),
    )
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    third = await client.post(url, data=form, follow_redirects=False)
    assert third.headers["location"] == first.headers["location"]
    assert await bookings(owner_engine, site.business.tenant_id) == 1
    page = await client.get(manage_path(first.headers["location"]))
    assert page.status_code == 200
    assert "Your booking is confirmed" in page.text  # cash: confirmed at once
    assert "Pay EGP350.00 at the venue." in page.text


async def test_a_slot_taken_meanwhile_says_so_and_shows_fresh_times(client: Client) -> None:
    site = await make_site(client)
    start = at(tomorrow_local(), 13)
    url = f"/b/{site.slug}/book/details"
    mona, omar = site.resources["mona"], site.resources["omar"]
    for person, key in ((mona, "a"), (omar, "b")):
        taken = await client.post(
            url,
            data=details_form(site, start, who=person, idempotency_key=key),
            follow_redirects=False,
        )
        assert taken.status_code == 303
    late = await client.post(
        url, data=details_form(site, start, idempotency_key="c"), follow_redirects=False
    )
    assert late.status_code == 303
    assert "taken=1" in late.headers["location"]
    page = await client.get(late.headers["location"])
    assert "someone has just taken that time" in page.text
    assert "1:00\u202fPM</time>" not in page.text
    assert "2:00\u202fPM</time>" in page.text


async def test_the_sandbox_goes_to_the_waiting_page_with_the_pay_link(client: Client) -> None:
    site = await make_site(client)
    form = details_form(site, at(tomorrow_local(), 14), payment="sandbox", idempotency_key="s")
    placed = await client.post(f"/b/{site.slug}/book/details", data=form, follow_redirects=False)
    assert placed.status_code == 303
    page = await client.get(placed.headers["location"])
    assert "Waiting for payment" in page.text
    assert re.search(r'href="http://[^"]+/sandbox/pay/[0-9a-f-]+/[0-9a-f-]+"', page.text)
    status = await client.get(manage_path(placed.headers["location"]) + "/status")
    assert status.json()["state"] == "waiting"
    assert status.json()["payment_status"] == "requires_payment"


async def test_a_provider_the_business_did_not_switch_on_is_refused_on_its_field(
    client: Client,
) -> None:
    site = await make_site(client, providers=["cash"])
    details = await client.get(
        f"/b/{site.slug}/book/details",
        params={
            "service": site.services["haircut"],
            "branch": site.branch_id,
            "start": at(tomorrow_local(), 11).isoformat(),
        },
    )
    assert "pay-sandbox" not in details.text and "pay-cash" in details.text
    form = details_form(site, at(tomorrow_local(), 11), payment="sandbox", idempotency_key="p")
    response = await client.post(f"/b/{site.slug}/book/details", data=form)
    assert response.status_code == 422
    assert re.search(r'id="payment-error">.*not available', response.text)
