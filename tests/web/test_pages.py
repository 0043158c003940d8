"""The business page, the start page and the booking steps render from real data."""

from __future__ import annotations

import dataclasses

from litestar.testing import AsyncTestClient

from app.edge.asgi import create_app
from app.settings import Settings
from tests.factories import make_catalog, sign_up
from tests.web.support import Client, make_site, tomorrow_local


async def test_business_page_lists_services_with_prices_branch_hours_and_products(
    client: Client,
) -> None:
    site = await make_site(client, name="Nile <Hair> & Beauty")
    page = await client.get(f"/b/{site.slug}")
    assert page.status_code == 200, page.text
    html = page.text
    assert "Nile &lt;Hair&gt; &amp; Beauty" in html
    assert "<Hair>" not in html
    for name in ("Haircut", "Yoga class", "Cabin stay", "Kayak rental", "Argan oil", "Zamalek"):
        assert name in html
    assert "EGP350.00" in html
    assert "per night" in html and "per hour" in html
    assert "9:00\u202fAM" in html or "9:00 AM" in html
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert page.headers["referrer-policy"] == "no-referrer"


async def test_unknown_business_is_a_404_page(client: Client) -> None:
    page = await client.get("/b/no-such-business")
    assert page.status_code == 404
    assert "text/html" in page.headers["content-type"]
    assert "We could not find that page" in page.text


async def test_start_page_lists_nothing_private(client: Client) -> None:
    site = await make_site(client, name="Secret Salon")
    page = await client.get("/")
    assert page.status_code == 200
    assert "Secret Salon" not in page.text
    assert site.slug not in page.text
    assert 'href="/sign-in"' in page.text
    signing_in = await client.get("/sign-in", follow_redirects=False)
    assert signing_in.status_code == 303
    assert signing_in.headers["location"] == "/dashboard/sign-in"


async def test_month_view_marks_free_days_and_lists_times_of_a_day(client: Client) -> None:
    site = await make_site(client)
    day = tomorrow_local()
    page = await client.get(
        f"/b/{site.slug}/book",
        params={
            "service": site.services["haircut"],
            "branch": site.branch_id,
            "day": day.isoformat(),
        },
    )
    assert page.status_code == 200, page.text
    assert "free times" in page.text
    assert 'class="slot"' in page.text
    assert "Anyone available" in page.text and "Mona" in page.text


async def test_in_development_the_start_page_links_the_demo_businesses(settings: Settings) -> None:
    development = dataclasses.replace(settings, environment="development")
    async with AsyncTestClient(app=create_app(development)) as dev:
        page = await dev.get("/")
    assert 'href="/b/nile-salon"' in page.text and "Pine Ridge Cabins" in page.text


async def test_a_service_at_two_branches_asks_for_the_branch_first(client: Client) -> None:
    site = await make_site(client)
    headers = site.business.headers
    branch = await client.post(
        "/api/v1/branches", headers=headers, json={"name": "Maadi", "timezone": "Africa/Cairo"}
    )
    maadi = branch.json()["id"]
    resource = await client.post(
        "/api/v1/resources",
        headers=headers,
        json={"name": "Hana", "kind": "staff", "capacity": 1, "branch_ids": [maadi]},
    )
    service = await client.post(
        "/api/v1/services",
        headers=headers,
        json={
            "name": "Massage",
            "policy": "time_slot",
            "price": {"amount_minor": 50_000, "currency": "EGP"},
            "pricing": "fixed",
            "duration_minutes": 60,
            "slot_step_minutes": 60,
            "resource_ids": [site.resources["mona"], resource.json()["id"]],
            "branch_prices": [{"branch_id": maadi, "amount_minor": 60_000, "pricing": "fixed"}],
        },
    )
    assert service.status_code == 201, service.text
    page = await client.get(f"/b/{site.slug}/book", params={"service": service.json()["id"]})
    assert page.status_code == 200, page.text
    assert "Choose a branch" in page.text
    assert "Zamalek" in page.text and "EGP500.00" in page.text
    assert "Maadi" in page.text and "EGP600.00" in page.text
    business = await client.get(f"/b/{site.slug}")
    assert "Maadi: EGP600.00" in business.text


async def test_a_class_asks_for_the_party_and_shows_the_places_left(client: Client) -> None:
    site = await make_site(client)
    day = tomorrow_local()
    params = {"service": site.services["yoga"], "branch": site.branch_id, "day": day.isoformat()}
    page = await client.get(f"/b/{site.slug}/book", params={**params, "party": "2"})
    assert page.status_code == 200, page.text
    assert 'id="party" name="party" type="number"' in page.text and 'max="6"' in page.text
    assert "6 places left" in page.text
    too_many = await client.get(f"/b/{site.slug}/book", params={**params, "party": "7"})
    assert "places left" not in too_many.text
    assert "Nothing is free on this day" in too_many.text


async def test_the_business_page_shows_a_branch_address_with_a_plain_map_link(
    client: Client,
) -> None:
    business = await sign_up(client)
    ids = await make_catalog(client, business)
    patched = await client.patch(
        f"/api/v1/branches/{ids['branch_id']}",
        headers=business.headers,
        json={"address": "12 Shagaret El Dorr St, Zamalek & <Cairo>"},
    )
    assert patched.status_code == 200, patched.text
    page = await client.get(f"/b/{business.slug}")
    assert page.status_code == 200
    assert "12 Shagaret El Dorr St, Zamalek &amp; &lt;Cairo&gt;" in page.text
    assert (
        'href="https://www.openstreetmap.org/search?query=12+Shagaret+El+Dorr+St%2C+Zamalek+'
        '%26+%3CCairo%3E"' in page.text
    )
