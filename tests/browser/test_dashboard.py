"""An owner on the dashboard: signs in, sees the week, drags a booking to a new time (it
stays there after a reload), and watches a change made elsewhere arrive by itself."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.events.live import channel
from app.outbox.dispatch import Dispatcher, HandlerContext
from app.outbox.relay import Relay, RelayConfig, libpq_url, new_worker_id
from app.settings import Settings
from app.worker.jobs import events as event_jobs
from tests.factories import PASSWORD
from tests.web.support import Client, Site, at, make_site, tomorrow_local

SHOTS = Path("/tmp/shots")
DESKTOP = {"width": 1280, "height": 900}
LIVE = RelayConfig(
    batch_size=50,
    concurrency=8,
    lease_seconds=10,
    poll_interval=0.05,
    max_attempts=5,
    backoff_base=0.01,
    backoff_cap=0.05,
)


async def shot(page: Any, name: str) -> None:
    if SHOTS.is_dir():
        await page.screenshot(path=str(SHOTS / f"dash-{name}.png"), full_page=True)


@pytest.fixture
async def desk(browser: Any, site_url: str) -> AsyncIterator[Any]:
    context = await browser.new_context(
        base_url=site_url, viewport=DESKTOP, locale="en-US", timezone_id="Africa/Cairo"
    )
    context.set_default_timeout(10_000)
    page = await context.new_page()
    yield page
    await context.close()


@pytest.fixture
async def live_relay(
    app_engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> AsyncIterator[Redis]:
    """The worker's live-event publisher, running as the worker runs it (LISTEN + poll)."""
    redis = Redis.from_url(settings.redis_url)
    dispatcher = Dispatcher()
    event_jobs.register_handlers(dispatcher)
    ctx = HandlerContext(
        sessions=sessions,
        redis=redis,
        namespace=settings.redis_namespace,
        worker_id=new_worker_id(),
    )
    relay = Relay(
        app_engine,
        dispatcher,
        ctx,
        config=LIVE,
        listen_url=libpq_url(settings.runtime_database_url),
    )
    running = asyncio.create_task(relay.run())
    yield redis
    running.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await running
    await redis.aclose()


