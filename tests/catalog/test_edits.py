"""PATCH on branches, resources, services and products: only the given fields change, the
result is checked as a create would be (422 naming the field, nothing written), another
tenant's id is 404, staff are 403, and every edit leaves one audit row with before/after."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.factories import Business, add_user, make_catalog, sign_up

Client = AsyncTestClient[Litestar]


async def audit_rows(owner: AsyncEngine, entity_id: str) -> list[Any]:
    async with owner.connect() as conn:
        result = await conn.execute(
            text(
                "SELECT action, before, after FROM audit_log WHERE entity_id = :id "
                "AND action NOT LIKE '%.created' AND action NOT LIKE '%.schedule_set' ORDER BY at"
            ),
            {"id": entity_id},
        )
        return list(result.all())


async def product(client: Client, business: Business, branch_id: str, **extra: Any) -> Any:
    created = await client.post(
        "/api/v1/products",
        headers=business.headers,
        json={
            "name": "Shampoo",
            "price": {"amount_minor": 5_000, "currency": "EGP"},
            "stock": [{"branch_id": branch_id, "quantity": 4}],
            **extra,
        },
    )
    assert created.status_code == 201, created.text
    return created.json()


def problem_fields(response: Any, status: int = 422, kind: str = "validation_error") -> list[str]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["type"] == kind
    return [error.get("field") or error.get("key") for error in body.get("errors", [])]


async def test_branch_patch_changes_only_the_given_field_and_audits_it(
    client: Client, owner_engine: AsyncEngine
) -> None:
    business = await sign_up(client)
    ids = await make_catalog(client, business)
    path = f"/api/v1/branches/{ids['branch_id']}"
    response = await client.patch(path, headers=business.headers, json={"name": " Downtown "})
    assert response.status_code == 200, response.text
    assert response.json() == {
        "id": ids["branch_id"],
        "name": "Downtown",
        "timezone": "Africa/Cairo",
        "archived": False,
    }
    assert (await client.get(path, headers=business.headers)).json()["name"] == "Downtown"
    [(action, before, after)] = await audit_rows(owner_engine, ids["branch_id"])
    assert action == "branch.updated"
    assert (before, after) == ({"name": "Main branch"}, {"name": "Downtown"})


async def test_branch_patch_rejects_a_bad_timezone_naming_the_field(client: Client) -> None:
    business = await sign_up(client)
    ids = await make_catalog(client, business)
    path = f"/api/v1/branches/{ids['branch_id']}"
    response = await client.patch(
        path, headers=business.headers, json={"name": "", "timezone": "Mars/Olympus"}
    )
    assert sorted(problem_fields(response)) == ["name", "timezone"]
    assert (await client.get(path, headers=business.headers)).json()["name"] == "Main branch"


async def test_resource_moves_to_another_branch_and_leaves_its_old_hours(
    client: Client, owner_engine: AsyncEngine
) -> None:
    business = await sign_up(client)
    ids = await make_catalog(client, business)
    north = await client.post(
        "/api/v1/branches", headers=business.headers, json={"name": "North", "timezone": "UTC"}
    )
    north_id = north.json()["id"]
    path = f"/api/v1/resources/{ids['resource_id']}"
    response = await client.patch(
        path,
        headers=business.headers,
        json={"branch_ids": [north_id], "capacity": 3, "commission_bps": 1200},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["branch_ids"] == [north_id]
    assert (body["capacity"], body["commission_bps"], body["name"]) == (3, 1200, "Resource 1")
    detail = (await client.get(path, headers=business.headers)).json()
    # The weekly hours were at the branch it left; they no longer apply anywhere.
    assert detail["schedule"]["weekly"] == []
    cleared = await client.patch(path, headers=business.headers, json={"commission_bps": None})
    assert cleared.json()["commission_bps"] is None
    [(_, before, after), _] = await audit_rows(owner_engine, ids["resource_id"])
    assert before["branch_ids"] == [ids["branch_id"]]
    assert after == {"branch_ids": [north_id], "capacity": 3, "commission_bps": 1200}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"capacity": 0}, "capacity"),
        ({"kind": "robot"}, "kind"),
        ({"commission_bps": 10_001}, "commission_bps"),
        ({"branch_ids": []}, "branch_ids"),
        ({"branch_ids": [str(uuid.UUID(int=7))]}, "branch_ids"),
        ({"name": "   "}, "name"),
    ],
)
async def test_resource_patch_is_checked_as_on_create(
    client: Client, body: dict[str, Any], field: str
) -> None:
    business = await sign_up(client)
    ids = await make_catalog(client, business, capacity=2)
    path = f"/api/v1/resources/{ids['resource_id']}"
    response = await client.patch(path, headers=business.headers, json=body)
    assert problem_fields(response) == [field]
    detail = (await client.get(path, headers=business.headers)).json()
    assert (detail["capacity"], detail["kind"], detail["branch_ids"]) == (
        2,
        "staff",
        [ids["branch_id"]],
    )


async def test_resource_patch_refuses_an_unknown_field_and_a_null_capacity(
    client: Client,
) -> None:
    business = await sign_up(client)
    ids = await make_catalog(client, business)
    path = f"/api/v1/resources/{ids['resource_id']}"
    for body in ({"colour": "red"}, {"capacity": None}):
        response = await client.patch(path, headers=business.headers, json=body)
        assert response.status_code == 422, response.text
        assert response.json()["type"] == "validation_error"


async def test_service_patch_fixes_a_typo_and_changes_the_price_only(
    client: Client, owner_engine: AsyncEngine
) -> None:
    business = await sign_up(client)
    ids = await make_catalog(client, business, buffer_after_minutes=10)
    path = f"/api/v1/services/{ids['service_id']}"
    original = (await client.get(path, headers=business.headers)).json()
    response = await client.patch(
        path,
        headers=business.headers,
        json={"name": "Haircut", "price": {"amount_minor": 12_500, "currency": "EGP"}},
    )
    assert response.status_code == 200, response.text
    changed = response.json()
    assert changed == {
        **original,
        "name": "Haircut",
        "price": {"amount_minor": 12_500, "currency": "EGP"},
    }
    [(action, before, after)] = await audit_rows(owner_engine, ids["service_id"])
    assert action == "service.updated"
    assert before == {
        "name": original["name"],
        "price": {"amount_minor": 10_000, "currency": "EGP"},
    }
    assert after == {"name": "Haircut", "price": {"amount_minor": 12_500, "currency": "EGP"}}


async def test_service_patch_replaces_resources_branch_prices_and_policy_tiers(
    client: Client,
) -> None:
    business = await sign_up(client)
    ids = await make_catalog(client, business, resources=2)
    first, second = ids["resource_ids"]
    path = f"/api/v1/services/{ids['service_id']}"
    response = await client.patch(
        path,
        headers=business.headers,
        json={
            "resource_ids": [second],
            "branch_prices": [
                {"branch_id": ids["branch_id"], "amount_minor": 7_000, "pricing": "fixed"}
            ],
            "cancellation_policy": {"tiers": [{"hours_before": 24, "refund_bps": 10_000}]},
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["resource_ids"] == [second]
    assert body["branch_prices"] == [
        {"branch_id": ids["branch_id"], "amount_minor": 7_000, "pricing": "fixed"}
    ]
    assert body["cancellation_policy"]["tiers"] == [{"hours_before": 24, "refund_bps": 10_000}]
    again = await client.patch(
        path,
        headers=business.headers,
        json={
            "resource_ids": [first, second],
            "branch_prices": [
                {"branch_id": ids["branch_id"], "amount_minor": 8_000, "pricing": "fixed"}
            ],
        },
    )
    assert again.status_code == 200, again.text
    assert sorted(again.json()["resource_ids"]) == sorted([first, second])
    assert again.json()["branch_prices"][0]["amount_minor"] == 8_000
    cleared = await client.patch(path, headers=business.headers, json={"branch_prices": []})
    assert cleared.json()["branch_prices"] == []


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"duration_minutes": None}, ["duration_minutes"]),
        (
            {"duration_minutes": 0, "slot_step_minutes": -1},
            ["duration_minutes", "slot_step_minutes"],
        ),
        ({"min_nights": 2}, ["min_nights"]),
        ({"pricing": "hourly"}, ["pricing"]),
        ({"policy": "nightly"}, ["policy"]),
        ({"price": {"amount_minor": 100, "currency": "USD"}}, ["price.currency"]),
        ({"price": {"amount_minor": -1, "currency": "EGP"}}, ["price.amount_minor"]),
        ({"resource_ids": []}, ["resource_ids"]),
        ({"resource_ids": [str(uuid.UUID(int=7))]}, ["resource_ids"]),
        ({"commission_bps": 100, "commission_fixed_minor": 100}, ["commission_fixed_minor"]),
        (
            {"cancellation_policy": {"tiers": [{"hours_before": 1, "refund_bps": 20_000}]}},
            ["cancellation_policy.tiers[0].refund_bps"],
        ),
    ],
)
async def test_service_patch_is_checked_as_on_create(
    client: Client, body: dict[str, Any], fields: list[str]
) -> None:
    business = await sign_up(client)
    ids = await make_catalog(client, business)
    path = f"/api/v1/services/{ids['service_id']}"
    before = (await client.get(path, headers=business.headers)).json()
    response = await client.patch(path, headers=business.headers, json=body)
    assert problem_fields(response) == fields
    assert (await client.get(path, headers=business.headers)).json() == before


async def test_product_patch_renames_and_reprices_but_never_touches_stock(
    client: Client, owner_engine: AsyncEngine
) -> None:
    business = await sign_up(client)
    ids = await make_catalog(client, business)
    created = await product(client, business, ids["branch_id"])
    path = f"/api/v1/products/{created['id']}"
    response = await client.patch(
        path,
        headers=business.headers,
        json={"name": "Conditioner", "price": {"amount_minor": 6_000, "currency": "EGP"}},
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        **created,
        "name": "Conditioner",
        "price": {"amount_minor": 6_000, "currency": "EGP"},
    }
    overwrite = await client.patch(
        path,
        headers=business.headers,
        json={"stock": [{"branch_id": ids["branch_id"], "quantity": 100}]},
    )
    assert overwrite.status_code == 422
    assert (await client.get(path, headers=business.headers)).json()["stock"] == created["stock"]
    [(action, before, after)] = await audit_rows(owner_engine, created["id"])
    assert action == "product.updated"
    assert before["name"] == "Shampoo"
    assert after["price"] == {"amount_minor": 6_000, "currency": "EGP"}


async def test_product_patch_rejects_another_currency(client: Client) -> None:
    business = await sign_up(client)
    ids = await make_catalog(client, business)
    created = await product(client, business, ids["branch_id"])
    response = await client.patch(
        f"/api/v1/products/{created['id']}",
        headers=business.headers,
        json={"price": {"amount_minor": 1, "currency": "USD"}},
    )
    assert problem_fields(response) == ["price.currency"]


def patches(ids: dict[str, Any], product_id: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"/api/v1/branches/{ids['branch_id']}", {"name": "Renamed"}),
        (f"/api/v1/resources/{ids['resource_id']}", {"name": "Renamed"}),
        (f"/api/v1/services/{ids['service_id']}", {"name": "Renamed"}),
        (f"/api/v1/products/{product_id}", {"name": "Renamed"}),
    ]


async def test_staff_are_refused_every_patch_and_nothing_changes(client: Client) -> None:
    business = await sign_up(client)
    ids = await make_catalog(client, business)
    created = await product(client, business, ids["branch_id"])
    staff = {"Authorization": f"Bearer {await add_user(client, business, 'staff')}"}
    admin = {"Authorization": f"Bearer {await add_user(client, business, 'admin')}"}
    for path, body in patches(ids, created["id"]):
        refused = await client.patch(path, headers=staff, json=body)
        assert refused.status_code == 403, (path, refused.text)
        assert refused.json()["type"] == "forbidden"
        assert (await client.get(path, headers=business.headers)).json()["name"] != "Renamed"
        allowed = await client.patch(path, headers=admin, json=body)
        assert allowed.status_code == 200, (path, allowed.text)


async def test_another_tenants_ids_are_not_found_and_unchanged(client: Client) -> None:
    alpha = await sign_up(client)
    beta = await sign_up(client)
    ids = await make_catalog(client, alpha)
    created = await product(client, alpha, ids["branch_id"])
    for path, body in patches(ids, created["id"]):
        response = await client.patch(path, headers=beta.headers, json=body)
        assert response.status_code == 404, (path, response.text)
        assert response.json()["type"] == "not_found"
        assert (await client.get(path, headers=alpha.headers)).json()["name"] != "Renamed"


async def test_a_branch_address_is_set_changed_and_cleared(client: Client) -> None:
    business = await sign_up(client)
    created = await client.post(
        "/api/v1/branches",
        headers=business.headers,
        json={"name": "Maadi", "timezone": "Africa/Cairo", "address": " 9 Road 9, Maadi "},
    )
    assert created.status_code == 201, created.text
    branch = created.json()
    assert branch["address"] == "9 Road 9, Maadi"
    path = f"/api/v1/branches/{branch['id']}"
    moved = await client.patch(path, headers=business.headers, json={"address": "15 Road 9"})
    assert moved.json()["address"] == "15 Road 9"
    too_long = await client.patch(path, headers=business.headers, json={"address": "x" * 501})
    assert too_long.status_code == 422
    assert [e["field"] for e in too_long.json()["errors"]] == ["address"]
    cleared = await client.patch(path, headers=business.headers, json={"address": None})
    assert "address" not in cleared.json()
    assert "address" not in (await client.get(path, headers=business.headers)).json()
