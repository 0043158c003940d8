"""More of what customers do on a phone: a paid booking that ends with the confirmation mail
in a real SMTP server; a cabin stay and a kayak rental priced before they are booked; two
people racing for the same time; cancelling (the refund shown first, then in the ledger) and
moving a booking through the manage link."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, date, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.cli.mail_catcher import SmtpCatcher
from app.mail import ics
from app.mail.confirmation import MailSetup
from app.mail.smtp import SmtpConfig
from app.outbox.dispatch import Dispatcher
from app.presentation.links import ManageLinks
from app.settings import Settings
from app.worker.deps import JobDeps
from app.worker.jobs import mail as mail_jobs
from app.worker.jobs import payments as checkout_jobs
from tests.browser.conftest import PHONE
from tests.browser.test_booking_flow import open_day
from tests.checkout.support import run_outbox
from tests.web.support import (
    CAIRO,
    Client,
    Site,
    at,
    details_form,
    make_site,
    manage_path,
    tomorrow_local,
)

SHOTS = Path("/tmp/shots")
# Far enough ahead that the haircut's policy refunds in full (24 hours or more before).
LATER = 3


async def shot(page: Any, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"more-{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    if SHOTS.is_dir():
        (SHOTS / path.name).write_bytes(path.read_bytes())


@pytest.fixture
def smtp_server() -> Iterator[SmtpCatcher]:
    server = SmtpCatcher().start()
    yield server
    server.stop()


async def fill_details(page: Any, pay: str) -> None:
    await expect(page.get_by_role("heading", name="Your details")).to_be_visible()
    await page.get_by_label("Full name").fill("Layla Hassan")
    await page.get_by_label("Mobile phone").fill("+20 100 000 0000")
    await page.get_by_label("Email").fill("layla@example.com")
    await page.get_by_label(pay).check()


async def place_by_form(client: Client, site: Site, day: date, hour: int, **fields: str) -> str:
    """A booking made as the details form would post it; the manage link's path."""
    form = details_form(site, at(day, hour), idempotency_key=uuid.uuid4().hex, **fields)
    placed = await client.post(f"/b/{site.slug}/book/details", data=form, follow_redirects=False)
    assert placed.status_code == 303, placed.text
    return manage_path(placed.headers["location"])


async def pay_on_sandbox(client: Client, manage: str) -> None:
    page = await client.get(manage)
    checkout = re.search(r'href="http://[^"/]+(/sandbox/pay/[^"]+)"', page.text)
    assert checkout, page.text
    paid = await client.post(checkout.group(1) + "/pay", follow_redirects=False)
    assert paid.status_code == 303


async def test_a_paid_booking_ends_confirmed_with_the_mail_and_its_invitation(
    client: Client,
    phone: Any,
    tmp_path: Path,
    site_url: str,
    owner_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    smtp_server: SmtpCatcher,
) -> None:
    site = await make_site(client, name="Nile Hair & Beauty")
    page = phone
    await page.goto(f"/b/{site.slug}")
    await page.get_by_role("link", name="Book Haircut").click()
    day = tomorrow_local()
    await open_day(page, day)
    await page.get_by_role("link", name=re.compile(r"^11:00")).click()
    await fill_details(page, "Test payment (sandbox, no real money)")
    await page.get_by_role("button", name="Book for EGP350.00").click()
    await expect(page.get_by_role("heading", name="Waiting for payment")).to_be_visible()
    # Paid in the same tab, then back to the booking from the sandbox page.
    await page.get_by_role("link", name="Pay EGP350.00 now").click()
    await page.get_by_role("button", name="Pay").click()
    await expect(page.get_by_text("succeeded")).to_be_visible()
    await shot(page, tmp_path, "1-sandbox-paid")
    await page.get_by_role("link", name="Back to your booking").click()
    await expect(page.get_by_role("heading", name="Your booking is confirmed")).to_be_visible()
    await expect(page.get_by_text("Paid: EGP350.00")).to_be_visible()
    manage = page.url

    # The worker's mail channel, through the dispatcher, to a real SMTP server on loopback.
    dispatcher = Dispatcher()
    mail_jobs.register_handlers(dispatcher)
    setup = MailSetup(
        smtp=SmtpConfig(host="127.0.0.1", port=smtp_server.port, sender="bookings@reckon.test"),
        links=ManageLinks(settings.secret_key),
        public_base_url=site_url,
    )
    ran = await run_outbox(
        owner_engine, sessions, settings, dispatcher, "booking.confirmed", JobDeps(mail=setup)
    )
    assert ran == 1
    [mail] = await smtp_server.catcher.wait_for(1)
    assert mail.to == ("layla@example.com",)
    assert mail.subject == "Booking confirmed: Haircut at Nile Hair & Beauty"
    assert "EGP350.00, paid" in mail.text
    link = next(line for line in mail.text.splitlines() if line.startswith(site_url))
    assert link == manage
    [invitation] = mail.attachments
    assert (invitation.filename, invitation.content_type) == ("booking.ics", "text/calendar")
    lines = ics.unfold(invitation.payload.decode())
    assert f"DTSTART:{at(day, 11).astimezone(UTC):%Y%m%dT%H%M%SZ}" in lines
    assert f"DTEND:{at(day, 12).astimezone(UTC):%Y%m%dT%H%M%SZ}" in lines
    assert f"URL:{link}" in lines
    # The link in the mail opens the booking.
    await page.goto(link)
    await expect(page.get_by_role("heading", name="Your booking is confirmed")).to_be_visible()
    await shot(page, tmp_path, "2-confirmed-from-mail")


