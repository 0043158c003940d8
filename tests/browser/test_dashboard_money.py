"""The money pages in Chromium: every chart is an <svg> whose bars carry (and are drawn to)
the numbers of the table beside it; a refund appears on the ledger page; staff are kept out
of every money URL. Screenshots of each page, desktop and phone, are kept in
tests/browser/artifacts (git-ignored; LOOK at them after a change)."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.factories import PASSWORD
from tests.web.support import CAIRO, Client, Site, make_site
from tests.web.test_dashboard_money_http import api, book_and_pay

ARTIFACTS = Path(__file__).parent / "artifacts"
DESKTOP = {"width": 1280, "height": 900}
MONEY_URLS = (
    "/dashboard/money/revenue",
    "/dashboard/money/payouts",
    "/dashboard/money/payouts/export.csv",
    "/dashboard/money/reconciliation",
    "/dashboard/money/ledger",
    "/dashboard/money/outbox",
    "/dashboard/money/invoices",
)

# Per chart: the marks (category, series, value, height, y) and the table's data-values.
READ_CHARTS = """() => [...document.querySelectorAll('svg.chart')].map(svg => ({
  id: svg.id,
  marks: [...svg.querySelectorAll('[data-value]')].map(m => ({
    category: +m.dataset.category, series: +m.dataset.series, value: +m.dataset.value,
    height: m.tagName === 'rect' ? +m.getAttribute('height') : null,
  })),
  table: (() => {
    const t = document.querySelector(`table[data-chart="${svg.id}"]`);
    return t ? [...t.tBodies[0].rows].map(r =>
      [...r.querySelectorAll('[data-value]')].map(c => +c.dataset.value)) : null;
  })(),
}))"""


async def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"money-{name}.png"), full_page=True)


@pytest.fixture
async def desk(browser: Any, site_url: str) -> AsyncIterator[Any]:
    context = await browser.new_context(
        base_url=site_url, viewport=DESKTOP, locale="en-US", timezone_id="Africa/Cairo"
    )
    context.set_default_timeout(10_000)
    page = await context.new_page()
    yield page
    await context.close()


async def sign_in(page: Any, email: str) -> None:
    await page.goto("/dashboard/sign-in")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Calendar", exact=True)).to_be_visible()


async def money_history(client: Client, owner_engine: AsyncEngine) -> tuple[Site, str]:
    """Paid bookings (one completed with commission, refunds on both), a payout waiting for
    the bank, a reconciliation run with an open discrepancy and a dead outbox row."""
    site = await make_site(client, name="Nile Hair & Beauty")
    response = await client.patch(
        f"/api/v1/resources/{site.resources['mona']}",
        headers=site.business.headers,
        json={"commission_bps": 1_000},
    )
    assert response.status_code == 200, response.text
    haircut = await book_and_pay(client, site, "haircut", "mona", 10)
    yoga = await book_and_pay(client, site, "yoga", "studio", 12)
    await book_and_pay(client, site, "haircut", "omar", 14)
    await api(client, site, f"/api/v1/bookings/{haircut}/check-in")
    await api(client, site, f"/api/v1/bookings/{haircut}/complete")
    await api(client, site, f"/api/v1/bookings/{yoga}/refunds", {"amount_minor": 8_000})
    today = datetime.now(UTC).astimezone(CAIRO).date()
    await api(
        client,
        site,
        "/api/v1/payouts/run",
        {"period_start": str(today), "period_end": str(today + timedelta(days=1))},
    )
    run_id, start = uuid.uuid4(), datetime.now(UTC) - timedelta(days=1)
    async with owner_engine.begin() as connection:
        params = {"t": site.business.tenant_id, "id": run_id, "d": start.date(), "ws": start}
        await connection.execute(
            text(
                "INSERT INTO reconciliation_runs (tenant_id, id, provider, run_date, status, "
                "window_start, window_end, matched, discrepancies, started_at, finished_at) "
                "VALUES (:t, :id, 'stripe', :d, 'completed', :ws, :ws, 12, 1, :ws, :ws)"
            ),
            params,
        )
        await connection.execute(
            text(
                "INSERT INTO reconciliation_discrepancies (tenant_id, id, run_id, provider, "
                "kind, provider_ref, ledger_minor, provider_minor, currency, status) VALUES "
                "(:t, gen_random_uuid(), :id, 'stripe', 'amount_mismatch', 'txn_3QxA11', "
                "35000, 34000, 'EGP', 'open')"
            ),
            params,
        )
        await connection.execute(
            text(
                "INSERT INTO outbox (tenant_id, id, aggregate_type, aggregate_id, topic, "
                "payload, status, attempts, last_error) VALUES (:t, gen_random_uuid(), "
                "'booking', :id, 'booking.confirmed', '{}', 'dead', 8, "
                "'whatsapp: 401 Unauthorized (token expired)')"
            ),
            params,
        )
    return site, haircut


def check_chart(chart: dict[str, Any]) -> None:
    """The bars are the table's numbers, drawn to one scale."""
    marks, table = chart["marks"], chart["table"]
    assert marks, chart["id"]
    assert table is not None, f"no table beside {chart['id']}"
    for mark in marks:
        assert table[mark["category"]][mark["series"]] == mark["value"], (chart["id"], mark)
    assert len(marks) == sum(len(row) for row in table)
    bars = [m for m in marks if m["height"] is not None and m["value"] != 0]
    if bars:
        scale = bars[0]["height"] / abs(bars[0]["value"])
        for bar in bars:
            assert abs(bar["height"] - abs(bar["value"]) * scale) < 0.05, (chart["id"], bar)


