"""A business for page tests, created through the API as an owner would: a branch in Cairo,
two stylists, a 6-place studio, a nightly cabin, an hourly kayak fleet and a product."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.factories import Business, sign_up

Client = AsyncTestClient[Litestar]
CAIRO = ZoneInfo("Africa/Cairo")


@dataclass
class Site:
    business: Business
    branch_id: str
    services: dict[str, str]
    resources: dict[str, str]
    product_id: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def slug(self) -> str:
        return self.business.slug


async def _post(client: Client, business: Business, path: str, body: dict[str, Any]) -> str:
    response = await client.post(path, headers=business.headers, json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _resource(
    client: Client, business: Business, branch: str, name: str, kind: str, capacity: int
) -> str:
    resource = await _post(
        client,
        business,
        "/api/v1/resources",
        {"name": name, "kind": kind, "capacity": capacity, "branch_ids": [branch]},
    )
    weekly = [
        {"weekday": d, "start": "09:00", "end": "17:00", "branch_id": branch} for d in range(7)
    ]
    response = await client.put(
        f"/api/v1/resources/{resource}/schedule",
        headers=business.headers,
        json={"weekly": weekly, "overrides": []},
    )
    assert response.status_code == 200, response.text
    return resource


async def make_site(
    client: Client, *, name: str | None = None, providers: list[str] | None = None
) -> Site:
    business = await sign_up(client, business_name=name or f"Salon {uuid.uuid4().hex[:6]}")
    branch = await _post(
        client, business, "/api/v1/branches", {"name": "Zamalek", "timezone": "Africa/Cairo"}
    )
    mona = await _resource(client, business, branch, "Mona", "staff", 1)
    omar = await _resource(client, business, branch, "Omar", "staff", 1)
    studio = await _resource(client, business, branch, "Studio", "room", 6)
    cabin = await _resource(client, business, branch, "Cabin", "unit", 1)
    kayaks = await _resource(client, business, branch, "Kayaks", "equipment", 4)
    egp = {"currency": "EGP"}
    services = {
        "haircut": await _post(
            client,
            business,
            "/api/v1/services",
            {
                "name": "Haircut",
                "policy": "time_slot",
                "price": {"amount_minor": 35_000, **egp},
                "pricing": "fixed",
                "duration_minutes": 60,
                "slot_step_minutes": 60,
                "resource_ids": [mona, omar],
                "cancellation_policy": {
                    "tiers": [
                        {"hours_before": 24, "refund_bps": 10_000},
                        {"hours_before": 2, "refund_bps": 5_000},
                    ]
                },
            },
        ),
        "yoga": await _post(
            client,
            business,
            "/api/v1/services",
            {
                "name": "Yoga class",
                "policy": "time_slot",
                "price": {"amount_minor": 20_000, **egp},
                "pricing": "fixed",
                "duration_minutes": 60,
                "slot_step_minutes": 60,
                "resource_ids": [studio],
            },
        ),
        "cabin": await _post(
            client,
            business,
            "/api/v1/services",
            {
                "name": "Cabin stay",
                "policy": "nightly",
                "price": {"amount_minor": 100_000, **egp},
                "pricing": "nightly",
                "check_in_time": "15:00",
                "check_out_time": "11:00",
                "min_nights": 2,
                "max_nights": 5,
                "resource_ids": [cabin],
            },
        ),
        "kayak": await _post(
            client,
            business,
            "/api/v1/services",
            {
                "name": "Kayak rental",
                "policy": "interval",
                "price": {"amount_minor": 5_000, **egp},
                "pricing": "hourly",
                "slot_step_minutes": 30,
                "min_minutes": 60,
                "max_minutes": 180,
                "resource_ids": [kayaks],
            },
        ),
    }
    product = await _post(
        client,
        business,
        "/api/v1/products",
        {
            "name": "Argan oil",
            "price": {"amount_minor": 45_000, **egp},
            "stock": [{"branch_id": branch, "quantity": 5}],
        },
    )
    response = await client.put(
        "/api/v1/settings/providers",
        headers=business.headers,
        json={"enabled": providers or ["cash", "sandbox"]},
    )
    assert response.status_code == 200, response.text
    return Site(
        business,
        branch,
        services,
        {"mona": mona, "omar": omar, "studio": studio, "cabin": cabin, "kayaks": kayaks},
        product,
    )


def tomorrow_local() -> date:
    return (datetime.now(UTC).astimezone(CAIRO) + timedelta(days=1)).date()


def at(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=CAIRO)


def hidden(html: str, name: str) -> str:
    found = re.search(rf'name="{re.escape(name)}" value="([^"]*)"', html)
    assert found, f"no hidden input {name}"
    return found.group(1)


def details_form(site: Site, start: datetime, **fields: str) -> dict[str, str]:
    return {
        "service": site.services["haircut"],
        "branch": site.branch_id,
        "start": start.isoformat(),
        "party": "1",
        "name": "Layla Hassan",
        "phone": "+20 100 000 0000",
        "email": "layla@example.com",
        "payment": "cash",
        **fields,
    }


def manage_path(location: str) -> str:
    found = re.match(r"(/b/[^/]+/m/[^/?#]+)", location)
    assert found, location
    return found.group(1)
