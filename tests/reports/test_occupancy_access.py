"""Occupancy report: role guards, tenant isolation, bad input, and a booking placed by HTTP."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.factories import add_user, make_catalog, sign_up
from tests.reports.support import Client, insert_booking, occupancy

PATH = "/api/v1/reports/occupancy"


@pytest.mark.parametrize("role", ["owner", "admin", "staff"])
async def test_occupancy_is_for_managers_only(client: Client, role: str) -> None:
    business = await sign_up(client)
    token = business.token if role == "owner" else await add_user(client, business, role)
    response = await client.get(
        PATH,
        params={"from": "2030-01-01", "to": "2030-01-07"},
        headers={"Authorization": f"Bearer {token}"},
    )
    if role == "staff":
        assert response.status_code == 403, response.text
        assert response.json()["type"] == "forbidden"
    else:
        assert response.status_code == 200, response.text
    unauthenticated = await client.get(PATH, params={"from": "2030-01-01", "to": "2030-01-07"})
    assert unauthenticated.status_code == 401


async def test_occupancy_sees_only_the_callers_tenant(
    client: Client, owner_engine: AsyncEngine
) -> None:
    mine, theirs = await sign_up(client), await sign_up(client)
    catalog = await make_catalog(client, theirs)
    start = datetime(2030, 1, 7, 10, tzinfo=ZoneInfo("Africa/Cairo"))
    await insert_booking(owner_engine, theirs.tenant_id, catalog, start)

    own = await occupancy(client, mine, "2030-01-07", "2030-01-07")
    assert own["rows"] == [] and own["totals"] == [] and own["top_resources"] == []
    other = await occupancy(client, theirs, "2030-01-07", "2030-01-07")
    assert other["totals"][0]["booked"] == 60


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2030-01-08", "to": "2030-01-07"}, "to"),
        ({"from": "2030-01-01", "to": "2031-01-02"}, "to"),
        ({"from": "2030-01-01", "to": "2030-01-07", "group_by": "week"}, "group_by"),
        ({"from": "2030-13-01", "to": "2030-01-07"}, None),
        ({"to": "2030-01-07"}, None),
    ],
)
async def test_occupancy_rejects_bad_input_as_problem_json(
    client: Client, params: dict[str, str], field: str | None
) -> None:
    business = await sign_up(client)
    response = await client.get(PATH, params=params, headers=business.headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["type"] == "validation_error"
    if field:
        assert body["errors"][0]["field"] == field


async def test_a_year_range_is_accepted(client: Client) -> None:
    business = await sign_up(client)
    await make_catalog(client, business)
    body = await occupancy(client, business, "2030-01-01", "2030-12-31", group_by="branch")
    [row] = body["rows"]
    assert row["label"] == "Main branch" and row["available"] == 365 * 8 * 60


async def test_booking_placed_through_the_api_is_counted(client: Client) -> None:
    business = await sign_up(client)
    catalog = await make_catalog(client, business)
    cairo = ZoneInfo("Africa/Cairo")
    day = datetime.now(cairo).date() + timedelta(days=3)
    start = datetime(day.year, day.month, day.day, 10, tzinfo=cairo)
    placed = await client.post(
        "/api/v1/bookings",
        headers=business.headers,
        json={
            "service_id": catalog["service_id"],
            "branch_id": catalog["branch_id"],
            "resource_id": catalog["resource_id"],
            "start": start.isoformat(),
            "customer": {"name": "Layla Hassan", "email": "layla@example.com"},
            "payment": {"provider": "cash"},
        },
    )
    assert placed.status_code == 201, placed.text
    body = await occupancy(client, business, day.isoformat(), day.isoformat())
    [total] = body["totals"]
    assert (total["available"], total["booked"], total["bookings"]) == (480, 60, 1)
    assert total["utilisation_bps"] == 1_250
