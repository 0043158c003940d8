"""Occupancy report: exact booked vs available figures for known schedules."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncEngine

from tests.factories import make_catalog, sign_up
from tests.reports.support import Client, add_time_off, insert_booking, occupancy

CAIRO = ZoneInfo("Africa/Cairo")
BERLIN = ZoneInfo("Europe/Berlin")


def cairo(day: int, hour: int) -> datetime:
    return datetime(2030, 1, day, hour, tzinfo=CAIRO)


def by_dimension(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["dimension"]: row for row in rows}


async def test_week_of_two_resources_with_three_bookings_and_a_cancellation(
    client: Client, owner_engine: AsyncEngine
) -> None:
    business = await sign_up(client)
    catalog = await make_catalog(client, business, resources=2)
    first, second = catalog["resource_ids"]
    tenant = business.tenant_id
    await insert_booking(owner_engine, tenant, catalog, cairo(7, 9), status="completed")
    await insert_booking(owner_engine, tenant, catalog, cairo(8, 10), status="confirmed")
    await insert_booking(
        owner_engine, tenant, catalog, cairo(9, 11), status="checked_in", resource_id=second
    )
    await insert_booking(owner_engine, tenant, catalog, cairo(10, 12), status="cancelled")
    # Outside the week (the 14th): neither booked time nor a count.
    await insert_booking(owner_engine, tenant, catalog, cairo(14, 9), status="confirmed")

    body = await occupancy(client, business, "2030-01-07", "2030-01-13")

    assert body["from"] == "2030-01-07" and body["group_by"] == "resource"
    [total] = body["totals"]
    assert total == {
        "period": None,
        "dimension": None,
        "label": None,
        "unit": "minutes",
        "available": 8 * 60 * 7 * 2,
        "booked": 180,
        "utilisation_bps": 180 * 10_000 // 6_720,
        "bookings": 4,
        "cancelled": 1,
        "cancellation_share_bps": 2_500,
        "no_shows": 0,
        "expired": 0,
    }
    rows = by_dimension(body["rows"])
    assert rows[first]["label"] == "Resource 1"
    assert (rows[first]["available"], rows[first]["booked"]) == (3_360, 120)
    assert rows[first]["utilisation_bps"] == 357
    assert (rows[first]["bookings"], rows[first]["cancelled"]) == (3, 1)
    assert (rows[second]["available"], rows[second]["booked"]) == (3_360, 60)
    assert [r["dimension"] for r in body["top_resources"]] == [first, second]


async def test_time_off_no_shows_and_expired_holds(
    client: Client, owner_engine: AsyncEngine
) -> None:
    business = await sign_up(client)
    catalog = await make_catalog(client, business)
    await add_time_off(client, business, catalog["resource_id"], cairo(8, 15), cairo(9, 11))
    tenant = business.tenant_id
    await insert_booking(owner_engine, tenant, catalog, cairo(7, 9), status="no_show")
    await insert_booking(owner_engine, tenant, catalog, cairo(7, 11), status="expired")
    await insert_booking(owner_engine, tenant, catalog, cairo(7, 13), status="pending_payment")

    body = await occupancy(client, business, "2030-01-07", "2030-01-09", group_by="day")

    days = {row["period"]: row for row in body["rows"]}
    # The 8th loses 15:00-17:00 and the 9th loses 09:00-11:00 to time off.
    assert [days[d]["available"] for d in sorted(days)] == [480, 360, 360]
    assert days["2030-01-07"]["booked"] == 60  # the hold; no-shows and expired book nothing
    assert (days["2030-01-07"]["bookings"], days["2030-01-07"]["no_shows"]) == (2, 1)
    assert days["2030-01-07"]["expired"] == 1
    assert days["2030-01-07"]["cancellation_share_bps"] == 0
    assert body["totals"][0]["available"] == 1_200


async def test_capacity_n_counts_hours_times_capacity_and_party_size(
    client: Client, owner_engine: AsyncEngine
) -> None:
    business = await sign_up(client)
    catalog = await make_catalog(client, business, capacity=4, kind="room")
    tenant = business.tenant_id
    await insert_booking(
        owner_engine, tenant, catalog, cairo(7, 9), hours=2, party_size=3, exclusive=False
    )
    await insert_booking(owner_engine, tenant, catalog, cairo(7, 10), party_size=2, exclusive=False)

    body = await occupancy(client, business, "2030-01-07", "2030-01-07", group_by="service")

    [row] = body["rows"]
    assert row["dimension"] == catalog["service_id"]
    assert (row["available"], row["booked"]) == (8 * 60 * 4, 6 * 60 + 2 * 60)
    assert row["utilisation_bps"] == 2_500


async def test_nightly_counts_nights_and_time_off_blocks_the_touched_night(
    client: Client, owner_engine: AsyncEngine
) -> None:
    business = await sign_up(client)
    catalog = await make_catalog(client, business, policy="nightly", kind="unit")
    # Touches the stay of the 7th (check-in 15:00) and of the 6th, outside the range.
    await add_time_off(client, business, catalog["resource_id"], cairo(7, 10), cairo(7, 16))
    tenant = business.tenant_id
    await insert_booking(owner_engine, tenant, catalog, cairo(8, 15), end=cairo(11, 11))
    await insert_booking(
        owner_engine, tenant, catalog, cairo(12, 15), end=cairo(15, 11), status="completed"
    )
    await insert_booking(
        owner_engine, tenant, catalog, cairo(11, 15), end=cairo(12, 11), status="cancelled"
    )

    body = await occupancy(client, business, "2030-01-07", "2030-01-13")

    [total] = body["totals"]
    assert total["unit"] == "nights"
    # Nights 8..13 are rentable; 8, 9, 10 and 12, 13 (the 14th is outside) are booked.
    assert (total["available"], total["booked"]) == (6, 5)
    assert total["utilisation_bps"] == 8_333
    assert (total["bookings"], total["cancelled"]) == (3, 1)
    assert total["cancellation_share_bps"] == 3_333


async def test_dst_week_counts_real_hours_in_the_branch_timezone(
    client: Client, owner_engine: AsyncEngine
) -> None:
    business = await sign_up(client, timezone="Europe/Berlin")
    catalog = await make_catalog(
        client, business, timezone="Europe/Berlin", start="00:00", end="12:00"
    )
    # 01:00 CET to 04:00 CEST on the spring-forward night: two real hours.
    start = datetime(2026, 3, 29, 1, 0, tzinfo=BERLIN)
    await insert_booking(
        owner_engine,
        business.tenant_id,
        catalog,
        start,
        end=datetime(2026, 3, 29, 4, tzinfo=BERLIN),
    )

    week = await occupancy(client, business, "2026-03-23", "2026-03-29", group_by="day")
    days = {row["period"]: row for row in week["rows"]}
    assert days["2026-03-28"]["available"] == 720
    assert (days["2026-03-29"]["available"], days["2026-03-29"]["booked"]) == (660, 120)
    assert days["2026-03-29"]["utilisation_bps"] == 1_818
    assert week["totals"][0]["available"] == 6 * 720 + 660

    autumn = await occupancy(client, business, "2026-10-25", "2026-10-25")
    assert autumn["totals"][0]["available"] == 780


async def test_booking_across_the_range_edge_counts_only_its_inside_part(
    client: Client, owner_engine: AsyncEngine
) -> None:
    business = await sign_up(client)
    catalog = await make_catalog(client, business, start="00:00", end="23:59")
    await insert_booking(owner_engine, business.tenant_id, catalog, cairo(6, 23), end=cairo(7, 2))
    body = await occupancy(client, business, "2030-01-07", "2030-01-07")
    [total] = body["totals"]
    # Two of its three hours fall on the 7th; it started on the 6th, so it is not counted.
    assert (total["booked"], total["bookings"]) == (120, 0)
