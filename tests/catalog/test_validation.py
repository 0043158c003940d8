"""Every invalid catalog write is a 422 naming the bad field, and changes nothing."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.factories import Business, make_catalog, sign_up

Client = AsyncTestClient[Litestar]
UNKNOWN = str(uuid.UUID(int=7))
TABLES = [
    "branches",
    "resources",
    "resource_branches",
    "services",
    "service_resources",
    "service_branch_prices",
    "products",
    "product_stock",
    "resource_hours",
    "schedule_overrides",
    "time_off",
]


async def row_counts(engine: AsyncEngine, tenant_id: uuid.UUID) -> dict[str, int]:
    async with engine.connect() as connection:
        return {
            table: (
                await connection.execute(
                    text(f"SELECT count(*) FROM {table} WHERE tenant_id = :t"), {"t": tenant_id}
                )
            ).scalar_one()
            for table in TABLES
        }


def fields_of(response: Any) -> list[str]:
    body = response.json()
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert body["type"] == "validation_error"
    return [error.get("field") or error.get("key") for error in body["errors"]]


async def setup(client: Client) -> tuple[Business, dict[str, Any]]:
    business = await sign_up(client)
    return business, await make_catalog(client, business)


def time_slot(ids: dict[str, Any], **changes: Any) -> dict[str, Any]:
    body = {
        "name": "Cut",
        "policy": "time_slot",
        "duration_minutes": 30,
        "slot_step_minutes": 15,
        "price": {"amount_minor": 1000, "currency": "EGP"},
        "pricing": "fixed",
        "resource_ids": [ids["resource_id"]],
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def nightly(ids: dict[str, Any], **changes: Any) -> dict[str, Any]:
    base = {
        "policy": "nightly",
        "pricing": "nightly",
        "duration_minutes": None,
        "slot_step_minutes": None,
        "check_in_time": "15:00",
        "check_out_time": "11:00",
        "min_nights": 1,
        "max_nights": 7,
    }
    return time_slot(ids, **{**base, **changes})


def interval(ids: dict[str, Any], **changes: Any) -> dict[str, Any]:
    base = {
        "policy": "interval",
        "pricing": "hourly",
        "duration_minutes": None,
        "slot_step_minutes": 30,
        "min_minutes": 60,
        "max_minutes": 240,
    }
    return time_slot(ids, **{**base, **changes})


SERVICE_CASES = [
    ("unknown policy", lambda i: time_slot(i, policy="weekly"), "policy"),
    (
        "time slot without duration",
        lambda i: time_slot(i, duration_minutes=None),
        "duration_minutes",
    ),
    ("zero duration", lambda i: time_slot(i, duration_minutes=0), "duration_minutes"),
    (
        "interval without step",
        lambda i: time_slot(
            i, policy="interval", pricing="hourly", duration_minutes=None, slot_step_minutes=None
        ),
        "slot_step_minutes",
    ),
    ("time slot priced hourly", lambda i: time_slot(i, pricing="hourly"), "pricing"),
    ("nights field on a time slot", lambda i: time_slot(i, min_nights=2), "min_nights"),
    ("nightly without check-in", lambda i: nightly(i, check_in_time=None), "check_in_time"),
    ("nightly with bad check-out", lambda i: nightly(i, check_out_time="25:00"), "check_out_time"),
    ("nightly min nights zero", lambda i: nightly(i, min_nights=0), "min_nights"),
    ("nightly max below min", lambda i: nightly(i, min_nights=3, max_nights=2), "max_nights"),
    ("nightly priced fixed", lambda i: nightly(i, pricing="fixed"), "pricing"),
    (
        "interval without granularity",
        lambda i: interval(i, slot_step_minutes=None),
        "slot_step_minutes",
    ),
    (
        "interval max below min",
        lambda i: interval(i, min_minutes=120, max_minutes=60),
        "max_minutes",
    ),
    ("interval min off the grid", lambda i: interval(i, min_minutes=45), "min_minutes"),
    ("interval priced nightly", lambda i: interval(i, pricing="nightly"), "pricing"),
    (
        "foreign currency",
        lambda i: time_slot(i, price={"amount_minor": 1, "currency": "USD"}),
        "price.currency",
    ),
    (
        "negative price",
        lambda i: time_slot(i, price={"amount_minor": -1, "currency": "EGP"}),
        "price.amount_minor",
    ),
    ("unknown resource", lambda i: time_slot(i, resource_ids=[UNKNOWN]), "resource_ids"),
    ("no resource", lambda i: time_slot(i, resource_ids=[]), "resource_ids"),
    (
        "unknown price branch",
        lambda i: time_slot(
            i, branch_prices=[{"branch_id": UNKNOWN, "amount_minor": 5, "pricing": "fixed"}]
        ),
        "branch_prices",
    ),
    (
        "branch price pricing mismatch",
        lambda i: time_slot(
            i, branch_prices=[{"branch_id": i["branch_id"], "amount_minor": 5, "pricing": "hourly"}]
        ),
        "branch_prices[0].pricing",
    ),
    ("commission over 100%", lambda i: time_slot(i, commission_bps=10_001), "commission_bps"),
    (
        "refund over 100%",
        lambda i: time_slot(
            i, cancellation_policy={"tiers": [{"hours_before": 24, "refund_bps": 10_001}]}
        ),
        "cancellation_policy.tiers[0].refund_bps",
    ),
    (
        "no-show fee negative",
        lambda i: time_slot(i, cancellation_policy={"tiers": [], "no_show_fee_bps": -1}),
        "cancellation_policy.no_show_fee_bps",
    ),
    ("wrong type", lambda i: time_slot(i, duration_minutes="long"), "duration_minutes"),
]


@pytest.mark.parametrize(
    ("case", "make_body", "field"), SERVICE_CASES, ids=[c[0] for c in SERVICE_CASES]
)
async def test_invalid_service_is_rejected(
    client: Client, owner_engine: AsyncEngine, case: str, make_body: Any, field: str
) -> None:
    business, ids = await setup(client)
    before = await row_counts(owner_engine, business.tenant_id)
    response = await client.post("/api/v1/services", headers=business.headers, json=make_body(ids))
    assert any(field in (name or "") for name in fields_of(response)), response.text
    assert await row_counts(owner_engine, business.tenant_id) == before


async def test_a_time_slot_service_without_a_step_steps_by_its_duration(client: Client) -> None:
    business, ids = await setup(client)
    created = await client.post(
        "/api/v1/services",
        headers=business.headers,
        json=time_slot(ids, duration_minutes=45, slot_step_minutes=None),
    )
    assert created.status_code == 201, created.text
    assert created.json()["slot_step_minutes"] == 45


OTHER_CASES = [
    (
        "branch with unknown timezone",
        "POST",
        "/api/v1/branches",
        lambda i: {"name": "X", "timezone": "Mars/Olympus"},
        "timezone",
    ),
    (
        "branch with blank name",
        "POST",
        "/api/v1/branches",
        lambda i: {"name": "  ", "timezone": "UTC"},
        "name",
    ),
    (
        "resource of unknown kind",
        "POST",
        "/api/v1/resources",
        lambda i: {"name": "R", "kind": "robot", "capacity": 1, "branch_ids": [i["branch_id"]]},
        "kind",
    ),
    (
        "resource capacity zero",
        "POST",
        "/api/v1/resources",
        lambda i: {"name": "R", "kind": "room", "capacity": 0, "branch_ids": [i["branch_id"]]},
        "capacity",
    ),
    (
        "resource capacity too large",
        "POST",
        "/api/v1/resources",
        lambda i: {"name": "R", "kind": "room", "capacity": 10_001, "branch_ids": [i["branch_id"]]},
        "capacity",
    ),
    (
        "resource commission out of range",
        "POST",
        "/api/v1/resources",
        lambda i: {
            "name": "R",
            "kind": "staff",
            "capacity": 1,
            "commission_bps": -5,
            "branch_ids": [i["branch_id"]],
        },
        "commission_bps",
    ),
    (
        "resource in unknown branch",
        "POST",
        "/api/v1/resources",
        lambda i: {"name": "R", "kind": "staff", "capacity": 1, "branch_ids": [UNKNOWN]},
        "branch_ids",
    ),
    (
        "resource in no branch",
        "POST",
        "/api/v1/resources",
        lambda i: {"name": "R", "kind": "staff", "capacity": 1, "branch_ids": []},
        "branch_ids",
    ),
    (
        "product with negative stock",
        "POST",
        "/api/v1/products",
        lambda i: {
            "name": "P",
            "price": {"amount_minor": 1, "currency": "EGP"},
            "stock": [{"branch_id": i["branch_id"], "quantity": -1}],
        },
        "stock[0].quantity",
    ),
    (
        "product in foreign currency",
        "POST",
        "/api/v1/products",
        lambda i: {"name": "P", "price": {"amount_minor": 1, "currency": "USD"}, "stock": []},
        "price.currency",
    ),
    (
        "product stock in unknown branch",
        "POST",
        "/api/v1/products",
        lambda i: {
            "name": "P",
            "price": {"amount_minor": 1, "currency": "EGP"},
            "stock": [{"branch_id": UNKNOWN, "quantity": 1}],
        },
        "stock",
    ),
    (
        "time off ending before it starts",
        "POST",
        "/api/v1/resources/{r}/time-off",
        lambda i: {"start": "2030-01-01T12:00:00Z", "end": "2030-01-01T11:00:00Z"},
        "end",
    ),
    (
        "time off without offset",
        "POST",
        "/api/v1/resources/{r}/time-off",
        lambda i: {"start": "2030-01-01T10:00:00", "end": "2030-01-01T11:00:00Z"},
        "start",
    ),
]


def week(ids: dict[str, Any], *windows: tuple[int, str, str]) -> list[dict[str, Any]]:
    return [
        {"weekday": d, "start": s, "end": e, "branch_id": ids["branch_id"]} for d, s, e in windows
    ]


SCHEDULE_CASES = [
    (
        "window ends before start",
        lambda i: {"weekly": week(i, (0, "12:00", "09:00"))},
        "weekly[0].end",
    ),
    ("empty window", lambda i: {"weekly": week(i, (0, "09:00", "09:00"))}, "weekly[0].end"),
    (
        "overlapping windows",
        lambda i: {"weekly": week(i, (1, "09:00", "12:00"), (1, "11:00", "14:00"))},
        "weekly",
    ),
    (
        "weekday out of range",
        lambda i: {"weekly": week(i, (7, "09:00", "12:00"))},
        "weekly[0].weekday",
    ),
    ("malformed time", lambda i: {"weekly": week(i, (0, "9am", "12:00"))}, "weekly[0].start"),
    (
        "branch the resource is not in",
        lambda i: {
            "weekly": [{"weekday": 0, "start": "09:00", "end": "10:00", "branch_id": UNKNOWN}]
        },
        "weekly[0].branch_id",
    ),
    (
        "open override without hours",
        lambda i: {"weekly": [], "overrides": [{"date": "2030-01-01"}]},
        "overrides[0].start",
    ),
    (
        "closed override with hours",
        lambda i: {
            "weekly": [],
            "overrides": [{"date": "2030-01-01", "closed": True, "start": "09:00", "end": "10:00"}],
        },
        "overrides[0]",
    ),
    (
        "override ends before start",
        lambda i: {
            "weekly": [],
            "overrides": [{"date": "2030-01-01", "start": "10:00", "end": "09:00"}],
        },
        "overrides[0].end",
    ),
]


@pytest.mark.parametrize(
    ("case", "method", "path", "make_body", "field"), OTHER_CASES, ids=[c[0] for c in OTHER_CASES]
)
async def test_invalid_catalog_write_is_rejected(
    client: Client,
    owner_engine: AsyncEngine,
    case: str,
    method: str,
    path: str,
    make_body: Any,
    field: str,
) -> None:
    business, ids = await setup(client)
    before = await row_counts(owner_engine, business.tenant_id)
    response = await client.request(
        method,
        path.replace("{r}", ids["resource_id"]),
        headers=business.headers,
        json=make_body(ids),
    )
    assert field in fields_of(response), response.text
    assert await row_counts(owner_engine, business.tenant_id) == before


@pytest.mark.parametrize(
    ("case", "make_body", "field"), SCHEDULE_CASES, ids=[c[0] for c in SCHEDULE_CASES]
)
async def test_invalid_schedule_keeps_the_old_one(
    client: Client, owner_engine: AsyncEngine, case: str, make_body: Any, field: str
) -> None:
    business, ids = await setup(client)
    path = f"/api/v1/resources/{ids['resource_id']}"
    before_rows = await row_counts(owner_engine, business.tenant_id)
    before = (await client.get(path, headers=business.headers)).json()
    response = await client.put(f"{path}/schedule", headers=business.headers, json=make_body(ids))
    assert field in fields_of(response), response.text
    assert (await client.get(path, headers=business.headers)).json() == before
    assert await row_counts(owner_engine, business.tenant_id) == before_rows
    assert before_rows["resource_hours"] == 7


async def test_every_bad_field_is_named_at_once(client: Client) -> None:
    business, _ = await setup(client)
    response = await client.post(
        "/api/v1/resources",
        headers=business.headers,
        json={"name": "", "kind": "robot", "capacity": 0, "branch_ids": [UNKNOWN]},
    )
    assert set(fields_of(response)) == {"name", "kind", "capacity"}


async def test_schedule_of_unknown_resource_is_not_found(client: Client) -> None:
    business, _ = await setup(client)
    response = await client.put(
        f"/api/v1/resources/{UNKNOWN}/schedule", headers=business.headers, json={"weekly": []}
    )
    assert response.status_code == 404
    assert response.json()["type"] == "not_found"


async def test_database_refuses_overlapping_weekly_hours(
    owner_engine: AsyncEngine, client: Client
) -> None:
    """Even a writer that skips the use case cannot store overlapping hours."""
    business, ids = await setup(client)
    async with owner_engine.connect() as connection:
        with pytest.raises(Exception, match="ex_resource_hours_overlap"):
            await connection.execute(
                text(
                    "INSERT INTO resource_hours (tenant_id, id, resource_id, branch_id, weekday,"
                    " start_time, end_time) VALUES (:t, gen_random_uuid(), :r, :b, 0, '16:00',"
                    " '18:00')"
                ),
                {"t": business.tenant_id, "r": ids["resource_id"], "b": ids["branch_id"]},
            )


@pytest.mark.parametrize(
    "make_body", [time_slot, nightly, interval], ids=["time_slot", "nightly", "interval"]
)
async def test_baseline_bodies_are_valid(client: Client, make_body: Any) -> None:
    """The cases above differ from these accepted bodies by exactly the field they break."""
    business, ids = await setup(client)
    response = await client.post("/api/v1/services", headers=business.headers, json=make_body(ids))
    assert response.status_code == 201, response.text