async def test_each_money_page_shows_its_chart_and_table(
    client: Client, owner_engine: AsyncEngine, desk: Any, phone: Any
) -> None:
    site, _ = await money_history(client, owner_engine)
    for page, size in ((desk, "desktop"), (phone, "phone")):
        await sign_in(page, site.business.email)
        await page.goto("/dashboard/money/revenue")
        await expect(page.get_by_role("heading", name="Revenue and analytics")).to_be_visible()
        await expect(page.get_by_text("Money collected is what customers paid")).to_be_visible()
        charts = await page.evaluate(READ_CHARTS)
        assert {c["id"] for c in charts} == {"money-time-egp", "money-by-egp", "use-days", "use-by"}
        for chart in charts:
            if chart["id"] != "use-days":  # the line's table is the whole period's totals
                check_chart(chart)
        by_time = next(c for c in charts if c["id"] == "money-time-egp")
        assert by_time["table"][-1] == [35_000 * 2 + 20_000 - 8_000, 35_000]
        svg = page.get_by_role("img", name=re.compile("Money collected and revenue earned, "))
        await expect(svg).to_be_visible()
        await shot(page, f"revenue-{size}")
        first = page.locator(".chart-pair").first
        await first.screenshot(path=str(ARTIFACTS / f"money-revenue-chart-{size}.png"))
        ahead = (datetime.now(UTC).astimezone(CAIRO).date() + timedelta(days=3)).isoformat()
        await page.goto(f"/dashboard/money/revenue?period=week&by=resource&to={ahead}")
        for chart in await page.evaluate(READ_CHARTS):
            if chart["id"] != "use-days":
                check_chart(chart)
        await shot(page, f"revenue-week-by-resource-{size}")

        await page.goto("/dashboard/money/payouts")
        await expect(page.get_by_role("button", name="Mark paid")).to_be_visible()
        await expect(
            page.get_by_role("link", name=re.compile("bank transfer sheet"))
        ).to_be_visible()
        await shot(page, f"payouts-{size}")
        await page.goto("/dashboard/money/reconciliation")
        await expect(page.get_by_text("txn_3QxA11")).to_be_visible()
        await shot(page, f"reconciliation-{size}")
        await page.goto("/dashboard/money/ledger")
        await expect(page.get_by_role("cell", name="Yes")).to_be_visible()  # balanced
        await shot(page, f"ledger-{size}")
        await page.goto("/dashboard/money/outbox")
        await expect(page.get_by_text("token expired")).to_be_visible()
        await shot(page, f"outbox-{size}")
        await page.goto("/dashboard/money/invoices")
        await expect(page.get_by_role("link", name=re.compile(r"^INV-"))).to_have_count(3)
        await shot(page, f"invoices-{size}")
    # Arabic, right to left: the charts keep their axes and still match their tables.
    await desk.goto("/dashboard/money/revenue?lang=ar")
    await expect(desk.get_by_role("heading", name="الإيرادات والتحليلات")).to_be_visible()
    for chart in await desk.evaluate(READ_CHARTS):
        if chart["id"] != "use-days":
            check_chart(chart)
    await shot(desk, "revenue-arabic-desktop")


