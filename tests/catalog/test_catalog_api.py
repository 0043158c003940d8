"""Creating and reading every catalog entity through the HTTP API."""

from __future__ import annotations

import uuid

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.factories import make_catalog, sign_up

Client = AsyncTestClient[Litestar]


async def test_branch_is_created_and_listed(client: Client) -> None:
    business = await sign_up(client)
    created = await client.post(
        "/api/v1/branches",
        headers=business.headers,
        json={"name": "  Downtown ", "timezone": "Europe/Berlin"},
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["name"] == "Downtown"
    assert body["timezone"] == "Europe/Berlin"
    listed = await client.get("/api/v1/branches", headers=business.headers)
    assert listed.status_code == 200
    assert listed.json() == [body]


async def test_resource_is_created_with_branches_and_listed(client: Client) -> None:
    business = await sign_up(client)
    branches = []
    for name in ("A", "B"):
        response = await client.post(
            "/api/v1/branches",
            headers=business.headers,
            json={"name": name, "timezone": "Africa/Cairo"},
        )
        branches.append(response.json()["id"])
    created = await client.post(
        "/api/v1/resources",
        headers=business.headers,
        json={
            "name": "Room 1",
            "kind": "room",
            "capacity": 4,
            "branch_ids": branches,
            "commission_bps": 1500,
        },
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["capacity"] == 4
    assert body["kind"] == "room"
    assert body["commission_bps"] == 1500
    assert sorted(body["branch_ids"]) == sorted(branches)
    listed = (await client.get("/api/v1/resources", headers=business.headers)).json()
    assert len(listed) == 1
    assert listed[0]["id"] == body["id"]
    assert sorted(listed[0]["branch_ids"]) == sorted(branches)


async def test_schedule_replaces_weekly_hours_and_overrides(client: Client) -> None:
    business = await sign_up(client)
    ids = await make_catalog(client, business)
    path = f"/api/v1/resources/{ids['resource_id']}/schedule"
    body = {
        "weekly": [
            {"weekday": 0, "start": "09:00", "end": "12:00", "branch_id": ids["branch_id"]},
            {"weekday": 0, "start": "13:00", "end": "17:30", "branch_id": ids["branch_id"]},
        ],
        "overrides": [
            {"date": "2030-01-01", "closed": True},
            {"date": "2030-01-02", "start": "10:00", "end": "14:00"},
        ],
    }
    response = await client.put(path, headers=business.headers, json=body)
    assert response.status_code == 200, response.text
    detail = (
        await client.get(f"/api/v1/resources/{ids['resource_id']}", headers=business.headers)
    ).json()
    schedule = detail["schedule"]
    assert [(w["weekday"], w["start"], w["end"]) for w in schedule["weekly"]] == [
        (0, "09:00", "12:00"),
        (0, "13:00", "17:30"),
    ]
    assert schedule["overrides"] == [
        {"date": "2030-01-01", "closed": True, "start": None, "end": None},
        {"date": "2030-01-02", "closed": False, "start": "10:00", "end": "14:00"},
    ]
    assert detail["capacity"] == 1


async def test_time_off_is_added_and_shown_on_the_resource(client: Client) -> None:
    business = await sign_up(client)
    ids = await make_catalog(client, business)
    response = await client.post(
        f"/api/v1/resources/{ids['resource_id']}/time-off",
        headers=business.headers,
        json={
            "start": "2030-03-01T10:00:00+02:00",
            "end": "2030-03-01T12:00:00+02:00",
            "reason": "dentist",
        },
    )
    assert response.status_code == 201, response.text
    detail = (
        await client.get(f"/api/v1/resources/{ids['resource_id']}", headers=business.headers)
    ).json()
    [time_off] = detail["schedule"]["time_off"]
    assert time_off["reason"] == "dentist"
    assert time_off["start"].startswith("2030-03-01T08:00:00")


async def test_service_is_created_with_all_fields_and_read_back(client: Client) -> None:
    business = await sign_up(client)
    ids = await make_catalog(client, business)
    body = {
        "name": "Haircut",
        "policy": "time_slot",
        "duration_minutes": 45,
        "slot_step_minutes": 15,
        "buffer_before_minutes": 5,
        "buffer_after_minutes": 10,
        "min_notice_minutes": 120,
        "max_advance_days": 60,
        "price": {"amount_minor": 25_000, "currency": "EGP"},
        "pricing": "fixed",
        "branch_prices": [
            {"branch_id": ids["branch_id"], "amount_minor": 30_000, "pricing": "fixed"}
        ],
        "resource_ids": [ids["resource_id"]],
        "cancellation_policy": {
            "tiers": [
                {"hours_before": 2, "refund_bps": 5000},
                {"hours_before": 24, "refund_bps": 10000},
            ],
            "no_show_fee_bps": 10000,
        },
        "commission_bps": 4000,
    }
    created = await client.post("/api/v1/services", headers=business.headers, json=body)
    assert created.status_code == 201, created.text
    service = created.json()
    fetched = await client.get(f"/api/v1/services/{service['id']}", headers=business.headers)
    assert fetched.status_code == 200
    assert fetched.json() == service
    assert service["price"] == {"amount_minor": 25_000, "currency": "EGP"}
    assert service["branch_prices"][0]["amount_minor"] == 30_000
    assert service["commission_bps"] == 4000
    # Tiers come back largest notice first, the order refunds are looked up in.
    assert [t["hours_before"] for t in service["cancellation_policy"]["tiers"]] == [24, 2]
    assert service["cancellation_policy"]["no_show_fee_bps"] == 10000
    listed = (await client.get("/api/v1/services", headers=business.headers)).json()
    assert {s["id"] for s in listed} == {ids["service_id"], service["id"]}


async def test_nightly_and_interval_services_are_created(client: Client) -> None:
    business = await sign_up(client)
    nightly = await make_catalog(client, business, policy="nightly", kind="unit")
    interval = await make_catalog(client, business, policy="interval", kind="equipment")
    for ids, pricing in ((nightly, "nightly"), (interval, "hourly")):
        response = await client.get(
            f"/api/v1/services/{ids['service_id']}", headers=business.headers
        )
        assert response.json()["pricing"] == pricing
    cabin = (
        await client.get(f"/api/v1/services/{nightly['service_id']}", headers=business.headers)
    ).json()
    assert (cabin["check_in_time"], cabin["check_out_time"]) == ("15:00", "11:00")


async def test_product_is_created_with_stock_and_listed(client: Client) -> None:
    business = await sign_up(client)
    ids = await make_catalog(client, business)
    created = await client.post(
        "/api/v1/products",
        headers=business.headers,
        json={
            "name": "Shampoo",
            "price": {"amount_minor": 9_950, "currency": "EGP"},
            "stock": [{"branch_id": ids["branch_id"], "quantity": 12}],
        },
    )
    assert created.status_code == 201, created.text
    product = created.json()
    assert product["stock"] == [{"branch_id": ids["branch_id"], "quantity": 12}]
    listed = (await client.get("/api/v1/products", headers=business.headers)).json()
    assert listed == [product]


async def test_writes_leave_an_audit_row(client: Client, owner_engine: AsyncEngine) -> None:
    business = await sign_up(client)
    ids = await make_catalog(client, business)
    async with owner_engine.connect() as connection:
        actions = set(
            (
                await connection.execute(
                    text("SELECT action FROM audit_log WHERE tenant_id = :t"),
                    {"t": business.tenant_id},
                )
            ).scalars()
        )
    assert {
        "branch.created",
        "resource.created",
        "resource.schedule_set",
        "service.created",
    } <= actions
    assert uuid.UUID(ids["service_id"])