async def test_a_cabin_stay_shows_each_lengths_price_before_booking(
    client: Client, phone: Any, tmp_path: Path
) -> None:
    site = await make_site(client, name="Pine Ridge Cabins")
    page = phone
    await page.goto(f"/b/{site.slug}")
    await page.get_by_role("link", name="Book Cabin stay").click()
    day = tomorrow_local()
    await open_day(page, day)
    await expect(page.get_by_text("Check-in is on this day. How many nights?")).to_be_visible()
    two = page.get_by_role("link", name=re.compile(r"^2 nights"))
    await expect(two).to_contain_text("EGP2,000.00")
    await expect(page.get_by_role("link", name=re.compile(r"^5 nights"))).to_contain_text(
        "EGP5,000.00"
    )
    await expect(page.get_by_role("link", name=re.compile(r"^1 night\b"))).to_have_count(0)
    await shot(page, tmp_path, "3-cabin-nights")
    await two.click()
    summary = page.locator("dl.summary")
    await expect(summary).to_contain_text("Check-in")
    await expect(summary).to_contain_text("3:00\u202fPM")
    await expect(summary).to_contain_text("11:00\u202fAM")
    await fill_details(page, "Pay at the venue")
    await page.get_by_role("button", name="Book for EGP2,000.00").click()
    await expect(page.get_by_role("heading", name="Your booking is confirmed")).to_be_visible()
    await expect(page.get_by_text("Pay EGP2,000.00 at the venue.")).to_be_visible()
    await shot(page, tmp_path, "4-cabin-confirmed")


async def test_a_kayak_rental_is_priced_by_its_length(
    client: Client, phone: Any, tmp_path: Path
) -> None:
    site = await make_site(client, name="Red Sea Kayaks")
    page = phone
    await page.goto(f"/b/{site.slug}")
    await page.get_by_role("link", name="Book Kayak rental").click()
    await open_day(page, tomorrow_local())
    await page.get_by_role("link", name=re.compile(r"^10:00\sAM$")).click()
    await expect(
        page.get_by_role("heading", name=re.compile("^How long, from 10:00"))
    ).to_be_visible()
    lengths = page.locator("#lengths a.slot")
    await expect(lengths).to_have_count(5)  # 1 h to 3 h by 30 minutes
    await expect(lengths.first).to_contain_text("EGP50.00")
    two_hours = page.get_by_role("link", name=re.compile(r"^2 hours"))
    await expect(two_hours).to_contain_text("until 12:00\u202fPM · EGP100.00")
    await shot(page, tmp_path, "5-kayak-lengths")
    await two_hours.click()
    await expect(page.locator("dl.summary")).to_contain_text("10:00\u202fAM \u2013 12:00\u202fPM")
    await fill_details(page, "Pay at the venue")
    await page.get_by_role("button", name="Book for EGP100.00").click()
    await expect(page.get_by_role("heading", name="Your booking is confirmed")).to_be_visible()
    await expect(page.get_by_text("Pay EGP100.00 at the venue.")).to_be_visible()


async def test_the_second_customer_for_the_same_time_is_told_and_sees_fresh_times(
    client: Client, browser: Any, site_url: str, tmp_path: Path
) -> None:
    site = await make_site(client)
    day = tomorrow_local()
    contexts = [
        await browser.new_context(
            base_url=site_url,
            viewport=PHONE,
            is_mobile=True,
            has_touch=True,
            locale="en-US",
            timezone_id="Africa/Cairo",
        )
        for _ in range(2)
    ]
    try:

        async def pick_eleven_with_mona(context: Any) -> Any:
            context.set_default_timeout(10_000)
            page = await context.new_page()
            await page.goto(f"/b/{site.slug}")
            await page.get_by_role("link", name="Book Haircut").click()
            await page.get_by_label("With").select_option(label="Mona")
            await page.get_by_role("button", name="Show free times").click()
            await open_day(page, day)
            await page.get_by_role("link", name=re.compile(r"^11:00")).click()
            await fill_details(page, "Pay at the venue")
            return page

        # Both are on the details form of the same free time before either sends it.
        first, second = await asyncio.gather(*(pick_eleven_with_mona(c) for c in contexts))
        await first.get_by_role("button", name="Book for EGP350.00").click()
        await expect(first.get_by_role("heading", name="Your booking is confirmed")).to_be_visible()
        await second.get_by_role("button", name="Book for EGP350.00").click()
        await expect(second.get_by_role("alert")).to_have_text(
            "Sorry, someone has just taken that time. Here are the times that are still free."
        )
        times = second.locator("#times")
        await expect(times.get_by_role("link", name=re.compile(r"^10:00"))).to_be_visible()
        await expect(times.get_by_role("link", name=re.compile(r"^12:00"))).to_be_visible()
        await expect(times.get_by_role("link", name=re.compile(r"^11:00"))).to_have_count(0)
        await expect(second.get_by_label("With")).to_have_value(site.resources["mona"])
        await shot(second, tmp_path, "6-slot-taken")
    finally:
        for context in contexts:
            await context.close()


