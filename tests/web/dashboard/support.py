"""Signing in to the dashboard the way a browser does: the form's CSRF token and cookie."""

from __future__ import annotations

import re

from tests.factories import PASSWORD
from tests.web.support import Client


def hidden_value(html: str, name: str) -> str:
    found = re.search(rf'name="{re.escape(name)}" value="([^"]*)"', html)
    assert found, f"no hidden input {name}"
    return found.group(1)


async def sign_in(client: Client, email: str, password: str = PASSWORD) -> str:
    """Sign in through the form; returns the session's CSRF token (from the calendar page)."""
    form = await client.get("/dashboard/sign-in")
    assert form.status_code == 200, form.text
    response = await client.post(
        "/dashboard/sign-in",
        data={"_csrf": hidden_value(form.text, "_csrf"), "email": email, "password": password},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/dashboard/calendar"
    page = await client.get("/dashboard/calendar")
    assert page.status_code == 200, page.text
    return hidden_value(page.text, "_csrf")
