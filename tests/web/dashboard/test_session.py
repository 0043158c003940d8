"""Dashboard sign-in: the session cookie, CSRF on every form and fetch, sign-out, roles and
deactivation exactly as the API applies them."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from litestar import Litestar
from litestar.datastructures import State

from app.edge.web.config import STATE_KEY, web_config
from app.edge.web.dashboard.session import SESSION_COOKIE, session_cookie
from tests.factories import PASSWORD, Business
from tests.web.dashboard.support import hidden_value, sign_in
from tests.web.support import Client, at, make_site, tomorrow_local


async def add_member(client: Client, business: Business, role: str) -> tuple[str, str]:
    email = f"{role}-{uuid.uuid4().hex[:8]}@example.com"
    response = await client.post(
        "/api/v1/users",
        headers=business.headers,
        json={"email": email, "password": PASSWORD, "role": role},
    )
    assert response.status_code == 201, response.text
    return email, str(response.json()["id"])


async def test_sign_in_sets_an_httponly_lax_session_cookie_scoped_to_the_dashboard(
    client: Client,
) -> None:
    site = await make_site(client, name="Nile Hair & Beauty")
    form = await client.get("/dashboard/sign-in")
    response = await client.post(
        "/dashboard/sign-in",
        data={
            "_csrf": hidden_value(form.text, "_csrf"),
            "email": site.business.email,
            "password": PASSWORD,
        },
        follow_redirects=False,
    )
    assert response.status_code == 303
    cookie = next(
        c for c in response.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE + "=")
    )
    flags = [part.strip().lower() for part in cookie.split(";")]
    assert "httponly" in flags
    assert "samesite=lax" in flags
    assert "path=/dashboard" in flags
    assert "secure" not in flags  # a test server is not production
    page = await client.get("/dashboard/calendar")
    assert page.status_code == 200
    assert "Nile Hair &amp; Beauty" in page.text
    assert page.headers["cache-control"] == "no-store"
    # The token is in the HttpOnly cookie only, never in the page.
    assert client.cookies[SESSION_COOKIE] not in page.text


async def test_session_cookie_is_secure_in_production(app: Litestar) -> None:
    production = dataclasses.replace(web_config(app.state), environment="production")
    state = State({STATE_KEY: production, "jwt_auth": app.state.jwt_auth})
    connection: Any = SimpleNamespace(app=SimpleNamespace(state=state))
    cookie = session_cookie(connection, "token")
    assert cookie.secure and cookie.httponly and cookie.samesite == "lax"


async def test_wrong_password_is_refused_without_a_session(client: Client) -> None:
    site = await make_site(client)
    form = await client.get("/dashboard/sign-in")
    response = await client.post(
        "/dashboard/sign-in",
        data={
            "_csrf": hidden_value(form.text, "_csrf"),
            "email": site.business.email,
            "password": "not the password",
        },
    )
    assert response.status_code == 401
    assert "do not match" in response.text
    assert SESSION_COOKIE not in client.cookies
    assert (await client.get("/dashboard/calendar", follow_redirects=False)).status_code == 303


async def test_sign_in_without_the_forms_csrf_token_is_refused(client: Client) -> None:
    site = await make_site(client)
    await client.get("/dashboard/sign-in")
    response = await client.post(
        "/dashboard/sign-in", data={"email": site.business.email, "password": PASSWORD}
    )
    assert response.status_code == 403
    assert SESSION_COOKIE not in client.cookies


async def test_sign_in_counts_against_the_api_logins_rate_limit(client: Client) -> None:
    site = await make_site(client)
    for _ in range(10):
        failed = await client.post(
            "/api/v1/auth/token", json={"email": site.business.email, "password": "wrong-pass"}
        )
        assert failed.status_code == 401
    form = await client.get("/dashboard/sign-in")
    response = await client.post(
        "/dashboard/sign-in",
        data={
            "_csrf": hidden_value(form.text, "_csrf"),
            "email": site.business.email,
            "password": "wrong-pass",
        },
    )
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) > 0


async def test_pages_without_a_session_send_to_sign_in_and_fetches_get_401(
    client: Client,
) -> None:
    page = await client.get("/dashboard/calendar?view=day", follow_redirects=False)
    assert page.status_code == 303
    assert (
        page.headers["location"] == "/dashboard/sign-in?next=%2Fdashboard%2Fcalendar%3Fview%3Dday"
    )
    fetch = await client.get("/dashboard/api/events")
    assert fetch.status_code == 401
    assert fetch.headers["content-type"].startswith("application/problem+json")
    # A forged cookie is no session.
    client.cookies.set(SESSION_COOKIE, "eyJhbGciOiJIUzI1NiJ9.e30.forged", path="/dashboard")
    assert (await client.get("/dashboard/calendar", follow_redirects=False)).status_code == 303


async def test_sign_out_ends_the_session(client: Client) -> None:
    site = await make_site(client)
    csrf = await sign_in(client, site.business.email)
    refused = await client.post("/dashboard/sign-out", follow_redirects=False)
    assert refused.status_code == 403
    response = await client.post(
        "/dashboard/sign-out", data={"_csrf": csrf}, follow_redirects=False
    )
    assert response.status_code == 303
    assert SESSION_COOKIE not in client.cookies
    assert (await client.get("/dashboard/calendar", follow_redirects=False)).status_code == 303


async def test_staff_see_no_money_pages_and_get_403_when_typed(client: Client) -> None:
    site = await make_site(client)
    email, _ = await add_member(client, site.business, "staff")
    await sign_in(client, email)
    page = await client.get("/dashboard/calendar")
    for label in ("Calendar", "Bookings"):
        assert f">{label}</a>" in page.text
    for money in ("Revenue", "Payouts", "Reconciliation", "Ledger"):
        assert f">{money}</a>" not in page.text
    for path in ("revenue", "payouts", "reconciliation", "ledger"):
        response = await client.get(f"/dashboard/money/{path}")
        assert response.status_code == 403, path
    month = await client.get("/dashboard/calendar?view=month")
    assert month.status_code == 200
    assert "% full" not in month.text  # occupancy is a report: managers only
    client.cookies.clear()
    await sign_in(client, site.business.email)
    for path in ("revenue", "payouts", "reconciliation", "ledger"):
        response = await client.get(f"/dashboard/money/{path}")
        assert response.status_code == 200, path
    assert ">Revenue</a>" in (await client.get("/dashboard/calendar")).text


async def test_a_deactivated_users_session_is_refused_on_the_next_request(
    client: Client,
) -> None:
    site = await make_site(client)
    email, user_id = await add_member(client, site.business, "staff")
    await sign_in(client, email)
    assert (await client.get("/dashboard/bookings")).status_code == 200
    response = await client.patch(
        f"/api/v1/users/{user_id}", headers=site.business.headers, json={"active": False}
    )
    assert response.status_code == 200, response.text
    page = await client.get("/dashboard/bookings", follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"].startswith("/dashboard/sign-in")


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def _booking(client: Client, site: Any, hour: int, provider: str = "cash") -> str:
    response = await client.post(
        "/api/v1/bookings",
        headers=site.business.headers,
        json={
            "service_id": site.services["haircut"],
            "branch_id": site.branch_id,
            "resource_id": site.resources["mona"],
            "start": at(tomorrow_local(), hour).isoformat(),
            "customer": {"name": f"Customer {hour}", "phone": "+201001112223"},
            "payment": {"provider": provider},
        },
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def test_a_form_post_without_the_csrf_token_is_403_and_changes_nothing(
    client: Client,
) -> None:
    site = await make_site(client)
    booking = await _booking(client, site, 10)
    csrf = await sign_in(client, site.business.email)
    for data in ({}, {"_csrf": "forged"}, {"_csrf": csrf + "x"}):
        response = await client.post(f"/dashboard/bookings/{booking}/cancel", data=data)
        assert response.status_code == 403
    moved = await client.post(
        f"/dashboard/api/bookings/{booking}/reschedule",
        json={"start": at(tomorrow_local(), 14).isoformat()},
    )
    assert moved.status_code == 403
    state = await client.get(f"/api/v1/bookings/{booking}", headers=site.business.headers)
    assert state.json()["status"] == "confirmed"
    assert _instant(state.json()["start"]) == at(tomorrow_local(), 10)
    response = await client.post(f"/dashboard/bookings/{booking}/cancel", data={"_csrf": csrf})
    assert response.status_code == 200  # followed to the booking's page
    state = await client.get(f"/api/v1/bookings/{booking}", headers=site.business.headers)
    assert state.json()["status"] == "cancelled"


async def test_another_business_sees_and_changes_nothing_of_ours(client: Client) -> None:
    ours = await make_site(client)
    theirs = await make_site(client)
    booking = await _booking(client, ours, 10)
    csrf = await sign_in(client, theirs.business.email)
    week = await client.get(f"/dashboard/calendar?view=week&date={tomorrow_local()}")
    assert "Customer 10" not in week.text
    listed = await client.get(f"/dashboard/bookings?from={tomorrow_local()}")
    assert "Customer 10" not in listed.text
    assert (await client.get(f"/dashboard/bookings/{booking}")).status_code == 404
    moved = await client.post(
        f"/dashboard/api/bookings/{booking}/reschedule",
        json={"start": at(tomorrow_local(), 14).isoformat()},
        headers={"X-CSRF-Token": csrf},
    )
    assert moved.status_code == 404
    cancel = await client.post(f"/dashboard/bookings/{booking}/cancel", data={"_csrf": csrf})
    assert cancel.status_code == 404
    state = await client.get(f"/api/v1/bookings/{booking}", headers=ours.business.headers)
    assert state.json()["status"] == "confirmed"
    assert _instant(state.json()["start"]) == at(tomorrow_local(), 10)
