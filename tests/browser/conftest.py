"""Browser tests: Debian's Chromium driven by Playwright (async API) against the app served by
uvicorn on a loopback port, on a phone-sized viewport.

Chromium is the system package (/usr/bin/chromium), never a Playwright download. Without it
the tests skip on a developer machine; in CI (CI=true) a missing browser is a failure.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from app.edge.asgi import create_app
from app.settings import Settings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PHONE = {"width": 390, "height": 844}


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{CHROMIUM} is missing: CI must install Debian's chromium package")
    # allowed: only off CI (above, a missing browser fails the run there)
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install -y chromium)")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
async def site_url(settings: Settings) -> AsyncIterator[str]:
    """The whole app on a loopback port; PUBLIC_BASE_URL points at it, so the sandbox
    payment page the booking links to is this server's."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    app = create_app(dataclasses.replace(settings, public_base_url=base))
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", timeout_keep_alive=600
        )
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()
        await asyncio.sleep(0.01)
    yield base
    server.should_exit = True
    await serving


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    _require_chromium()
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        yield chromium
        await chromium.close()


@pytest.fixture
async def phone(browser: Any, site_url: str) -> AsyncIterator[Any]:
    """A fresh phone-sized page (English, device clock in Cairo like the business)."""
    context = await browser.new_context(
        base_url=site_url,
        viewport=PHONE,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="en-US",
        timezone_id="Africa/Cairo",
    )
    context.set_default_timeout(10_000)
    page = await context.new_page()
    yield page
    await context.close()
