"""The customers and audit pages served as HTML, without JavaScript: the list's GET search,
a customer's page, the new-booking form's search and pick by links, roles, and the audit
log's filters."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from tests.web.dashboard.support import hidden_value, sign_in
from tests.web.dashboard.test_session import add_member
from tests.web.support import Client, Site, at, make_site, tomorrow_local


@pytest.fixture(autouse=True)
async def signed_out(client: Client) -> AsyncIterator[None]:
    client.cookies.clear()
    yield
    client.cookies.clear()


async def book(
    client: Client, site: Site, hour: int, customer: dict[str, str], *, public: bool = False
) -> str:
    body: dict[str, Any] = {
        "service_id": site.services["haircut"],
        "branch_id": site.branch_id,
        "resource_id": site.resources["mona"],
        "start": at(tomorrow_local(), hour).isoformat(),
        "customer": customer,
        "payment": {"provider": "cash"},
    }
    if public:
        response = await client.post(f"/public/{site.slug}/bookings", json=body)
    else:
        response = await client.post("/api/v1/bookings", json=body, headers=site.business.headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


LAYLA = {"name": "Layla Hassan", "phone": "+20 100 000 0001", "email": "layla@example.com"}
OMAR = {"name": "Omar Farouk", "phone": "+20 100 000 0002"}


async def test_customers_page_searches_with_a_get_form_and_opens_a_customer(
    client: Client,
) -> None:
    site = await make_site(client)
    first = await book(client, site, 10, LAYLA)
    await book(client, site, 12, {"name": "Layla", "phone": "0020 100 000 0001"}, public=True)
    await book(client, site, 14, OMAR)
    await sign_in(client, site.business.email)
    everyone = (await client.get("/dashboard/customers")).text
    assert ">Layla Hassan</a>" in everyone and ">Omar Farouk</a>" in everyone
    assert ">Customers</a>" in everyone and ">Audit log</a>" in everyone
    found = await client.get("/dashboard/customers", params={"q": "LAYLA"})
    assert ">Layla Hassan</a>" in found.text and "Omar Farouk" not in found.text
    by_phone = await client.get("/dashboard/customers", params={"q": "0002"})
    assert "Omar Farouk" in by_phone.text and "Layla Hassan" not in by_phone.text
    link = re.search(r'href="(/dashboard/customers/[0-9a-f-]{36})">Layla Hassan', found.text)
    assert link is not None
    page = await client.get(link.group(1))
    assert page.status_code == 200
    assert f'href="/dashboard/bookings/{first}"' in page.text
    assert re.search(r"<dt>Bookings</dt><dd>2</dd>", page.text)
    assert re.search(r"<dt>No-shows</dt><dd>0</dd>", page.text)
    assert "Lifetime value" in page.text
    long = await client.get("/dashboard/customers", params={"q": "x" * 300})
    assert long.status_code == 200
    other = await make_site(client)
    theirs = await book(client, other, 10, OMAR)
    assert theirs
    their_customer = (await client.get("/api/v1/customers", headers=other.business.headers)).json()[
        "items"
    ][0]["id"]
    assert (await client.get(f"/dashboard/customers/{their_customer}")).status_code == 404


async def test_new_booking_form_finds_and_picks_a_customer_without_javascript(
    client: Client,
) -> None:
    site = await make_site(client)
    await book(client, site, 10, LAYLA)
    await sign_in(client, site.business.email)
    start = (at(tomorrow_local(), 13)).strftime("%Y-%m-%dT%H:%M")
    found = await client.get(
        "/dashboard/bookings/new",
        params={"resource": site.resources["mona"], "start": start, "find": "layla"},
    )
    assert found.status_code == 200
    pick = re.search(r'href="(/dashboard/bookings/new\?[^"]*customer=[^"]+)"', found.text)
    assert pick is not None
    picked = await client.get(html.unescape(pick.group(1)))
    assert 'id="name" name="name" value="Layla Hassan"' in picked.text
    assert 'value="+20 100 000 0001"' in picked.text
    assert "Existing customer picked" in picked.text
    nobody = await client.get("/dashboard/bookings/new", params={"find": "zzz"})
    assert "No customer matches" in nobody.text
    placed = await client.post(
        "/dashboard/bookings/new",
        data={
            "_csrf": hidden_value(picked.text, "_csrf"),
            "resource": site.resources["mona"],
            "service": site.services["haircut"],
            "start": start,
            "name": "Layla Hassan",
            "phone": "+20 100 000 0001",
            "email": "layla@example.com",
            "payment": "cash",
        },
        follow_redirects=False,
    )
    assert placed.status_code == 303, placed.text
    listed = (await client.get("/api/v1/customers", headers=site.business.headers)).json()
    assert [(c["name"], c["bookings_count"]) for c in listed["items"]] == [("Layla Hassan", 2)]


async def test_staff_see_customers_but_no_audit_log(client: Client) -> None:
    site = await make_site(client)
    await book(client, site, 10, LAYLA)
    email, _ = await add_member(client, site.business, "staff")
    await sign_in(client, email)
    customers = await client.get("/dashboard/customers")
    assert customers.status_code == 200 and ">Layla Hassan</a>" in customers.text
    assert ">Customers</a>" in customers.text and ">Audit log</a>" not in customers.text
    assert (await client.get("/dashboard/audit")).status_code == 403
    fetched = await client.get("/dashboard/api/customers", params={"q": "lay"})
    assert fetched.status_code == 200
    assert [c["name"] for c in fetched.json()["items"]] == ["Layla Hassan"]


async def test_audit_page_filters_by_what_who_and_when(client: Client) -> None:
    site = await make_site(client)
    mine = await book(client, site, 10, LAYLA)
    theirs = await book(client, site, 12, OMAR, public=True)
    cancelled = await client.post(
        f"/api/v1/bookings/{mine}/cancel", headers=site.business.headers, json={}
    )
    assert cancelled.status_code == 200
    await sign_in(client, site.business.email)

    async def rows(**params: str) -> list[str]:
        response = await client.get("/dashboard/audit", params=params)
        assert response.status_code == 200, response.text
        body = response.text.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
        found = re.findall(r"<tr>.*?</tr>", body, re.S)
        return [r for r in found if "Nothing recorded matches these filters." not in r]

    bookings = await rows(entity_type="booking", actor="", **{"from": "", "to": "x"})
    assert any("booking.cancelled" in r and f"/dashboard/bookings/{mine}" in r for r in bookings)
    assert any("confirmed → cancelled" in r for r in bookings)
    public = await rows(actor="public")
    assert len(public) == 1 and f"/dashboard/bookings/{theirs}" in public[0]
    assert "A customer (booking site)" in public[0]
    owner = await rows(actor=str(uuid.UUID(int=0)))
    assert owner == []
    today = tomorrow_local() - timedelta(days=1)
    assert len(await rows(**{"from": str(today), "to": str(today)})) >= 3
    assert await rows(**{"from": str(tomorrow_local())}) == []
    assert any(site.business.email in r for r in await rows(entity_type="booking", to=str(today)))
    refused = await client.get("/dashboard/audit", params={"cursor": "nope"})
    assert refused.status_code in (400, 422)
    api = await client.get(
        "/api/v1/audit",
        params={"actor_kind": "public", "from": str(today)},
        headers=site.business.headers,
    )
    assert api.status_code == 200 and [e["entity_id"] for e in api.json()["items"]] == [theirs]
