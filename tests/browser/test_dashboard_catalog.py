"""An owner builds the catalog in the dashboard — a resource, its weekly hours with the
editor, time off, a service with a cancellation tier — and the public booking site then
offers exactly those hours; a bad price is refused next to its field; staff are kept out;
the weekly-hours editor works from the keyboard alone. Screenshots: tests/browser/artifacts."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from playwright.async_api import expect

from tests.browser.test_dashboard import DESKTOP, sign_in
from tests.web.dashboard.test_session import add_member
from tests.web.support import CAIRO, Client, Site, make_site, tomorrow_local

ARTIFACTS = Path(__file__).parent / "artifacts"


async def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"catalog-{name}.png"), full_page=True)


async def desk_page(browser: Any, site_url: str) -> Any:
    context = await browser.new_context(
        base_url=site_url, viewport=DESKTOP, locale="en-US", timezone_id="Africa/Cairo"
    )
    context.set_default_timeout(10_000)
    return await context.new_page()


def weekday_name(day: date) -> str:
    return day.strftime("%A")


async def public_slots(client: Client, site: Site, service_id: str, day: date) -> list[str]:
    response = await client.get(
        f"/public/{site.slug}/availability",
        params={
            "service_id": service_id,
            "branch_id": site.branch_id,
            "from": day.isoformat(),
            "to": day.isoformat(),
        },
    )
    assert response.status_code == 200, response.text
    return sorted(
        datetime.fromisoformat(slot["start"]).astimezone(CAIRO).strftime("%Y-%m-%d %H:%M")
        for slot in response.json()["slots"]
    )


async def test_owner_builds_a_resource_and_service_and_the_public_site_offers_exactly_its_hours(
    client: Client, browser: Any, site_url: str
) -> None:
    site = await make_site(client, name="Nile Hair & Beauty")
    day = tomorrow_local()
    page = await desk_page(browser, site_url)
    await sign_in(page, site.business.email)
    await page.get_by_role("link", name="Catalog").click()
    await expect(page.get_by_role("heading", name="Resources")).to_be_visible()
    await page.get_by_role("link", name="Add a resource").click()
    await page.get_by_label("Name").fill("Nadia")
    await page.get_by_label("Kind").select_option("staff")
    await page.get_by_label("Capacity").fill("1")
    await expect(page.get_by_role("checkbox", name="Zamalek")).to_be_checked()
    await shot(page, "1-new-resource")
    await page.get_by_role("button", name="Add resource").click()

    await expect(page.get_by_role("heading", name="Hours of Nadia")).to_be_visible()
    today = page.get_by_role("group", name=weekday_name(day))
    await today.get_by_label("Opens").nth(0).fill("10:00")
    await today.get_by_label("Closes").nth(0).fill("12:00")
    await today.get_by_role("button", name=f"Add hours on {weekday_name(day)}").click()
    # A new resource has no hours: one empty row per day; the added row has the focus.
    await expect(today.get_by_label("Opens")).to_have_count(2)
    await expect(today.get_by_label("Opens").nth(1)).to_be_focused()
    await today.get_by_label("Opens").nth(1).fill("14:00")
    await today.get_by_label("Closes").nth(1).fill("16:00")
    await shot(page, "2-hours-editor")
    await page.get_by_role("button", name="Save hours").click()
    await expect(page.get_by_role("status")).to_have_text("The hours are saved.")

    await page.get_by_label("From").fill(f"{day.isoformat()}T14:00")
    await page.get_by_label("Until").fill(f"{day.isoformat()}T15:00")
    await page.get_by_label("Reason (optional)").fill("Dentist")
    await page.get_by_role("button", name="Add time off").click()
    await expect(page.get_by_role("status")).to_have_text("The time off is added.")
    await expect(page.get_by_role("cell", name="Dentist")).to_be_visible()
    await shot(page, "3-time-off")

    await (
        page.get_by_role("navigation", name="Catalog").get_by_role("link", name="Services").click()
    )
    await page.get_by_role("link", name="Add a service").click()
    await page.get_by_role("link", name="Appointments (fixed length)").click()
    await page.get_by_label("Name").fill("Consultation")
    await page.get_by_label("Price (EGP)").fill("200")
    await page.get_by_label("Length (minutes)").fill("60")
    await page.get_by_role("checkbox", name="Nadia").check()
    await page.get_by_label("Cancelled at least (hours before)").first.fill("24")
    await page.get_by_label("Refund (percent)").first.fill("100")
    await shot(page, "4-new-service")
    await page.get_by_role("button", name="Add service").click()
    await expect(page.get_by_role("status")).to_have_text("Saved.")
    service_id = re.search(r"/services/([0-9a-f-]{36})", page.url).group(1)  # type: ignore[union-attr]

    found = (
        await client.get(f"/api/v1/services/{service_id}", headers=site.business.headers)
    ).json()
    assert found["cancellation_policy"]["tiers"] == [{"hours_before": 24, "refund_bps": 10_000}]
    # 10-12 and 14-16, less the 14-15 time off: exactly 10:00, 11:00 and 15:00.
    assert await public_slots(client, site, service_id, day) == [
        f"{day.isoformat()} 10:00",
        f"{day.isoformat()} 11:00",
        f"{day.isoformat()} 15:00",
    ]
    # The day after has no hours at all.
    assert await public_slots(client, site, service_id, day + timedelta(days=1)) == []
    await page.context.close()


async def test_a_bad_price_is_shown_next_to_the_field_and_nothing_changes(
    client: Client, browser: Any, site_url: str
) -> None:
    site = await make_site(client)
    before = (await client.get("/api/v1/services", headers=site.business.headers)).json()
    page = await desk_page(browser, site_url)
    await sign_in(page, site.business.email)
    await page.goto(f"/dashboard/catalog/services/{site.services['haircut']}")
    price = page.get_by_label("Price (EGP)")
    await expect(price).to_have_value("350.00")
    await price.fill("-20")
    await page.get_by_role("button", name="Save service").click()
    await expect(page.get_by_role("alert")).to_contain_text("There is a problem")
    error = page.locator("#price-error")
    await expect(error).to_have_text("Error: Enter a price of zero or more, like 350.00.")
    await expect(price).to_have_attribute("aria-invalid", "true")
    await expect(price).to_have_attribute("aria-describedby", re.compile("price-error"))
    await expect(price).to_have_value("-20")
    await shot(page, "5-bad-price")
    after = (await client.get("/api/v1/services", headers=site.business.headers)).json()
    assert after == before
    await page.context.close()


async def test_staff_get_403_and_no_catalog_or_settings_links(
    client: Client, browser: Any, site_url: str
) -> None:
    site = await make_site(client)
    staff, _ = await add_member(client, site.business, "staff")
    page = await desk_page(browser, site_url)
    await sign_in(page, staff)
    nav = page.get_by_role("navigation", name="Dashboard")
    await expect(nav.get_by_role("link", name="Calendar")).to_be_visible()
    await expect(nav.get_by_role("link", name="Catalog")).to_have_count(0)
    await expect(nav.get_by_role("link", name="Settings")).to_have_count(0)
    for path in (
        "/dashboard/catalog/resources",
        f"/dashboard/catalog/resources/{site.resources['mona']}/hours",
        "/dashboard/catalog/services/new?policy=time_slot",
        "/dashboard/settings/providers",
        "/dashboard/settings/users",
    ):
        response = await page.goto(path)
        assert response is not None and response.status == 403, path
        await expect(
            page.get_by_role("heading", name="Your role does not give access to this page")
        ).to_be_visible()
    await shot(page, "6-staff-403")
    await page.context.close()


async def _tab_to(page: Any, accessible: str, limit: int = 400) -> None:
    """Press Tab until the focused element's accessible name is `accessible` (a time input takes
    a Tab per part: hours, minutes, AM/PM)."""
    for _ in range(limit):
        await page.keyboard.press("Tab")
        name = await page.evaluate(
            "() => { const e = document.activeElement;"
            " return (e.getAttribute('aria-label') || e.labels?.[0]?.textContent || e.textContent"
            " || '').trim().replace(/\\s+/g, ' '); }"
        )
        if name == accessible:
            return
    raise AssertionError(f"Tab never reached {accessible!r}")


async def test_the_weekly_hours_editor_works_with_tab_and_enter_alone(
    client: Client, browser: Any, site_url: str
) -> None:
    site = await make_site(client)
    mona = site.resources["mona"]
    page = await desk_page(browser, site_url)
    await sign_in(page, site.business.email)
    await page.goto(f"/dashboard/catalog/resources/{mona}/hours")
    monday = page.get_by_role("group", name="Monday")
    # Mona works 09-17 every day; on Monday the hours become 10-12 and 14-16.
    await _tab_to(page, "Opens")  # Monday's first row comes first
    await expect(monday.get_by_label("Opens").nth(0)).to_be_focused()
    await page.keyboard.type("1000AM")
    await _tab_to(page, "Closes")
    await page.keyboard.type("1200PM")
    await _tab_to(page, "Add hours on Monday")
    await page.keyboard.press("Enter")
    added = monday.get_by_label("Opens").nth(2)
    await expect(added).to_be_focused()
    await page.keyboard.type("0200PM")
    await _tab_to(page, "Closes")
    await page.keyboard.type("0400PM")
    # One more row, then take it away again with its Remove button.
    await _tab_to(page, "Add hours on Monday")
    await page.keyboard.press("Enter")
    await expect(monday.get_by_label("Opens")).to_have_count(4)
    await _tab_to(page, "Remove these hours on Monday")
    await page.keyboard.press("Enter")
    await expect(monday.get_by_label("Opens")).to_have_count(3)
    await expect(monday.get_by_label("Opens").nth(2)).to_be_focused()
    await shot(page, "7-keyboard-editor")
    await _tab_to(page, "Save hours")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("status")).to_have_text("The hours are saved.")
    detail = (await client.get(f"/api/v1/resources/{mona}", headers=site.business.headers)).json()
    monday_hours = [
        (w["start"], w["end"]) for w in detail["schedule"]["weekly"] if w["weekday"] == 0
    ]
    assert monday_hours == [("10:00", "12:00"), ("14:00", "16:00")]
    assert len(detail["schedule"]["weekly"]) == 7 + 1
    await page.context.close()


async def test_catalog_and_settings_pages_on_a_phone(client: Client, phone: Any) -> None:
    site = await make_site(client, name="Nile Hair & Beauty")
    await sign_in(phone, site.business.email)
    for path, heading, name in (
        ("/dashboard/catalog/resources", "Resources", "8-phone-resources"),
        (
            f"/dashboard/catalog/resources/{site.resources['mona']}/hours",
            "Hours of Mona",
            "9-phone-hours",
        ),
        (
            f"/dashboard/catalog/services/{site.services['kayak']}",
            "Kayak rental",
            "10-phone-service",
        ),
        (f"/dashboard/catalog/products/{site.product_id}", "Argan oil", "11-phone-product"),
        (
            "/dashboard/settings/providers",
            "Payment providers and integrations",
            "12-phone-providers",
        ),
        ("/dashboard/settings/users", "Users and roles", "13-phone-users"),
    ):
        await phone.goto(path)
        await expect(phone.get_by_role("heading", name=heading, exact=True)).to_be_visible()
        await shot(phone, name)
    # In Arabic, right to left, with the weekdays and labels translated.
    await phone.goto(f"/dashboard/catalog/resources/{site.resources['mona']}/hours?lang=ar")
    await expect(phone.locator("html")).to_have_attribute("dir", "rtl")
    await expect(phone.get_by_role("heading", name="ساعات عمل Mona")).to_be_visible()
    await expect(phone.get_by_role("group", name="الاثنين")).to_be_visible()
    await shot(phone, "14-phone-hours-arabic")
