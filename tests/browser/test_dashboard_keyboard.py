"""The calendar by keyboard alone (no mouse anywhere): an owner tabs to a booking and drags it
with Alt held and the arrow keys — later, to the next day, to another resource, a rental
longer — and the database has each new time; a move onto another booking is refused, the
block goes back and the reason is read out, and Escape puts a move back unasked; Enter opens
the booking; free time is one tab stop whose arrow keys choose where a new booking goes.
Screenshots: tests/browser/artifacts (LOOK at them)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.browser.test_dashboard import DESKTOP, block, place
from tests.factories import PASSWORD
from tests.web.support import CAIRO, Client, at, make_site, tomorrow_local

ARTIFACTS = Path(__file__).parent / "artifacts"
FOCUSED = "el => el === document.activeElement"
DASH = "\u2013"  # between a block's two times


async def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"keys-{name}.png"))


@pytest.fixture
async def desk(browser: Any, site_url: str) -> AsyncIterator[Any]:
    context = await browser.new_context(
        base_url=site_url, viewport=DESKTOP, locale="en-US", timezone_id="Africa/Cairo"
    )
    context.set_default_timeout(10_000)
    yield await context.new_page()
    await context.close()


async def sign_in_by_keyboard(page: Any, email: str) -> None:
    await page.goto("/dashboard/calendar")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Calendar", exact=True)).to_be_visible()


async def tab_to(page: Any, target: Any, limit: int = 80) -> None:
    """Tab forward until `target` has the focus, as a keyboard user gets there."""
    for _ in range(limit):
        await page.keyboard.press("Tab")
        if await target.count() == 1 and await target.evaluate(FOCUSED):
            return
    raise AssertionError(f"{limit} presses of Tab never reached {target}")


async def focused_free(page: Any) -> str:
    """The href of the free-time link that has the focus."""
    href = await page.evaluate(
        "() => document.activeElement.classList.contains('free')"
        " ? document.activeElement.getAttribute('href') : ''"
    )
    assert href, "the focus is not on free time"
    return str(href)


async def stored(owner: AsyncEngine, booking_id: str) -> tuple[datetime, datetime, str]:
    async with owner.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT starts_at, ends_at, resource_id FROM bookings WHERE id = :id"),
                {"id": booking_id},
            )
        ).one()
    return row[0].astimezone(CAIRO), row[1].astimezone(CAIRO), str(row[2])


async def place_in(item: Any, column: Any) -> tuple[int, int]:
    """Where a block is drawn inside its column, in whole pixels."""
    box, origin = await item.bounding_box(), await column.bounding_box()
    return round(box["x"] - origin["x"]), round(box["y"] - origin["y"])


def not_last_of_week(day: date) -> date:
    """A day whose week also has the next day (the week view starts on Monday)."""
    return day + timedelta(days=1) if day.weekday() == 6 else day


def minutes(day: date, hour: int, minute: int) -> datetime:
    return at(day, hour) + timedelta(minutes=minute)


async def drawn_box(locator: Any) -> dict[str, float]:
    """The block's box once drawn: right after a move the calendar redraws it, and for a moment
    the element the locator finds has no box yet (bounding_box() answers None)."""
    for _ in range(50):
        await locator.wait_for(state="visible")
        box = await locator.bounding_box()
        if box is not None:
            return dict(box)
        await asyncio.sleep(0.05)
    raise AssertionError("the block was never drawn")


async def test_an_owner_moves_a_booking_with_the_keyboard_and_the_database_has_each_new_time(
    client: Client, desk: Any, owner_engine: AsyncEngine
) -> None:
    site = await make_site(client)
    day = not_last_of_week(tomorrow_local())
    booking = await place(client, site, day, 10, "Layla Hassan")
    page = desk
    await sign_in_by_keyboard(page, site.business.email)
    await page.goto(f"/dashboard/calendar?view=week&date={day.isoformat()}")
    layla = block(page, "Layla Hassan")
    await tab_to(page, layla)
    outline = await layla.evaluate("b => getComputedStyle(b).outlineStyle")
    assert outline != "none"  # a visible focus ring
    await shot(page, "1-week-booking-focused")
    status = page.get_by_role("status")

    # Alt held down is the mouse button held down: four rows later (the haircut is booked by
    # the hour), then let go.
    await page.keyboard.down("Alt")
    for _ in range(4):
        await page.keyboard.press("ArrowDown")
    await expect(status).to_contain_text(re.compile(rf"Moving to 11:00\sAM{DASH}12:00\sPM, Mona"))
    await expect(layla).to_contain_text(re.compile(rf"11:00\sAM{DASH}12:00\sPM"))
    await shot(page, "2-week-moving")
    await page.keyboard.up("Alt")
    await expect(status).to_contain_text(
        re.compile(rf"Booking moved: 11:00\sAM{DASH}12:00\sPM, Mona")
    )
    assert await stored(owner_engine, booking) == (
        at(day, 11),
        at(day, 12),
        site.resources["mona"],
    )
    await expect(layla).to_be_focused()  # also after the calendar is fetched again
    await shot(page, "3-week-moved")

    await page.keyboard.press("Alt+ArrowRight")  # the week: the same resource, the next day
    following = day + timedelta(days=1)
    await expect(status).to_contain_text(
        re.compile(rf"Booking moved: .*, Mona, \w+, \w+ {following.day}, ")
    )
    assert await stored(owner_engine, booking) == (
        at(following, 11),
        at(following, 12),
        site.resources["mona"],
    )
    await expect(layla).to_be_focused()

    await page.goto(f"/dashboard/calendar?view=day&date={following.isoformat()}")
    await tab_to(page, layla)
    await page.keyboard.press("Alt+ArrowRight")  # a day: the next resource
    await expect(status).to_contain_text(re.compile(r"Booking moved: .*, Omar, "))
    assert await stored(owner_engine, booking) == (
        at(following, 11),
        at(following, 12),
        site.resources["omar"],
    )
    omar = page.get_by_role("group", name=re.compile(r"^Omar,"))
    await expect(omar.get_by_role("link", name=re.compile("Layla Hassan"))).to_be_focused()
    await shot(page, "4-day-moved-to-omar")


async def test_a_rental_is_made_longer_with_alt_shift_and_the_arrows(
    client: Client, desk: Any, owner_engine: AsyncEngine
) -> None:
    site = await make_site(client)
    day = tomorrow_local()
    response = await client.post(
        "/api/v1/bookings",
        headers=site.business.headers,
        json={
            "service_id": site.services["kayak"],
            "branch_id": site.branch_id,
            "resource_id": site.resources["kayaks"],
            "start": at(day, 10).isoformat(),
            "end": at(day, 11).isoformat(),
            "customer": {"name": "Karim Said", "phone": "+201001112224"},
            "payment": {"provider": "cash"},
        },
    )
    assert response.status_code == 201, response.text
    booking = response.json()["id"]
    page = desk
    await sign_in_by_keyboard(page, site.business.email)
    await page.goto(f"/dashboard/calendar?view=day&date={day.isoformat()}")
    karim = block(page, "Karim Said")
    await tab_to(page, karim)
    before = await drawn_box(karim)
    await page.keyboard.down("Alt")
    await page.keyboard.down("Shift")
    await page.keyboard.press("ArrowDown")
    await page.keyboard.press("ArrowDown")
    await page.keyboard.up("Shift")
    await page.keyboard.up("Alt")
    await expect(page.get_by_role("status")).to_contain_text(
        re.compile(rf"Booking moved: 10:00\sAM{DASH}11:30\sAM, Kayaks")
    )
    assert await stored(owner_engine, booking) == (
        at(day, 10),
        minutes(day, 11, 30),
        site.resources["kayaks"],
    )
    await expect(karim).to_be_focused()
    after = await drawn_box(karim)
    assert after["height"] > before["height"] * 1.4, "drawn longer"


async def test_a_refused_keyboard_move_goes_back_and_the_reason_is_read_out(
    client: Client, desk: Any, owner_engine: AsyncEngine
) -> None:
    site = await make_site(client)
    day = tomorrow_local()
    booking = await place(client, site, day, 10, "Layla Hassan")
    await place(client, site, day, 11, "Mariam Adel")
    page = desk
    await sign_in_by_keyboard(page, site.business.email)
    await page.goto(f"/dashboard/calendar?view=day&date={day.isoformat()}")
    layla = block(page, "Layla Hassan")
    mona = page.get_by_role("group", name=re.compile(r"^Mona,"))
    await tab_to(page, layla)
    before = await place_in(layla, mona)
    status = page.get_by_role("status")

    await page.keyboard.down("Alt")
    for _ in range(4):  # onto Mariam's 11:00
        await page.keyboard.press("ArrowDown")
    await page.keyboard.up("Alt")
    await expect(status).to_contain_text("Could not move the booking:")
    assert (await status.get_attribute("aria-live")) == "polite"
    reason = (await status.inner_text()).split(":", 1)[1].strip()
    assert reason == "This time is no longer available"  # the server's own words
    await expect(layla).to_be_focused()
    await expect(layla).to_contain_text(re.compile(rf"^10:00\sAM{DASH}11:00\sAM"))
    assert await place_in(layla, mona) == before, "snaps back"
    await shot(page, "5-refused")
    assert await stored(owner_engine, booking) == (
        at(day, 10),
        at(day, 11),
        site.resources["mona"],
    )

    # Escape while Alt is still held puts it back and asks the server nothing.
    await page.keyboard.down("Alt")
    await page.keyboard.press("ArrowRight")
    await expect(status).to_contain_text("Moving to")
    await page.keyboard.press("Escape")
    await page.keyboard.up("Alt")
    await expect(status).to_have_text("")
    await expect(layla).to_be_focused()
    assert await place_in(layla, mona) == before
    assert (await stored(owner_engine, booking))[2] == site.resources["mona"]


async def test_enter_on_a_booking_opens_its_page(client: Client, desk: Any) -> None:
    site = await make_site(client)
    day = tomorrow_local()
    booking = await place(client, site, day, 10, "Layla Hassan")
    page = desk
    await sign_in_by_keyboard(page, site.business.email)
    await page.goto(f"/dashboard/calendar?view=week&date={day.isoformat()}")
    # The keys are listed above the calendar, one Enter away.
    await tab_to(page, page.get_by_text("Keyboard", exact=True))
    await page.keyboard.press("Enter")
    await expect(page.get_by_text("Move the booking 15 minutes earlier or later.")).to_be_visible()
    await shot(page, "7-keys-listed")
    await tab_to(page, block(page, "Layla Hassan"))
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(re.compile(rf"/dashboard/bookings/{booking}$"))
    await expect(page.get_by_text("Layla Hassan").first).to_be_visible()


async def test_an_owner_adds_a_booking_on_free_time_with_the_keyboard(
    client: Client, desk: Any, owner_engine: AsyncEngine
) -> None:
    site = await make_site(client)
    day = tomorrow_local()
    await place(client, site, day, 10, "Layla Hassan")
    page = desk
    await sign_in_by_keyboard(page, site.business.email)
    await page.goto(f"/dashboard/calendar?view=day&date={day.isoformat()}")
    free = page.locator('.free[tabindex="0"]')
    await expect(free).to_have_count(1)  # free time is one tab stop, not hundreds
    await tab_to(page, free)
    assert f"resource={site.resources['mona']}" in await focused_free(page)
    assert (await focused_free(page)).endswith(f"start={day.isoformat()}T08:00")
    for _ in range(6):
        await page.keyboard.press("ArrowDown")
    await page.keyboard.press("ArrowRight")
    href = await focused_free(page)
    assert f"resource={site.resources['omar']}" in href
    assert href.endswith(f"start={day.isoformat()}T14:00")
    await expect(page.locator('.free[tabindex="0"]')).to_have_count(1)
    await shot(page, "6-free-time-focused")

    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="New booking")).to_be_visible()
    await expect(page.get_by_label("With")).to_have_value(site.resources["omar"])
    await expect(page.get_by_label("Starts")).to_have_value(f"{day.isoformat()}T14:00")
    await page.get_by_label("Service").select_option(site.services["haircut"])
    await page.get_by_label("Customer's name").fill("Nour Ali")
    await page.get_by_label("Customer's phone").fill("+201001234567")
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(re.compile(r"/dashboard/bookings/[0-9a-f-]+\?placed=1$"))
    booking = page.url.split("/dashboard/bookings/")[1].split("?")[0]
    assert await stored(owner_engine, booking) == (
        at(day, 14),
        at(day, 15),
        site.resources["omar"],
    )


async def test_in_arabic_alt_left_moves_to_the_next_resource_on_the_left(
    client: Client, desk: Any, owner_engine: AsyncEngine
) -> None:
    site = await make_site(client)
    day = tomorrow_local()
    booking = await place(client, site, day, 10, "Layla Hassan")
    page = desk
    await sign_in_by_keyboard(page, site.business.email)
    await page.goto(f"/dashboard/calendar?view=day&date={day.isoformat()}&lang=ar")
    assert await page.evaluate("document.documentElement.dir") == "rtl"
    layla = block(page, "Layla Hassan")
    await tab_to(page, layla)
    before = await drawn_box(layla)
    await page.keyboard.press("Alt+ArrowLeft")  # right to left: the next column is on the left
    await expect(page.get_by_role("status")).to_contain_text("تم نقل الحجز")
    assert (await stored(owner_engine, booking))[2] == site.resources["omar"]
    await expect(layla).to_be_focused()
    assert (await drawn_box(layla))["x"] < before["x"]
    await shot(page, "8-arabic-moved")
