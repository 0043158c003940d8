"""The booking page in a browser: an owner on a laptop reads a paid booking's money and
timeline and refunds part of it by keyboard; the same page on a phone, in Arabic too."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect

from tests.browser.test_dashboard import DESKTOP, sign_in
from tests.checkout.test_money_path import pay_on_sandbox_page
from tests.web.support import Client, at, make_site, tomorrow_local

SHOTS = Path("/tmp/shots")


async def shot(page: Any, name: str) -> None:
    if SHOTS.is_dir():
        await page.screenshot(path=str(SHOTS / f"booking-{name}.png"), full_page=True)


@pytest.fixture
async def laptop(browser: Any, site_url: str) -> AsyncIterator[Any]:
    context = await browser.new_context(
        base_url=site_url, viewport=DESKTOP, locale="en-US", timezone_id="Africa/Cairo"
    )
    context.set_default_timeout(10_000)
    yield await context.new_page()
    await context.close()


async def _paid_booking(client: Client) -> tuple[Any, str]:
    site = await make_site(client)
    response = await client.post(
        "/api/v1/bookings",
        headers=site.business.headers,
        json={
            "service_id": site.services["haircut"],
            "branch_id": site.branch_id,
            "resource_id": site.resources["mona"],
            "start": at(tomorrow_local() + timedelta(days=2), 12).isoformat(),
            "customer": {"name": "Layla Hassan", "phone": "+201001112223"},
            "payment": {"provider": "sandbox"},
        },
    )
    assert response.status_code == 201, response.text
    booking = response.json()
    await pay_on_sandbox_page(client, booking["payment"]["checkout_url"])
    return site, booking["id"]


async def test_an_owner_reads_the_money_and_refunds_by_keyboard(
    client: Client, laptop: Any
) -> None:
    site, booking_id = await _paid_booking(client)
    page = laptop
    await sign_in(page, site.business.email)
    await page.goto(f"/dashboard/bookings/{booking_id}")
    await expect(page.get_by_text("Refunds", exact=False).first).to_be_visible()
    ledger = page.get_by_role("table", name="Ledger entries of this booking")
    await expect(ledger).to_be_visible()
    await expect(ledger.get_by_text("clearing:sandbox").first).to_be_visible()
    await expect(page.get_by_role("heading", name="Timeline")).to_be_visible()
    await shot(page, "1-laptop")

    await page.get_by_label("Amount to refund").focus()
    await page.keyboard.type("50")
    await page.keyboard.press("Tab")  # reason
    await page.keyboard.type("late start")
    await page.keyboard.press("Tab")
    refund = page.get_by_role("button", name="Refund", exact=True)
    await expect(refund).to_be_focused()
    outline = await refund.evaluate("b => getComputedStyle(b).outlineStyle")
    assert outline != "none"  # a visible focus ring
    await shot(page, "2-refund-focused")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Timeline")).to_be_visible()
    assert await ledger.get_by_text("refund", exact=True).count() >= 1
    await shot(page, "3-after-refund")


async def test_the_booking_page_on_a_phone_in_arabic(client: Client, phone: Any) -> None:
    site, booking_id = await _paid_booking(client)
    await sign_in(phone, site.business.email)
    await phone.goto(f"/dashboard/bookings/{booking_id}")
    width = await phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390 + 1  # the table scrolls in its own box; the page does not
    await shot(phone, "4-phone")
    await phone.goto(f"/dashboard/bookings/{booking_id}?lang=ar")
    assert await phone.evaluate("document.documentElement.dir") == "rtl"
    await expect(phone.get_by_role("heading", name="السجل الزمني")).to_be_visible()
    await shot(phone, "5-phone-ar")
