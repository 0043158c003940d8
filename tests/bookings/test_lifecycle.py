"""The booking state machine, reschedule/extend/shorten, recurring series and the sweeps."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.audit import trail as audit
from app.bookings.errors import RecurrenceConflict
from app.bookings.lifecycle import check_in_booking
from app.bookings.placing import place_booking
from app.bookings.rules import Recurrence
from app.errors import InvalidState
from app.worker.jobs.bookings import sweep_bookings
from tests.bookings.setup import NOW, day, make_shop
from tests.bookings.test_routes import body, count, setup, soon

Client = AsyncTestClient[Litestar]
Sessions = async_sessionmaker[AsyncSession]


async def post(client: Client, headers: dict[str, str], path: str, json: Any = None) -> Any:
    return await client.post(path, headers=headers, json=json)


async def test_full_happy_path_and_every_illegal_transition_is_409_invalid_state(
    client: Client, owner_engine: AsyncEngine
) -> None:
    business, shop = await setup(client, owner_engine)
    h = business.headers
    created = await post(client, h, "/api/v1/bookings", body(shop, shop.at(soon(), 10)))
    path = f"/api/v1/bookings/{created.json()['id']}"
    early = await post(client, h, f"{path}/complete")
    assert early.status_code == 409 and early.json()["type"] == "invalid_state"
    assert (await post(client, h, f"{path}/no-show")).status_code == 409  # not started yet
    checked = await post(client, h, f"{path}/check-in")
    assert checked.status_code == 200 and checked.json()["status"] == "checked_in"
    assert (await post(client, h, f"{path}/cancel")).status_code == 409
    done = await post(client, h, f"{path}/complete")
    assert done.status_code == 200 and done.json()["status"] == "completed"
    for action in ("cancel", "check-in", "complete", "no-show"):
        response = await post(client, h, f"{path}/{action}")
        assert response.status_code == 409, action
        assert response.json()["type"] == "invalid_state"
    moved = await post(client, h, f"{path}/reschedule", {"start": shop.at(soon(), 12).isoformat()})
    assert moved.status_code == 409
    actions = await count(
        owner_engine, "SELECT count(*) FROM audit_log WHERE entity_type = 'booking'"
    )
    assert actions == 3  # placed, checked_in, completed


async def test_cancel_frees_the_slot_and_restocks_products(
    client: Client, owner_engine: AsyncEngine
) -> None:
    business, shop = await setup(client, owner_engine, products=1, stock=3)
    start = shop.at(soon(), 10)
    payload = body(shop, start, products=[{"product_id": str(shop.product_ids[0]), "quantity": 2}])
    created = await post(client, business.headers, "/api/v1/bookings", payload)
    assert created.status_code == 201, created.text
    assert created.json()["total"]["amount_minor"] == 10_000 + 2 * 2_500
    out = await post(
        client,
        business.headers,
        "/api/v1/bookings",
        body(
            shop,
            shop.at(soon(), 11),
            products=[{"product_id": str(shop.product_ids[0]), "quantity": 2}],
        ),
    )
    assert out.status_code == 409 and out.json()["type"] == "out_of_stock"
    cancelled = await post(
        client, business.headers, f"/api/v1/bookings/{created.json()['id']}/cancel"
    )
    assert cancelled.json()["cancelled"][0]["status"] == "cancelled"
    assert await count(owner_engine, "SELECT quantity FROM product_stock") == 3
    again = await post(client, business.headers, "/api/v1/bookings", body(shop, start))
    assert again.status_code == 201


async def test_reschedule_extend_and_shorten_an_interval_rental(
    client: Client, owner_engine: AsyncEngine
) -> None:
    business, shop = await setup(
        client, owner_engine, policy="interval", pricing="hourly", price_minor=5_000
    )
    h = business.headers
    start = shop.at(soon(), 10)
    created = await post(
        client,
        h,
        "/api/v1/bookings",
        body(shop, start, end=(start + timedelta(hours=2)).isoformat()),
    )
    assert created.status_code == 201, created.text
    assert created.json()["total"]["amount_minor"] == 10_000
    blocker = await post(
        client,
        h,
        "/api/v1/bookings",
        body(shop, shop.at(soon(), 14), end=shop.at(soon(), 15).isoformat()),
    )
    assert blocker.status_code == 201
    path = f"/api/v1/bookings/{created.json()['id']}/reschedule"
    longer = await post(
        client, h, path, {"start": start.isoformat(), "end": shop.at(soon(), 14).isoformat()}
    )
    assert longer.status_code == 200, longer.text
    assert longer.json()["total"]["amount_minor"] == 20_000
    too_long = await post(
        client, h, path, {"start": start.isoformat(), "end": shop.at(soon(), 15).isoformat()}
    )
    assert too_long.status_code == 409 and too_long.json()["type"] == "slot_unavailable"
    shorter = await post(
        client, h, path, {"start": start.isoformat(), "end": shop.at(soon(), 11, 30).isoformat()}
    )
    assert shorter.status_code == 200
    assert shorter.json()["total"]["amount_minor"] == 10_000  # per started hour
    assert shorter.json()["version"] == 3


async def test_recurring_series_is_all_or_nothing_and_names_conflicting_dates(
    client: Client, owner_engine: AsyncEngine
) -> None:
    business, shop = await setup(client, owner_engine)
    h = business.headers
    first = soon()
    for offset in (7, 21):
        taken = await post(
            client, h, "/api/v1/bookings", body(shop, shop.at(first + timedelta(days=offset), 10))
        )
        assert taken.status_code == 201
    weekly = await post(
        client,
        h,
        "/api/v1/bookings",
        body(shop, shop.at(first, 10), recurrence={"freq": "weekly", "count": 4}),
    )
    assert weekly.status_code == 409
    problem = weekly.json()
    assert problem["type"] == "slot_unavailable"
    assert problem["dates"] == [str(first + timedelta(days=7)), str(first + timedelta(days=21))]
    assert await count(owner_engine, "SELECT count(*) FROM bookings") == 2
    daily = await post(
        client,
        h,
        "/api/v1/bookings",
        body(
            shop,
            shop.at(first, 12),
            recurrence={"freq": "daily", "until": str(first + timedelta(days=4))},
        ),
    )
    assert daily.status_code == 201, daily.text
    series = daily.json()
    assert len(series["occurrences"]) == 5 and series["series_id"]
    third = series["occurrences"][2]["id"]
    one = await post(client, h, f"/api/v1/bookings/{third}/cancel", {"scope": "one"})
    assert [b["id"] for b in one.json()["cancelled"]] == [third]
    rest = await post(client, h, f"/api/v1/bookings/{series['id']}/cancel", {"scope": "series"})
    assert len(rest.json()["cancelled"]) == 4
    assert (
        await count(
            owner_engine,
            "SELECT count(*) FROM bookings WHERE series_id IS NOT NULL AND status = 'cancelled'",
        )
        == 5
    )


async def test_recurring_weekly_keeps_local_time_across_dst(
    sessions: Sessions, owner_engine: AsyncEngine
) -> None:
    shop = await make_shop(owner_engine, timezone="America/New_York")
    now = datetime(2030, 2, 20, tzinfo=UTC)
    start = shop.at(datetime(2030, 3, 4).date(), 10)  # DST starts 2030-03-10
    async with sessions() as session:
        placed = await place_booking(
            session,
            shop.tenant_id,
            audit.SYSTEM,
            shop.request(start, recurrence=Recurrence("weekly", count=3)),
            now,
        )
    hours = [o.start.astimezone(shop.tz).hour for o in placed.occurrences]
    assert hours == [10, 10, 10]
    assert placed.occurrences[1].start - placed.occurrences[0].start == timedelta(days=7, hours=-1)


async def test_recurrence_conflict_error_carries_dates(
    sessions: Sessions, owner_engine: AsyncEngine
) -> None:
    shop = await make_shop(owner_engine, hours=(time(9), time(12)))
    async with sessions() as session:
        with pytest.raises(RecurrenceConflict) as caught:
            await place_booking(
                session,
                shop.tenant_id,
                audit.SYSTEM,
                shop.request(
                    shop.at(day(5), 11),
                    recurrence=Recurrence("daily", count=2),
                    end=None,
                    party_size=2,
                ),
                NOW,
            )
    assert caught.value.context["dates"] == [str(day(5)), str(day(6))]


async def test_sweep_expires_overdue_holds_and_marks_no_shows_across_tenants(
    sessions: Sessions, owner_engine: AsyncEngine
) -> None:
    shops = [await make_shop(owner_engine) for _ in range(2)]
    booked = {}
    for shop in shops:
        async with sessions() as session:
            held = await place_booking(
                session,
                shop.tenant_id,
                audit.PUBLIC,
                shop.request(shop.at(day(1), 10), provider="stripe"),
                NOW,
            )
        async with sessions() as session:
            cash = await place_booking(
                session, shop.tenant_id, audit.PUBLIC, shop.request(shop.at(day(1), 12)), NOW
            )
        booked[shop.tenant_id] = (held.booking.id, cash.booking.id)
    quiet = await sweep_bookings(sessions, NOW + timedelta(minutes=5))
    assert quiet == {"expired": 0, "no_shows": 0}
    expired = await sweep_bookings(sessions, NOW + timedelta(minutes=16))
    assert expired == {"expired": 2, "no_shows": 0}
    later = shops[0].at(day(1), 12) + timedelta(minutes=31)
    shop = shops[1]
    async with sessions() as session:
        await check_in_booking(
            session, shop.tenant_id, audit.SYSTEM, booked[shop.tenant_id][1], later
        )
    marked = await sweep_bookings(sessions, later)
    assert marked == {"expired": 0, "no_shows": 1}
    assert await sweep_bookings(sessions, later) == {"expired": 0, "no_shows": 0}
    async with owner_engine.connect() as conn:
        rows = dict((await conn.execute(text("SELECT id, status FROM bookings"))).all())
    for tenant_id, (held_id, cash_id) in booked.items():
        assert rows[held_id] == "expired"
        assert rows[cash_id] == ("checked_in" if tenant_id == shop.tenant_id else "no_show")


async def test_an_overdue_hold_does_not_block_a_new_booking(
    sessions: Sessions, owner_engine: AsyncEngine
) -> None:
    shop = await make_shop(owner_engine)
    start = shop.at(day(2), 10)
    async with sessions() as session:
        held = await place_booking(
            session, shop.tenant_id, audit.PUBLIC, shop.request(start, provider="kashier"), NOW
        )
    async with sessions() as session:
        placed = await place_booking(
            session, shop.tenant_id, audit.PUBLIC, shop.request(start), NOW + timedelta(minutes=20)
        )
    assert placed.booking.status == "confirmed"
    async with sessions() as session:
        with pytest.raises(InvalidState):
            await check_in_booking(
                session, shop.tenant_id, audit.SYSTEM, held.booking.id, NOW + timedelta(minutes=21)
            )
