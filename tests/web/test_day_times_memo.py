"""The booking page remembers a month's free days and a day's times while the calendar rows
they came from are unchanged: what it shows is what a fresh computation shows, and a time
taken in between is never offered again."""

from __future__ import annotations

from tests.web.support import Client, Site, at, details_form, make_site, tomorrow_local


async def _day_page(client: Client, site: Site) -> str:
    page = await client.get(
        f"/b/{site.slug}/book",
        params={
            "service": site.services["haircut"],
            "branch": site.branch_id,
            "day": tomorrow_local().isoformat(),
        },
    )
    assert page.status_code == 200, page.text
    return page.text


async def test_a_remembered_day_page_shows_what_the_first_computation_showed(
    client: Client,
) -> None:
    site = await make_site(client)
    first = await _day_page(client, site)  # computes the month and remembers it
    again = await _day_page(client, site)  # free days remembered, the day computed alone
    once_more = await _day_page(client, site)  # both remembered
    assert 'class="slot"' in first
    assert again == first
    assert once_more == first


async def test_a_time_taken_after_the_page_was_remembered_is_no_longer_offered(
    client: Client,
) -> None:
    site = await make_site(client)
    for _ in range(3):
        assert "1:00\u202fPM</time>" in await _day_page(client, site)
    start = at(tomorrow_local(), 13)
    for person, key in ((site.resources["mona"], "a"), (site.resources["omar"], "b")):
        placed = await client.post(
            f"/b/{site.slug}/book/details",
            data=details_form(site, start, who=person, idempotency_key=key),
            follow_redirects=False,
        )
        assert placed.status_code == 303, placed.text
        assert "taken=1" not in placed.headers["location"]
    page = await _day_page(client, site)
    assert "1:00\u202fPM</time>" not in page
    assert "2:00\u202fPM</time>" in page