async def test_cancel_by_the_manage_link_shows_the_refund_then_books_it(
    client: Client,
    phone: Any,
    tmp_path: Path,
    owner_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:
    site = await make_site(client)
    manage = await place_by_form(
        client, site, tomorrow_local() + timedelta(days=LATER), 10, payment="sandbox"
    )
    await pay_on_sandbox(client, manage)  # paying in the browser is the first test's part
    page = phone
    await page.goto(manage)
    await expect(page.get_by_role("heading", name="Your booking is confirmed")).to_be_visible()
    await page.get_by_role("link", name="Cancel the booking").click()
    await expect(page.get_by_role("heading", name="Your refund")).to_be_visible()
    await expect(
        page.get_by_text("If you cancel now you get back the full EGP350.00.")
    ).to_be_visible()
    await shot(page, tmp_path, "7-cancel-refund-first")
    await page.get_by_role("button", name="Yes, cancel the booking").click()
    await expect(page.get_by_role("heading", name="Your booking is cancelled")).to_be_visible()
    await expect(page.get_by_text("Your refund of EGP350.00 is on its way.")).to_be_visible()
    await expect(page.get_by_text("Refunded:")).to_have_count(0)
    # Booked in the ledger with the cancellation: out of the provider's clearing account.
    assert await refunds_and_clearing(owner_engine, site) == (
        [(35_000, "EGP", "pending")],
        [35_000, -35_000],
    )

    # The worker asks the provider for the refund (the sandbox answers at once).
    dispatcher = Dispatcher()
    checkout_jobs.register_handlers(dispatcher)
    assert await run_outbox(owner_engine, sessions, settings, dispatcher, "payment.refund") == 1
    await page.reload()
    await expect(page.get_by_text("Refunded: EGP350.00")).to_be_visible()
    await expect(page.get_by_text("is on its way")).to_have_count(0)
    await shot(page, tmp_path, "8-cancelled-refunded")
    # Captured into clearing, refunded out of it, not reversed: nothing left there.
    assert await refunds_and_clearing(owner_engine, site) == (
        [(35_000, "EGP", "succeeded")],
        [35_000, -35_000],
    )


async def refunds_and_clearing(
    owner: AsyncEngine, site: Site
) -> tuple[list[tuple[Any, ...]], list[int]]:
    """The business's refunds, and the postings of its sandbox clearing account."""
    async with owner.connect() as conn:
        refunds = (
            await conn.execute(
                text("SELECT amount_minor, currency, status FROM refunds WHERE tenant_id = :t"),
                {"t": site.business.tenant_id},
            )
        ).all()
        clearing = (
            await conn.scalars(
                text(
                    "SELECT p.amount_minor FROM postings p JOIN ledger_accounts a "
                    "ON a.tenant_id = p.tenant_id AND a.id = p.account_id "
                    "WHERE a.tenant_id = :t AND a.code = 'clearing:sandbox' "
                    "ORDER BY p.amount_minor DESC"
                ),
                {"t": site.business.tenant_id},
            )
        ).all()
    return [tuple(r) for r in refunds], [int(v) for v in clearing]


async def test_reschedule_by_the_manage_link_moves_to_another_free_time(
    client: Client, phone: Any, tmp_path: Path, owner_engine: AsyncEngine
) -> None:
    site = await make_site(client)
    day = tomorrow_local()
    manage = await place_by_form(client, site, day, 10, who=site.resources["mona"])
    page = phone
    await page.goto(manage)
    await page.get_by_role("link", name="Change the time").click()
    await expect(page.get_by_role("heading", name="Change the time")).to_be_visible()
    await open_day(page, day)
    times = page.locator("#times")
    await expect(times.get_by_role("button", name=re.compile(r"^10:00"))).to_have_count(0)
    await shot(page, tmp_path, "9-reschedule-times")
    await times.get_by_role("button", name=re.compile(r"^3:00\sPM")).click()
    await expect(page.get_by_role("heading", name="Your booking is confirmed")).to_be_visible()
    await expect(page.get_by_text("Your booking has been moved to the new time.")).to_be_visible()
    await expect(page.locator("dl.summary")).to_contain_text("3:00\u202fPM \u2013 4:00\u202fPM")
    await shot(page, tmp_path, "10-rescheduled")
    async with owner_engine.connect() as conn:
        starts = (
            await conn.scalars(
                text("SELECT starts_at FROM bookings WHERE tenant_id = :t"),
                {"t": site.business.tenant_id},
            )
        ).all()
    assert [s.astimezone(CAIRO) for s in starts] == [at(day, 15)]
