"""The calendar and bookings pages, server-rendered: blocks by resource and status, a new
booking on free time, moves through the session's JSON endpoint, the month's occupancy."""

from __future__ import annotations

import re
from datetime import datetime

from tests.web.dashboard.support import sign_in
from tests.web.support import Client, Site, at, make_site, tomorrow_local


async def _book(client: Client, site: Site, hour: int, name: str, provider: str = "cash") -> str:
    response = await client.post(
        "/api/v1/bookings",
        headers=site.business.headers,
        json={
            "service_id": site.services["haircut"],
            "branch_id": site.branch_id,
            "resource_id": site.resources["mona"],
            "start": at(tomorrow_local(), hour).isoformat(),
            "customer": {"name": name, "phone": "+201001112223"},
            "payment": {"provider": provider},
        },
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def test_week_shows_bookings_by_resource_with_holds_marked_in_words(
    client: Client,
) -> None:
    site = await make_site(client)
    held = await _book(client, site, 10, "Layla Hassan", provider="sandbox")
    confirmed = await _book(client, site, 12, "Sara Nabil")
    await sign_in(client, site.business.email)
    page = await client.get(f"/dashboard/calendar?view=week&date={tomorrow_local()}")
    assert page.status_code == 200
    html = page.text
    hold = re.search(
        rf'<a id="b-{held}-[^"]*" class="block st-pending_payment[^"]*".*?</a>', html, re.S
    )
    assert hold is not None
    assert "Awaiting payment" in hold.group(0)
    assert "at-9 span-4" in hold.group(0)  # 10:00 is the 9th row from 08:00, one hour = 4 rows
    sold = re.search(
        rf'<a id="b-{confirmed}-[^"]*" class="block st-confirmed[^"]*".*?</a>', html, re.S
    )
    assert sold is not None and "Confirmed" in sold.group(0)
    assert 'aria-label="Mona, ' in html and 'aria-label="Omar, ' in html
    day = await client.get(
        f"/dashboard/calendar?view=day&date={tomorrow_local()}&resource={site.resources['omar']}"
    )
    assert "Layla Hassan" not in day.text  # filtered to Omar


async def test_free_time_opens_a_form_that_places_the_booking(client: Client) -> None:
    site = await make_site(client)
    csrf = await sign_in(client, site.business.email)
    start = f"{tomorrow_local().isoformat()}T15:00"
    page = await client.get(f"/dashboard/calendar?view=day&date={tomorrow_local()}")
    assert f"resource={site.resources['mona']}&amp;start={start}" in page.text
    form = await client.get(
        f"/dashboard/bookings/new?resource={site.resources['mona']}&start={start}"
    )
    assert form.status_code == 200
    assert f'value="{start}"' in form.text
    fields = {
        "resource": site.resources["mona"],
        "service": site.services["haircut"],
        "start": start,
        "name": "Walk-in Omar",
        "phone": "+20 100 000 0000",
        "payment": "cash",
    }
    refused = await client.post("/dashboard/bookings/new", data=fields)
    assert refused.status_code == 403
    placed = await client.post(
        "/dashboard/bookings/new", data={**fields, "_csrf": csrf}, follow_redirects=False
    )
    assert placed.status_code == 303, placed.text
    booking_id = placed.headers["location"].split("/")[-1].split("?")[0]
    api = await client.get(f"/api/v1/bookings/{booking_id}", headers=site.business.headers)
    assert api.json()["customer"]["name"] == "Walk-in Omar"
    assert datetime.fromisoformat(api.json()["start"]) == at(tomorrow_local(), 15)
    again = await client.post("/dashboard/bookings/new", data={**fields, "_csrf": csrf})
    assert again.status_code == 409
    assert "That time is not free" in again.text


async def test_sandbox_booking_shows_its_payment_link(client: Client) -> None:
    site = await make_site(client)
    csrf = await sign_in(client, site.business.email)
    response = await client.post(
        "/dashboard/bookings/new",
        data={
            "_csrf": csrf,
            "resource": site.resources["omar"],
            "service": site.services["haircut"],
            "start": f"{tomorrow_local().isoformat()}T11:00",
            "name": "Sara",
            "payment": "sandbox",
        },
    )
    assert response.status_code == 200
    assert "Payment link" in response.text
    assert "Awaiting payment" in response.text


async def test_the_json_move_reschedules_or_answers_why_not(client: Client) -> None:
    site = await make_site(client)
    first = await _book(client, site, 10, "Layla Hassan")
    await _book(client, site, 12, "Sara Nabil")
    csrf = await sign_in(client, site.business.email)
    url = f"/dashboard/api/bookings/{first}/reschedule"
    headers = {"X-CSRF-Token": csrf}
    taken = await client.post(
        url, json={"start": at(tomorrow_local(), 12).isoformat()}, headers=headers
    )
    assert taken.status_code == 409
    assert taken.json()["type"] == "slot_unavailable"
    moved = await client.post(
        url,
        json={
            "start": at(tomorrow_local(), 14).isoformat(),
            "resource_id": site.resources["omar"],
        },
        headers=headers,
    )
    assert moved.status_code == 200, moved.text
    api = await client.get(f"/api/v1/bookings/{first}", headers=site.business.headers)
    assert datetime.fromisoformat(api.json()["start"]) == at(tomorrow_local(), 14)
    assert api.json()["resource_id"] == site.resources["omar"]


async def test_month_shows_counts_and_occupancy_and_bookings_list(client: Client) -> None:
    site = await make_site(client)
    await _book(client, site, 10, "Layla Hassan")
    await sign_in(client, site.business.email)
    month = await client.get(f"/dashboard/calendar?view=month&date={tomorrow_local()}")
    assert month.status_code == 200
    assert "1 booking<" in month.text
    assert "% full" in month.text
    listed = await client.get(f"/dashboard/bookings?from={tomorrow_local()}")
    assert "Layla Hassan" in listed.text
    detail_link = re.search(r'href="(/dashboard/bookings/[0-9a-f-]{36})"', listed.text)
    assert detail_link is not None
    detail = await client.get(detail_link.group(1))
    assert "Move booking" in detail.text and "Cancel booking" in detail.text
