"""Helpers that create data through the public API, as a client would."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

PASSWORD = "correct horse battery"


@dataclass
class Business:
    tenant_id: uuid.UUID
    slug: str
    token: str
    email: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def sign_up(client: AsyncTestClient[Litestar], *, currency: str = "EGP",
                  timezone: str = "Africa/Cairo", **overrides: Any) -> Business:
    slug = overrides.pop("slug", f"biz-{uuid.uuid4().hex[:10]}")
    email = overrides.pop("email", f"owner-{uuid.uuid4().hex[:8]}@example.com")
    body = {"business_name": f"Business {slug}", "slug": slug, "email": email,
            "password": PASSWORD, "currency": currency, "timezone": timezone, **overrides}
    response = await client.post("/api/v1/signup", json=body)
    assert response.status_code == 201, response.text
    data = response.json()
    return Business(uuid.UUID(data["tenant_id"]), slug, data["access_token"], email)


async def add_user(client: AsyncTestClient[Litestar], business: Business, role: str) -> str:
    """Create a user with `role` and return a bearer token for them."""
    email = f"{role}-{uuid.uuid4().hex[:8]}@example.com"
    response = await client.post("/api/v1/users", headers=business.headers,
                                 json={"email": email, "password": PASSWORD, "role": role})
    assert response.status_code == 201, response.text
    token = await client.post("/api/v1/auth/token", json={"email": email, "password": PASSWORD})
    assert token.status_code == 200, token.text
    return str(token.json()["access_token"])
