"""Login and sign-up are rate limited per client address and per account, in real Redis,
answering 429 problem+json with Retry-After; with Redis gone they fail open."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from app.edge.asgi import create_app
from app.edge.ratelimit import (
    LOGIN_FAILURES_PER_ACCOUNT,
    LOGIN_FAILURES_PER_ADDRESS,
    SIGNUPS_PER_ACCOUNT,
)
from app.settings import Settings
from tests.factories import PASSWORD, Business, sign_up

Client = AsyncTestClient[Litestar]


@asynccontextmanager
async def limited_client(settings: Settings, **changes: Any) -> AsyncIterator[Client]:
    """The app with counters of its own (the session's are shared by every other test)."""
    own = dataclasses.replace(settings, redis_namespace=f"rl-{uuid.uuid4().hex[:8]}", **changes)
    async with AsyncTestClient(app=create_app(own)) as client:
        yield client


async def fresh_window(window: int, needed: float = 20.0) -> None:
    """Wait for the next fixed window if this one ends before the test can finish in it."""
    left = window - time.time() % window
    if left < needed:
        await asyncio.sleep(left + 0.05)


async def login(client: Client, email: str, password: str = PASSWORD) -> Any:
    return await client.post("/api/v1/auth/token", json={"email": email, "password": password})


def assert_rate_limited(response: Any, window: int) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"] == "rate_limited"
    assert 1 <= int(response.headers["retry-after"]) <= window


async def test_failed_logins_lock_the_account_even_when_sent_concurrently(
    settings: Settings,
) -> None:
    limit, window = LOGIN_FAILURES_PER_ACCOUNT.limit, LOGIN_FAILURES_PER_ACCOUNT.window
    await fresh_window(window)
    async with limited_client(settings) as client:
        victim, bystander = await sign_up(client), await sign_up(client)

        guesses = await asyncio.gather(
            *(login(client, victim.email.upper(), f"guess-{n}") for n in range(limit + 5))
        )
        right_password = await login(client, victim.email)
        other_account = await login(client, bystander.email)

    statuses = sorted(response.status_code for response in guesses)
    assert statuses == [401] * limit + [429] * 5
    assert_rate_limited(right_password, window)
    assert other_account.status_code == 200, other_account.text


async def test_successful_logins_do_not_count_as_failures(settings: Settings) -> None:
    await fresh_window(LOGIN_FAILURES_PER_ACCOUNT.window)
    async with limited_client(settings) as client:
        business: Business = await sign_up(client)
        for _ in range(LOGIN_FAILURES_PER_ACCOUNT.limit + 2):
            response = await login(client, business.email)
            assert response.status_code == 200, response.text
        wrong = await login(client, business.email, "not-the-password")

    assert wrong.status_code == 401


async def test_failed_logins_across_accounts_are_limited_per_address(settings: Settings) -> None:
    limit, window = LOGIN_FAILURES_PER_ADDRESS.limit, LOGIN_FAILURES_PER_ADDRESS.window
    await fresh_window(window)
    async with limited_client(settings) as client:
        sprayed = [
            await login(client, f"nobody-{n}@example.com", "Summer2026!") for n in range(limit)
        ]
        beyond = await login(client, "one-more@example.com", "Summer2026!")

    assert {response.status_code for response in sprayed} == {401}
    assert_rate_limited(beyond, window)


async def test_every_login_counts_against_the_address_per_minute(settings: Settings) -> None:
    await fresh_window(60)
    async with limited_client(settings, public_rate_limit_per_minute=3) as client:
        # Signed up through another app: its counters are not this one's.
        async with limited_client(settings) as setup:
            business = await sign_up(setup)
        statuses = [(await login(client, business.email)).status_code for _ in range(4)]
        beyond = await login(client, business.email)

    assert statuses == [200, 200, 200, 429]
    assert_rate_limited(beyond, 60)


async def test_signups_are_limited_per_address(settings: Settings) -> None:
    await fresh_window(60)
    async with limited_client(settings, public_rate_limit_per_minute=3) as client:
        for _ in range(3):
            await sign_up(client)
        beyond = await client.post(
            "/api/v1/signup",
            json={
                "business_name": "One too many",
                "slug": f"biz-{uuid.uuid4().hex[:10]}",
                "email": f"owner-{uuid.uuid4().hex[:8]}@example.com",
                "password": PASSWORD,
                "currency": "EGP",
                "timezone": "Africa/Cairo",
            },
        )

    assert_rate_limited(beyond, 60)


async def test_signups_naming_one_email_are_limited(settings: Settings) -> None:
    limit, window = SIGNUPS_PER_ACCOUNT.limit, SIGNUPS_PER_ACCOUNT.window
    await fresh_window(window)
    email = f"serial-{uuid.uuid4().hex[:8]}@example.com"
    async with limited_client(settings) as client:
        for _ in range(limit):
            await sign_up(client, email=email)
        beyond = await client.post(
            "/api/v1/signup",
            json={
                "business_name": "One too many",
                "slug": f"biz-{uuid.uuid4().hex[:10]}",
                "email": email.upper(),
                "password": PASSWORD,
                "currency": "EGP",
                "timezone": "Africa/Cairo",
            },
        )
        other = await sign_up(client)

    assert_rate_limited(beyond, window)
    assert other.token


async def test_signups_refused_as_invalid_do_not_count_against_the_email(
    settings: Settings,
) -> None:
    window = SIGNUPS_PER_ACCOUNT.window
    await fresh_window(window)
    email = f"typos-{uuid.uuid4().hex[:8]}@example.com"
    async with limited_client(settings) as client:
        for _ in range(SIGNUPS_PER_ACCOUNT.limit + 2):
            refused = await client.post(
                "/api/v1/signup",
                json={
                    "business_name": "Typo",
                    "slug": f"biz-{uuid.uuid4().hex[:10]}",
                    "email": email,
                    "password": PASSWORD,
                    "currency": "EGP",
                    "timezone": "Mars/Olympus",
                },
            )
            assert refused.status_code == 422, refused.text
        business = await sign_up(client, email=email)

    assert business.token


async def test_login_and_signup_fail_open_when_redis_is_down(settings: Settings) -> None:
    async with limited_client(
        settings, public_rate_limit_per_minute=1, redis_url="redis://127.0.0.1:1/0"
    ) as client:
        business = await sign_up(client)
        await sign_up(client)
        wrong = [
            (await login(client, business.email, f"guess-{n}")).status_code
            for n in range(LOGIN_FAILURES_PER_ACCOUNT.limit + 2)
        ]
        right = await login(client, business.email)

    assert wrong == [401] * (LOGIN_FAILURES_PER_ACCOUNT.limit + 2)
    assert right.status_code == 200, right.text
