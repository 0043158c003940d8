"""Role guards, tenant isolation and the public, slug-addressed service list."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.factories import add_user, make_catalog, sign_up

Client = AsyncTestClient[Litestar]


def writes(ids: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    resource = ids["resource_id"]
    return [
        ("POST", "/api/v1/branches", {"name": "North", "timezone": "Africa/Cairo"}),
        (
            "POST",
            "/api/v1/resources",
            {"name": "Chair 2", "kind": "staff", "capacity": 1, "branch_ids": [ids["branch_id"]]},
        ),
        (
            "PUT",
            f"/api/v1/resources/{resource}/schedule",
            {
                "weekly": [
                    {"weekday": 2, "start": "10:00", "end": "11:00", "branch_id": ids["branch_id"]}
                ]
            },
        ),
        (
            "POST",
            f"/api/v1/resources/{resource}/time-off",
            {"start": "2030-01-01T10:00:00Z", "end": "2030-01-01T11:00:00Z"},
        ),
        (
            "POST",
            "/api/v1/services",
            {
                "name": "Shave",
                "policy": "time_slot",
                "duration_minutes": 15,
                "slot_step_minutes": 15,
                "price": {"amount_minor": 500, "currency": "EGP"},
                "pricing": "fixed",
                "resource_ids": [resource],
            },
        ),
        (
            "POST",
            "/api/v1/products",
            {"name": "Wax", "price": {"amount_minor": 100, "currency": "EGP"}},
        ),
    ]


def reads(ids: dict[str, Any]) -> list[str]:
    return [
        "/api/v1/branches",
        "/api/v1/resources",
        f"/api/v1/resources/{ids['resource_id']}",
        "/api/v1/services",
        f"/api/v1/services/{ids['service_id']}",
        "/api/v1/products",
    ]


@pytest.mark.parametrize("role", ["owner", "admin", "staff"])
async def test_only_managers_write_and_everyone_reads(client: Client, role: str) -> None:
    business = await sign_up(client)
    ids = await make_catalog(client, business)
    token = business.token if role == "owner" else await add_user(client, business, role)
    headers = {"Authorization": f"Bearer {token}"}
    for method, path, body in writes(ids):
        response = await client.request(method, path, headers=headers, json=body)
        if role == "staff":
            assert response.status_code == 403, (path, response.text)
            assert response.json()["type"] == "forbidden"
        else:
            assert response.status_code in (200, 201), (path, response.text)
    for path in reads(ids):
        response = await client.get(path, headers=headers)
        assert response.status_code == 200, (path, response.text)
    services = (await client.get("/api/v1/services", headers=headers)).json()
    # Staff writes left nothing behind; managers' service write added one.
    assert len(services) == (1 if role == "staff" else 2)


async def test_catalog_requires_authentication(client: Client) -> None:
    assert (await client.get("/api/v1/services")).status_code == 401
    response = await client.post("/api/v1/branches", json={"name": "X", "timezone": "UTC"})
    assert response.status_code == 401


async def test_tenant_cannot_see_another_tenants_catalog(client: Client) -> None:
    alpha = await sign_up(client)
    beta = await sign_up(client)
    ids = await make_catalog(client, alpha)
    for path in (
        f"/api/v1/services/{ids['service_id']}",
        f"/api/v1/resources/{ids['resource_id']}",
    ):
        response = await client.get(path, headers=beta.headers)
        assert response.status_code == 404, response.text
        assert response.json()["type"] == "not_found"
        assert (await client.get(path, headers=alpha.headers)).status_code == 200
    for path in ("/api/v1/services", "/api/v1/resources", "/api/v1/branches"):
        assert (await client.get(path, headers=beta.headers)).json() == []


async def test_tenant_cannot_use_another_tenants_ids(client: Client) -> None:
    alpha = await sign_up(client)
    beta = await sign_up(client)
    ids = await make_catalog(client, alpha)
    mine = await make_catalog(client, beta)
    service = await client.post(
        "/api/v1/services",
        headers=beta.headers,
        json={
            "name": "Steal",
            "policy": "time_slot",
            "duration_minutes": 30,
            "slot_step_minutes": 30,
            "price": {"amount_minor": 1, "currency": "EGP"},
            "pricing": "fixed",
            "resource_ids": [mine["resource_id"], ids["resource_id"]],
        },
    )
    assert service.status_code == 422
    assert ids["resource_id"] in service.json()["errors"][0]["message"]
    schedule = await client.put(
        f"/api/v1/resources/{ids['resource_id']}/schedule",
        headers=beta.headers,
        json={"weekly": []},
    )
    assert schedule.status_code == 404
    detail = (
        await client.get(f"/api/v1/resources/{ids['resource_id']}", headers=alpha.headers)
    ).json()
    assert len(detail["schedule"]["weekly"]) == 7


async def test_public_services_by_slug_without_auth(client: Client) -> None:
    alpha = await sign_up(client)
    beta = await sign_up(client)
    ids = await make_catalog(client, alpha, commission_bps=3000)
    await make_catalog(client, beta)
    response = await client.get(f"/public/{alpha.slug}/services")
    assert response.status_code == 200, response.text
    [service] = response.json()
    assert service["id"] == ids["service_id"]
    assert service["price"] == {"amount_minor": 10_000, "currency": "EGP"}
    assert "commission_bps" not in service


async def test_public_services_for_unknown_slug_is_not_found(client: Client) -> None:
    response = await client.get("/public/no-such-business/services")
    assert response.status_code == 404
    assert response.json()["type"] == "not_found"
