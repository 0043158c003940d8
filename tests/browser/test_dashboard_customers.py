"""Customers and the audit log in Chromium: an owner searches customers and opens one, picks
a customer on the new-booking form as they type, filters the audit log; staff see Customers
but get a 403 on the audit log and have no link to it. Screenshots in tests/browser/artifacts."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect

from tests.browser.conftest import PHONE
from tests.browser.test_dashboard import DESKTOP, sign_in
from tests.web.dashboard.test_session import add_member
from tests.web.support import Client, Site, at, make_site, tomorrow_local

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


async def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"customers-{name}.png"), full_page=True)


@pytest.fixture
async def desk(browser: Any, site_url: str) -> AsyncIterator[Any]:
    context = await browser.new_context(
        base_url=site_url, viewport=DESKTOP, locale="en-US", timezone_id="Africa/Cairo"
    )
    context.set_default_timeout(10_000)
    page = await context.new_page()
    yield page
    await context.close()


async def book(
    client: Client, site: Site, hour: int, customer: dict[str, str], *, public: bool = False
) -> str:
    body = {
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


async def customers_site(client: Client) -> Site:
    site = await make_site(client, name="Nile Hair & Beauty")
    await book(client, site, 10, {"name": "Layla Hassan", "phone": "+20 100 000 0001"})
    await book(client, site, 11, {"name": "Layla Hassan", "phone": "0020 100 000 0001"})
    await book(client, site, 12, {"name": "Omar Farouk", "email": "omar@example.com"}, public=True)
    await book(client, site, 14, {"name": "Sara Nabil", "phone": "+20 122 777 0003"})
    return site


async def test_owner_searches_customers_and_opens_one(client: Client, desk: Any) -> None:
    site = await customers_site(client)
    page = desk
    await sign_in(page, site.business.email)
    await page.get_by_role("link", name="Customers", exact=True).click()
    await expect(page.get_by_role("heading", name="Customers", exact=True)).to_be_visible()
    await expect(page.get_by_role("link", name="Sara Nabil")).to_be_visible()
    await shot(page, "1-list")
    await page.get_by_label("Name, email or phone").fill("layla")
    await page.get_by_role("button", name="Search").click()
    await expect(page.get_by_role("link", name="Sara Nabil")).to_have_count(0)
    await expect(page.get_by_role("link", name="Layla Hassan")).to_be_visible()
    await shot(page, "2-search")
    await page.get_by_role("link", name="Layla Hassan").click()
    await expect(page.get_by_role("heading", name="Layla Hassan")).to_be_visible()
    history = page.get_by_role("table", name="Booking history")
    await expect(history.get_by_role("row")).to_have_count(3)  # header + two bookings
    await expect(page.get_by_text("Lifetime value", exact=True)).to_be_visible()
    await shot(page, "3-customer")
    # On a phone, in Arabic (right to left).
    await page.set_viewport_size(PHONE)
    await page.goto(page.url + "?lang=ar")
    await expect(page.get_by_text("القيمة الإجمالية للعميل", exact=True)).to_be_visible()
    assert await page.locator("html").get_attribute("dir") == "rtl"
    await shot(page, "3-customer-ar-phone")


async def test_new_booking_form_picks_a_customer_as_you_type(client: Client, desk: Any) -> None:
    site = await customers_site(client)
    page = desk
    await sign_in(page, site.business.email)
    await page.goto("/dashboard/bookings/new")
    await page.get_by_label("Find a customer").fill("omar@")
    pick = page.get_by_role("button", name=re.compile("^Omar Farouk"))
    await pick.click()
    await expect(page.get_by_label("Customer's name")).to_have_value("Omar Farouk")
    await expect(page.get_by_label("Customer's email (optional)")).to_have_value("omar@example.com")
    await expect(page.get_by_role("status").filter(has_text="Picked Omar Farouk")).to_be_visible()
    await page.get_by_label("Find a customer").fill("nobody here")
    await expect(page.get_by_text("No customer matches.")).to_be_visible()
    await shot(page, "4-new-booking-pick")


async def test_staff_see_customers_but_get_403_on_the_audit_log(client: Client, desk: Any) -> None:
    site = await customers_site(client)
    email, _ = await add_member(client, site.business, "staff")
    page = desk
    await sign_in(page, email)
    nav = page.get_by_role("navigation", name="Dashboard")
    await expect(nav.get_by_role("link", name="Customers")).to_be_visible()
    await expect(nav.get_by_role("link", name="Audit log")).to_have_count(0)
    await nav.get_by_role("link", name="Customers").click()
    await expect(page.get_by_role("link", name="Omar Farouk")).to_be_visible()
    response = await page.goto("/dashboard/audit")
    assert response is not None and response.status == 403
    await expect(page.get_by_text("Your role does not give access to this page")).to_be_visible()
    await shot(page, "5-staff-audit-403")


async def test_owner_filters_the_audit_log(client: Client, desk: Any) -> None:
    site = await customers_site(client)
    page = desk
    await sign_in(page, site.business.email)
    await (
        page.get_by_role("navigation", name="Dashboard")
        .get_by_role("link", name="Audit log")
        .click()
    )
    await expect(page.get_by_role("heading", name="Audit log")).to_be_visible()
    table = page.get_by_role("table")
    await expect(table.get_by_text("booking.placed")).to_have_count(4)
    await shot(page, "6-audit")
    await page.get_by_label("What changed").select_option(label="Booking")
    await page.get_by_label("Who").select_option(label="A customer (booking site)")
    await page.get_by_role("button", name="Show").click()
    await shot(page, "7-audit-filtered")
    await expect(table.get_by_text("booking.placed")).to_have_count(1)
    await expect(table.get_by_text("A customer (booking site)")).to_be_visible()
    await shot(page, "7-audit-filtered")
    await page.get_by_label("Who").select_option(label=site.business.email)
    await page.get_by_role("button", name="Show").click()
    await expect(table.get_by_text("booking.placed")).to_have_count(3)
    await page.get_by_label("From").fill(str(tomorrow_local()))
    await page.get_by_role("button", name="Show").click()
    await expect(table.get_by_text("Nothing recorded matches these filters.")).to_be_visible()
    await page.get_by_role("link", name="Clear filters").click()
    await expect(table.get_by_text("booking.placed")).to_have_count(4)
