"""In Chromium: the dashboard registers its service worker over /dashboard/, shows the
"Notify me on this device" toggle when push is configured, and, with the network gone, a
navigation shows the offline page instead of the browser's error."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn
from playwright.async_api import expect

from app.edge.asgi import create_app
from app.gateways.webpush import VapidKeys
from app.settings import Settings
from tests.browser.conftest import _free_port, browser  # noqa: F401 (a fixture)
from tests.browser.test_dashboard import shot, sign_in
from tests.web.support import Client, make_site

DESKTOP = {"width": 1280, "height": 900}


@pytest.fixture
async def push_site(settings: Settings, vapid: VapidKeys) -> AsyncIterator[str]:
    """The app with VAPID keys set (the session's shared server has none)."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    configured = dataclasses.replace(
        settings,
        public_base_url=base,
        vapid_public_key=vapid.public_key,
        vapid_private_key=vapid.private_key,
    )
    server = uvicorn.Server(
        uvicorn.Config(create_app(configured), host="127.0.0.1", port=port, log_level="warning")
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()
        await asyncio.sleep(0.01)
    yield base
    server.should_exit = True
    await serving


@pytest.fixture
async def desk(browser: Any, push_site: str) -> AsyncIterator[Any]:  # noqa: F811
    context = await browser.new_context(
        base_url=push_site, viewport=DESKTOP, locale="en-US", timezone_id="Africa/Cairo"
    )
    context.set_default_timeout(10_000)
    page = await context.new_page()
    yield page
    await context.close()


async def test_the_dashboard_installs_a_worker_and_shows_the_offline_page(
    client: Client, desk: Any
) -> None:
    site = await make_site(client, name="Nile Hair & Beauty")
    await sign_in(desk, site.business.email)

    scope = await desk.evaluate(
        "navigator.serviceWorker.ready.then((registration) => registration.scope)"
    )
    assert scope.endswith("/dashboard/")
    toggle = desk.get_by_role("button", name="Notify me on this device")
    await expect(toggle).to_be_visible()
    await expect(toggle).to_have_attribute("aria-pressed", "false")
    manifest = await desk.evaluate(
        "fetch(document.querySelector('link[rel=manifest]').href).then((r) => r.json())"
    )
    assert (manifest["start_url"], manifest["display"]) == ("/dashboard/calendar", "standalone")
    await shot(desk, "8-push-toggle")

    # The worker controls the page once it is active; then the network goes away.
    await desk.reload()
    await desk.wait_for_function("navigator.serviceWorker.controller !== null")
    await desk.context.set_offline(True)
    await desk.goto("/dashboard/bookings")
    await expect(desk.get_by_role("heading", name="You are offline")).to_be_visible()
    await shot(desk, "9-offline")
    await desk.context.set_offline(False)
    await desk.get_by_role("link", name="Try again").click()
    await expect(desk.get_by_role("heading", name="Calendar", exact=True)).to_be_visible()
