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


async def sign_up(
    client: AsyncTestClient[Litestar],
    *,
    currency: str = "EGP",
    timezone: str = "Africa/Cairo",
    **overrides: Any,
) -> Business:
    slug = overrides.pop("slug", f"biz-{uuid.uuid4().hex[:10]}")
    email = overrides.pop("email", f"owner-{uuid.uuid4().hex[:8]}@example.com")
    body = {
        "business_name": f"Business {slug}",
        "slug": slug,
        "email": email,
        "password": PASSWORD,
        "currency": currency,
        "timezone": timezone,
        **overrides,
    }
    response = await client.post("/api/v1/signup", json=body)
    assert response.status_code == 201, response.text
    data = response.json()
    return Business(uuid.UUID(data["tenant_id"]), slug, data["access_token"], email)


async def add_user(client: AsyncTestClient[Litestar], business: Business, role: str) -> str:
    """Create a user with `role` and return a bearer token for them."""
    email = f"{role}-{uuid.uuid4().hex[:8]}@example.com"
    response = await client.post(
        "/api/v1/users",
        headers=business.headers,
        json={"email": email, "password": PASSWORD, "role": role},
    )
    assert response.status_code == 201, response.text
    token = await client.post("/api/v1/auth/token", json={"email": email, "password": PASSWORD})
    assert token.status_code == 200, token.text
    return str(token.json()["access_token"])


POLICY_DEFAULTS: dict[str, dict[str, Any]] = {
    "time_slot": {"pricing": "fixed", "duration_minutes": 60, "slot_step_minutes": 60},
    "nightly": {
        "pricing": "nightly",
        "check_in_time": "15:00",
        "check_out_time": "11:00",
        "min_nights": 1,
        "max_nights": 14,
    },
    "interval": {
        "pricing": "hourly",
        "slot_step_minutes": 30,
        "min_minutes": 60,
        "max_minutes": 480,
    },
}


async def make_catalog(
    client: AsyncTestClient[Litestar],
    business: Business,
    *,
    policy: str = "time_slot",
    capacity: int = 1,
    resources: int = 1,
    timezone: str = "Africa/Cairo",
    currency: str = "EGP",
    price_minor: int = 10_000,
    kind: str = "staff",
    start: str = "09:00",
    end: str = "17:00",
    **service_fields: Any,
) -> dict[str, Any]:
    """A branch, `resources` resources working Mon-Sun start-end there, and one service on them.

    `currency` must match the business (sign_up defaults to EGP). `service_fields` override
    the service body (e.g. buffer_before_minutes=15, duration_minutes=30). Returns ids as
    strings: branch_id, resource_id (the first), resource_ids, service_id.
    """
    headers = business.headers
    branch = await client.post(
        "/api/v1/branches", headers=headers, json={"name": "Main branch", "timezone": timezone}
    )
    assert branch.status_code == 201, branch.text
    branch_id = branch.json()["id"]
    resource_ids: list[str] = []
    for number in range(resources):
        resource = await client.post(
            "/api/v1/resources",
            headers=headers,
            json={
                "name": f"Resource {number + 1}",
                "kind": kind,
                "capacity": capacity,
                "branch_ids": [branch_id],
            },
        )
        assert resource.status_code == 201, resource.text
        resource_id = resource.json()["id"]
        weekly = [
            {"weekday": day, "start": start, "end": end, "branch_id": branch_id} for day in range(7)
        ]
        schedule = await client.put(
            f"/api/v1/resources/{resource_id}/schedule",
            headers=headers,
            json={"weekly": weekly, "overrides": []},
        )
        assert schedule.status_code == 200, schedule.text
        resource_ids.append(resource_id)
    body: dict[str, Any] = {
        "name": f"{policy} service",
        "policy": policy,
        "price": {"amount_minor": price_minor, "currency": currency},
        "resource_ids": resource_ids,
        **POLICY_DEFAULTS[policy],
    }
    body.update(service_fields)
    created = await client.post("/api/v1/services", headers=headers, json=body)
    assert created.status_code == 201, created.text
    return {
        "branch_id": branch_id,
        "resource_id": resource_ids[0],
        "resource_ids": resource_ids,
        "service_id": created.json()["id"],
    }
