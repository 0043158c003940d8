"""A customer books on a phone: by tapping, by keyboard only, and in Arabic."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from babel.dates import format_date
from playwright.async_api import expect

from tests.web.support import Client, make_site, tomorrow_local

SHOTS = Path("/tmp/shots")


async def shot(page: Any, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    if SHOTS.is_dir():
        (SHOTS / path.name).write_bytes(path.read_bytes())


async def open_day(page: Any, day: date) -> None:
    """From the month view: to the day's month (today's or the next), then the day."""
    if day.month != (day - timedelta(days=1)).month:
        await page.get_by_role("link", name="Next month", exact=True).click()
    name = f"{format_date(day, 'full', locale='en')}: free times"
    await page.get_by_role("link", name=name, exact=True).click()


async def test_time_slot_booking_paid_on_the_sandbox_page_ends_confirmed(
    client: Client, phone: Any, tmp_path: Path
) -> None:
    site = await make_site(client, name="Nile Hair & Beauty")
    page = phone
    await page.goto(f"/b/{site.slug}")
    await shot(page, tmp_path, "1-business")
    await page.get_by_role("link", name="Book Haircut").click()
    await open_day(page, tomorrow_local())
    await shot(page, tmp_path, "2-month-and-times")
    await page.get_by_role("link", name=re.compile(r"^11:00")).click()
    await expect(page.get_by_role("heading", name="Your details")).to_be_visible()
    await page.get_by_label("Full name").fill("Layla Hassan")
    await page.get_by_label("Mobile phone").fill("+20 100 000 0000")
    await page.get_by_label("Email").fill("layla@example.com")
    await page.get_by_label("Test payment (sandbox, no real money)").check()
    await shot(page, tmp_path, "3-details")
    await page.get_by_role("button", name=re.compile("^Book for")).click()
    await expect(page.get_by_role("heading", name="Waiting for payment")).to_be_visible()
    await shot(page, tmp_path, "4-waiting")
    # Pay in a second tab: the waiting page, left open, must turn confirmed by itself.
    checkout = await page.get_by_role("link", name=re.compile(r"^Pay .* now$")).get_attribute(
        "href"
    )
    sandbox = await page.context.new_page()
    await sandbox.goto(checkout)
    await sandbox.get_by_role("button", name="Pay").click()
    await expect(sandbox.get_by_text("succeeded")).to_be_visible()
    await sandbox.close()
    await expect(page.get_by_role("heading", name="Your booking is confirmed")).to_be_visible(
        timeout=15_000
    )
    await shot(page, tmp_path, "5-confirmed")


async def tab_to(page: Any, name: str, presses: int = 60) -> None:
    """Press Tab until the focused element's accessible text matches `name` (a regex)."""
    for _ in range(presses):
        await page.keyboard.press("Tab")
        label = await page.evaluate(
            "() => { const e = document.activeElement;"
            " const byLabel = e.labels && e.labels[0] ? e.labels[0].innerText : '';"
            " return (e.getAttribute('aria-label') || byLabel || e.innerText || '').trim(); }"
        )
        if re.search(name, label):
            return
    raise AssertionError(f"Tab never reached {name!r}")


async def follow(page: Any) -> None:
    """Enter on the focused link or button, and wait for the page it leads to."""
    async with page.expect_navigation():
        await page.keyboard.press("Enter")


async def focus_is_visible(page: Any) -> bool:
    style = await page.evaluate(
        "() => { const s = getComputedStyle(document.activeElement);"
        " return [s.outlineStyle, s.outlineWidth]; }"
    )
    return bool(style[0] != "none" and style[1] not in ("0px", ""))


async def test_a_booking_can_be_made_with_the_keyboard_alone(
    client: Client, phone: Any, tmp_path: Path
) -> None:
    site = await make_site(client)
    page = phone
    await page.goto(f"/b/{site.slug}")
    await tab_to(page, "^Book Haircut$")
    assert await focus_is_visible(page)
    await follow(page)
    day = tomorrow_local()
    if day.month != (day - timedelta(days=1)).month:
        await tab_to(page, "^Next month$")
        await follow(page)
    await tab_to(page, re.escape(f"{format_date(day, 'full', locale='en')}: free times"))
    await follow(page)
    await tab_to(page, r"^10:00\sAM")
    assert await focus_is_visible(page)
    await follow(page)
    await tab_to(page, "^Full name$")
    await page.keyboard.type("Omar Farouk")
    await page.keyboard.press("Tab")
    await page.keyboard.type("+20 111 222 3333")
    await page.keyboard.press("Tab")
    await page.keyboard.type("omar@example.com")
    await tab_to(page, "^Test payment")  # the checked radio of the group takes the focus
    await page.keyboard.press("ArrowDown")
    assert await page.get_by_label("Pay at the venue").is_checked()
    await tab_to(page, "^Book for")
    await follow(page)
    await expect(page.get_by_role("heading", name="Your booking is confirmed")).to_be_visible()
    await expect(page.get_by_text("Pay EGP350.00 at the venue.")).to_be_visible()
    await shot(page, tmp_path, "6-keyboard-confirmed")


async def test_the_arabic_site_reads_right_to_left(
    client: Client, phone: Any, tmp_path: Path
) -> None:
    site = await make_site(client, name="صالون النيل")
    page = phone
    await page.goto(f"/b/{site.slug}?lang=ar")
    assert await page.evaluate("document.documentElement.dir") == "rtl"
    assert await page.evaluate("getComputedStyle(document.body).direction") == "rtl"
    await expect(page.get_by_role("heading", name="الخدمات")).to_be_visible()
    brand = await page.get_by_role("link", name="صالون النيل").first.bounding_box()
    languages = await page.get_by_role("navigation", name="اللغة").bounding_box()
    assert brand["x"] > languages["x"]  # the business name starts on the right
    await page.get_by_role("link", name="احجز Haircut").click()
    assert await page.evaluate("document.documentElement.lang") == "ar"  # the cookie kept it
    await expect(page.get_by_role("link", name="الشهر التالي", exact=True)).to_be_visible()
    await page.screenshot(path=str(tmp_path / "arabic-month.png"), full_page=True)
    await page.goto(f"/b/{site.slug}")
    await shot(page, tmp_path, "7-arabic-business")
    assert (tmp_path / "arabic-month.png").stat().st_size > 10_000


async def test_times_also_show_the_customers_own_time_when_their_device_is_elsewhere(
    client: Client, browser: Any, site_url: str
) -> None:
    site = await make_site(client)
    day = tomorrow_local() + timedelta(days=2)
    context = await browser.new_context(
        base_url=site_url, viewport={"width": 390, "height": 844}, timezone_id="Europe/London"
    )
    try:
        page = await context.new_page()
        query = f"service={site.services['haircut']}&branch={site.branch_id}&day={day}"
        await page.goto(f"/b/{site.slug}/book?{query}")
        slot = page.get_by_role("link", name=re.compile(r"^11:00\sAM"))
        await expect(slot).to_contain_text(re.compile(r"9:00\sAM your time"))
        await expect(
            page.get_by_text(re.compile("another timezone \\(Europe/London\\)"))
        ).to_be_visible()
    finally:
        await context.close()
