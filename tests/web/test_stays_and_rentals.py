"""Nightly stays and interval rentals: the choices a day offers, priced as they will be
booked; and one business's catalog is never reachable through another's pages."""

from __future__ import annotations

import re
from datetime import timedelta

from tests.web.support import Client, at, make_site, tomorrow_local


async def test_a_check_in_day_offers_the_allowed_nights_with_their_prices(client: Client) -> None:
    site = await make_site(client)
    day = tomorrow_local() + timedelta(days=3)
    page = await client.get(
        f"/b/{site.slug}/book",
        params={
            "service": site.services["cabin"],
            "branch": site.branch_id,
            "day": day.isoformat(),
        },
    )
    assert page.status_code == 200, page.text
    nights = re.findall(r"(\d) nights <span", page.text)
    assert nights == ["2", "3", "4", "5"]  # min_nights 2, max_nights 5
    assert "EGP2,000.00" in page.text and "EGP5,000.00" in page.text
    stay = re.search(r'href="(/b/[^"]+/book/details\?[^"]+)">2 nights', page.text)
    assert stay
    details = await client.get(stay.group(1).replace("&amp;", "&"))
    assert details.status_code == 200, details.text
    assert "Check-in" in details.text and "Check-out" in details.text
    assert "Book for EGP2,000.00" in details.text


async def test_a_rental_start_offers_lengths_up_to_the_maximum_priced_per_hour(
    client: Client,
) -> None:
    site = await make_site(client)
    day = tomorrow_local() + timedelta(days=3)
    start = at(day, 10)
    page = await client.get(
        f"/b/{site.slug}/book",
        params={
            "service": site.services["kayak"],
            "branch": site.branch_id,
            "day": day.isoformat(),
            "at": start.isoformat(),
            "party": "2",
        },
    )
    assert page.status_code == 200, page.text
    assert re.findall(r'class="slot" href="[^"]+">([^<]+) <span', page.text) == [
        "1 hour",
        "1 h 30 min",
        "2 hours",
        "2 h 30 min",
        "3 hours",
    ]
    # 2 people x 3 started hours x EGP 50 for 2 h 30 min
    assert 'until 12:30\u202fPM · <span class="money">EGP300.00</span>' in page.text


async def test_another_businesss_service_is_not_found_through_this_slug(client: Client) -> None:
    ours = await make_site(client)
    theirs = await make_site(client)
    page = await client.get(
        f"/b/{ours.slug}/book",
        params={"service": theirs.services["haircut"], "branch": theirs.branch_id},
    )
    assert page.status_code == 404
    page = await client.get(
        f"/b/{ours.slug}/book",
        params={"service": theirs.services["haircut"], "branch": ours.branch_id},
    )
    assert page.status_code == 404
    details = await client.get(
        f"/b/{ours.slug}/book/details",
        params={
            "service": theirs.services["haircut"],
            "branch": theirs.branch_id,
            "start": at(tomorrow_local(), 10).isoformat(),
        },
    )
    assert details.status_code == 404
    business = await client.get(f"/b/{ours.slug}")
    assert theirs.services["haircut"] not in business.text
