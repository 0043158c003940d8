"""Availability over HTTP, loaded from PostgreSQL: hours, bookings (with buffers), party
sizes, nightly stays and interval windows, staff and public."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.bookings.setup import Shop
from tests.bookings.test_routes import body, setup, soon
from tests.factories import Business

Client = AsyncTestClient[Litestar]


def query(shop: Shop, days: int = 0, **extra: Any) -> dict[str, Any]:
    return {
        "service_id": str(shop.service_id),
        "branch_id": str(shop.branch_id),
        "from": str(soon()),
        "to": str(soon() + timedelta(days=days)),
        **extra,
    }


async def slots(client: Client, business: Business, shop: Shop, **extra: Any) -> Any:
    response = await client.get(
        "/api/v1/availability", headers=business.headers, params=query(shop, **extra)
    )
    assert response.status_code == 200, response.text
    return response.json()


async def test_time_slots_follow_hours_and_disappear_when_booked_with_buffers(
    client: Client, owner_engine: AsyncEngine
) -> None:
    business, shop = await setup(
        client,
        owner_engine,
        hours=(time(9), time(13)),
        buffer_after_minutes=30,
        slot_step_minutes=30,
    )
    data = await slots(client, business, shop)
    assert data["timezone"] == "Africa/Cairo" and data["policy"] == "time_slot"
    starts = [
        datetime.fromisoformat(s["start"]).astimezone(shop.tz).strftime("%H:%M")
        for s in data["slots"]
    ]
    # 60 minutes + 30 buffer must end by 13:00.
    assert starts == ["09:00", "09:30", "10:00", "10:30", "11:00", "11:30"]
    assert {s["remaining"] for s in data["slots"]} == {1}
    booked = await client.post(
        "/api/v1/bookings", headers=business.headers, json=body(shop, shop.at(soon(), 10))
    )
    assert booked.status_code == 201
    after = await slots(client, business, shop)
    left = [
        datetime.fromisoformat(s["start"]).astimezone(shop.tz).strftime("%H:%M")
        for s in after["slots"]
    ]
    # 10:00-11:30 is blocked; 09:00 would run (with buffer) into it, 11:30 starts after it.
    assert left == ["11:30"]


async def test_capacity_remaining_and_party_size(client: Client, owner_engine: AsyncEngine) -> None:
    business, shop = await setup(client, owner_engine, capacity=5, hours=(time(9), time(11)))
    booked = await client.post(
        "/api/v1/bookings",
        headers=business.headers,
        json=body(shop, shop.at(soon(), 9), party_size=3),
    )
    assert booked.status_code == 201, booked.text
    data = await slots(client, business, shop)
    assert [s["remaining"] for s in data["slots"]] == [2, 5]
    big = await slots(client, business, shop, party_size=3)
    assert len(big["slots"]) == 1
    assert big["slots"][0]["remaining"] == 5


async def test_nightly_reports_check_in_dates_and_free_stay_lengths(
    client: Client, owner_engine: AsyncEngine
) -> None:
    business, shop = await setup(
        client, owner_engine, policy="nightly", pricing="nightly", max_nights=3
    )
    stay = body(
        shop,
        shop.at(soon() + timedelta(days=2), 15),
        end=shop.at(soon() + timedelta(days=3), 11).isoformat(),
    )
    booked = await client.post("/api/v1/bookings", headers=business.headers, json=stay)
    assert booked.status_code == 201, booked.text
    data = await slots(client, business, shop, days=0)
    assert data["policy"] == "nightly" and data["slots"] == []
    assert [(s["check_in_date"], s["nights"]) for s in data["stays"]] == [(str(soon()), [1, 2])]


async def test_nightly_offers_every_stay_length_up_to_max_nights(
    client: Client, owner_engine: AsyncEngine
) -> None:
    business, shop = await setup(
        client, owner_engine, policy="nightly", pricing="nightly", min_nights=2, max_nights=9
    )
    data = await slots(client, business, shop, days=0)
    assert [s["nights"] for s in data["stays"]] == [list(range(2, 10))]


async def test_interval_windows_and_a_chosen_resource(
    client: Client, owner_engine: AsyncEngine
) -> None:
    business, shop = await setup(
        client, owner_engine, policy="interval", resources=2, hours=(time(9), time(17))
    )
    booked = await client.post(
        "/api/v1/bookings",
        headers=business.headers,
        json=body(shop, shop.at(soon(), 12), end=shop.at(soon(), 13).isoformat()),
    )
    assert booked.status_code == 201, booked.text
    data = await slots(client, business, shop, resource_id=str(shop.resource_id))
    windows = [
        (
            datetime.fromisoformat(s["start"]).astimezone(shop.tz).hour,
            datetime.fromisoformat(s["end"]).astimezone(shop.tz).hour,
        )
        for s in data["slots"]
    ]
    assert windows == [(9, 12), (13, 17)]
    assert {s["resource_id"] for s in data["slots"]} == {str(shop.resource_id)}
    both = await slots(client, business, shop)
    assert len({s["resource_id"] for s in both["slots"]}) == 2


async def test_invalid_queries_are_422_and_public_route_matches_staff_route(
    client: Client, owner_engine: AsyncEngine
) -> None:
    business, shop = await setup(client, owner_engine)
    too_long = await client.get(
        "/api/v1/availability", headers=business.headers, params=query(shop, days=90)
    )
    assert too_long.status_code == 422
    backwards = await client.get(
        "/api/v1/availability",
        headers=business.headers,
        params={**query(shop), "to": str(soon() - timedelta(days=1))},
    )
    assert backwards.status_code == 422
    bad_party = await client.get(
        "/api/v1/availability", headers=business.headers, params=query(shop, party_size=0)
    )
    assert bad_party.status_code == 422
    staff = await slots(client, business, shop)
    public = await client.get(f"/public/{business.slug}/availability", params=query(shop))
    assert public.status_code == 200
    assert public.json() == staff