async def test_payout_marked_paid_and_discrepancy_resolved_in_the_browser(
    client: Client, owner_engine: AsyncEngine, desk: Any
) -> None:
    site, _ = await money_history(client, owner_engine)
    page = desk
    await sign_in(page, site.business.email)
    await page.goto("/dashboard/money/payouts")
    await page.get_by_label("Bank reference").fill("CIB-8841")
    await page.get_by_role("button", name="Mark paid").click()
    await expect(page.get_by_text("CIB-8841")).to_be_visible()
    await expect(page.get_by_role("button", name="Mark paid")).to_have_count(0)
    await page.goto("/dashboard/money/reconciliation")
    await page.get_by_label("Note").fill("Provider fee charged twice; refunded by Stripe")
    await page.get_by_role("button", name="Resolve").click()
    await expect(page.get_by_role("status")).to_have_text("Discrepancy resolved.")
    await page.get_by_role("link", name="Resolved").click()
    await expect(page.get_by_text("Provider fee charged twice")).to_be_visible()
    await page.goto("/dashboard/money/outbox")
    await page.get_by_role("button", name=re.compile("^Retry")).click()
    await expect(page.get_by_role("status")).to_contain_text("Sent back to the queue")
    await shot(page, "outbox-after-retry-desktop")


async def test_a_refund_appears_on_the_ledger_page(
    client: Client, owner_engine: AsyncEngine, desk: Any
) -> None:
    site = await make_site(client)
    booking = await book_and_pay(client, site, "haircut", "mona", 10)
    page = desk
    await sign_in(page, site.business.email)
    await page.goto(f"/dashboard/bookings/{booking}")
    await expect(page.get_by_text("succeeded")).to_be_visible()
    await page.goto("/dashboard/money/ledger")
    entries = page.locator("table.entries tbody tr")
    await expect(entries.filter(has_text="refund")).to_have_count(0)
    # The refund the booking page's action makes (POST /bookings/{id}/refunds' use case).
    await api(client, site, f"/api/v1/bookings/{booking}/refunds", {"amount_minor": 12_500})
    await page.reload()
    row = entries.filter(has=page.get_by_role("cell", name="refund", exact=True))
    await expect(row).to_have_count(1)
    await expect(row).to_contain_text("clearing:sandbox")
    await expect(row).to_contain_text("-EGP125.00")
    await expect(row.get_by_role("link", name="Open the booking")).to_have_attribute(
        "href", f"/dashboard/bookings/{booking}"
    )
    await shot(page, "ledger-after-refund-desktop")


async def test_staff_get_403_on_every_money_url(client: Client, desk: Any) -> None:
    site = await make_site(client)
    email = f"staff-{uuid.uuid4().hex[:8]}@example.com"
    await api(
        client, site, "/api/v1/users", {"email": email, "password": PASSWORD, "role": "staff"}
    )
    page = desk
    await sign_in(page, email)
    navigation = page.get_by_role("navigation", name="Dashboard")
    for label in ("Revenue", "Payouts", "Reconciliation", "Ledger", "Invoices", "Outbox"):
        await expect(navigation.get_by_role("link", name=label)).to_have_count(0)
    for url in MONEY_URLS:
        response = await page.goto(url)
        assert response is not None and response.status == 403, url
        await expect(
            page.get_by_text("Your role does not give access to this page")
        ).to_be_visible()