async def place(client: Client, site: Site, day: date, hour: int, name: str) -> str:
    response = await client.post(
        "/api/v1/bookings",
        headers=site.business.headers,
        json={
            "service_id": site.services["haircut"],
            "branch_id": site.branch_id,
            "resource_id": site.resources["mona"],
            "start": at(day, hour).isoformat(),
            "customer": {"name": name, "phone": "+201001112223"},
            "payment": {"provider": "cash"},
        },
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def sign_in(page: Any, email: str) -> None:
    await page.goto("/dashboard/calendar")
    await expect(page.get_by_role("heading", name="Sign in to your dashboard")).to_be_visible()
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Calendar", exact=True)).to_be_visible()


def block(page: Any, name: str) -> Any:
    return page.get_by_role("link", name=re.compile(name))


async def test_owner_drags_a_booking_to_a_new_time_and_it_stays_there(
    client: Client, desk: Any
) -> None:
    site = await make_site(client, name="Nile Hair & Beauty")
    day = tomorrow_local()
    await place(client, site, day, 10, "Layla Hassan")
    # A sandbox booking is a hold awaiting payment: marked in words, not colour alone.
    await client.post(
        "/api/v1/bookings",
        headers=site.business.headers,
        json={
            "service_id": site.services["haircut"],
            "branch_id": site.branch_id,
            "resource_id": site.resources["omar"],
            "start": at(day, 11).isoformat(),
            "customer": {"name": "Sara Nabil"},
            "payment": {"provider": "sandbox"},
        },
    )
    page = desk
    await sign_in(page, site.business.email)
    await page.goto(f"/dashboard/calendar?view=week&date={day.isoformat()}")
    layla = block(page, r"^10:00\sAM.*Layla Hassan")
    await expect(layla).to_be_visible()
    await expect(block(page, r"Awaiting payment.*Sara Nabil")).to_be_visible()
    await shot(page, "1-week")
    await page.goto(f"/dashboard/calendar?view=day&date={day.isoformat()}")
    layla = block(page, r"^10:00\sAM.*Layla Hassan")
    box = await layla.bounding_box()
    column = await page.get_by_role("group", name=re.compile(r"^Mona,")).bounding_box()
    rows = int(
        await page.get_by_role("group", name=re.compile(r"^Mona,")).get_attribute("data-rows")
    )
    hour = column["height"] / rows * 4
    x, y = box["x"] + box["width"] / 2, box["y"] + 8
    await page.mouse.move(x, y)
    await page.mouse.down()
    for step in range(1, 11):
        await page.mouse.move(x, y + 2 * hour * step / 10)
    await page.mouse.up()
    await expect(page.get_by_role("status")).to_contain_text("Booking moved: 12:00")
    await page.reload()
    await expect(block(page, r"^12:00\sPM.1:00\sPM.*Layla Hassan")).to_be_visible()
    await shot(page, "2-day-after-drag")


async def test_a_refused_drop_snaps_back_and_says_why(client: Client, desk: Any) -> None:
    site = await make_site(client)
    day = tomorrow_local()
    await place(client, site, day, 10, "Layla Hassan")
    await place(client, site, day, 12, "Mariam Adel")
    page = desk
    await sign_in(page, site.business.email)
    await page.goto(f"/dashboard/calendar?view=day&date={day.isoformat()}")
    layla = block(page, r"^10:00\sAM.*Layla Hassan")
    mariam = await block(page, r"Mariam Adel").bounding_box()
    box = await layla.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + 8
    await page.mouse.move(x, y)
    await page.mouse.down()
    for step in range(1, 11):
        await page.mouse.move(x, y + (mariam["y"] - box["y"]) * step / 10)
    await page.mouse.up()
    await expect(page.get_by_role("status")).to_contain_text("Could not move the booking")
    await shot(page, "3-refused")
    after = await layla.bounding_box()
    assert abs(after["y"] - box["y"]) < 2, "the block snaps back"
    await page.reload()
    await expect(block(page, r"^10:00\sAM.*Layla Hassan")).to_be_visible()


async def test_an_open_calendar_follows_a_change_made_through_the_api(
    client: Client, desk: Any, live_relay: Redis, settings: Settings
) -> None:
    site = await make_site(client)
    other = await make_site(client)
    day = tomorrow_local()
    booking = await place(client, site, day, 10, "Layla Hassan")
    page = desk
    await sign_in(page, site.business.email)
    name = channel(settings.redis_namespace, site.business.tenant_id)
    await page.goto(f"/dashboard/calendar?view=day&date={day.isoformat()}")
    await expect(block(page, r"^10:00\sAM.*Layla Hassan")).to_be_visible()
    for _ in range(300):  # the page's EventSource has subscribed
        if dict(await live_relay.pubsub_numsub(name))[name.encode()] > 0:
            break
        await asyncio.sleep(0.01)
    else:
        raise AssertionError("the calendar never opened its event stream")
    # Another business's booking, placed first, never shows here.
    await place(client, other, day, 9, "Not Ours")
    response = await client.post(
        f"/api/v1/bookings/{booking}/reschedule",
        headers=site.business.headers,
        json={"start": at(day, 14).isoformat()},
    )
    assert response.status_code == 200, response.text
    await expect(block(page, r"^2:00\sPM.3:00\sPM.*Layla Hassan")).to_be_visible(timeout=2_000)
    await expect(page.get_by_text("Not Ours")).to_have_count(0)
    await shot(page, "4-live")


async def test_the_dashboard_on_a_phone(client: Client, phone: Any) -> None:
    site = await make_site(client, name="Nile Hair & Beauty")
    day = tomorrow_local()
    await place(client, site, day, 10, "Layla Hassan")
    await sign_in(phone, site.business.email)
    await phone.goto(f"/dashboard/calendar?view=day&date={day.isoformat()}")
    await expect(block(phone, r"Layla Hassan")).to_be_visible()
    await shot(phone, "5-phone-day")
    await phone.get_by_role("link", name="Month").click()
    await expect(phone.get_by_role("table")).to_be_visible()
    await shot(phone, "6-phone-month")
    await phone.goto("/dashboard/money/revenue")
    await expect(phone.get_by_role("heading", name="Revenue")).to_be_visible()
    await shot(phone, "7-phone-revenue")
