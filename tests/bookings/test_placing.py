"""place_booking rules: price snapshots, resource choice, policies and notice."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.audit import trail as audit
from app.bookings.errors import SlotUnavailable
from app.bookings.placing import Placed, place_booking
from app.bookings.rules import BookingRequest, Recurrence
from tests.bookings.setup import NOW, Shop, day, make_shop

Sessions = async_sessionmaker[AsyncSession]


async def place(sessions: Sessions, shop: Shop, request: BookingRequest) -> Placed:
    async with sessions() as session:
        return await place_booking(session, shop.tenant_id, audit.SYSTEM, request, NOW)


async def test_branch_price_override_is_snapshotted(
    sessions: Sessions, owner_engine: AsyncEngine
) -> None:
    shop = await make_shop(owner_engine, price_minor=10_000)
    async with owner_engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO service_branch_prices VALUES (:t, :s, :b, 7500, 'fixed')"),
            {"t": shop.tenant_id, "s": shop.service_id, "b": shop.branch_id},
        )
    placed = await place(sessions, shop, shop.request(shop.at(day(3), 10)))
    assert placed.booking.total.amount_minor == 7_500
    assert placed.booking.unit_price_minor == 7_500
    async with owner_engine.begin() as conn:
        await conn.execute(text("UPDATE service_branch_prices SET amount_minor = 9000"))
    # The snapshot does not follow later price changes.
    async with owner_engine.connect() as conn:
        total = (await conn.execute(text("SELECT total_minor FROM bookings"))).scalar_one()
    assert total == 7_500


async def test_without_a_resource_the_first_free_one_is_chosen(
    sessions: Sessions, owner_engine: AsyncEngine
) -> None:
    shop = await make_shop(owner_engine, resources=2)
    start = shop.at(day(3), 10)
    first = await place(sessions, shop, shop.request(start, resource_id=None))
    second = await place(sessions, shop, shop.request(start, resource_id=None))
    assert [first.booking.resource_id, second.booking.resource_id] == shop.resource_ids
    with pytest.raises(SlotUnavailable):
        await place(sessions, shop, shop.request(start, resource_id=None))


async def test_capacity_n_charges_per_seat_and_nightly_per_night(
    sessions: Sessions, owner_engine: AsyncEngine
) -> None:
    classes = await make_shop(owner_engine, capacity=12, price_minor=4_000)
    seats = await place(sessions, classes, classes.request(classes.at(day(3), 16), party_size=3))
    assert seats.booking.total.amount_minor == 12_000
    assert seats.booking.quantity == 1
    cabins = await make_shop(owner_engine, policy="nightly", price_minor=50_000)
    stay = await place(
        sessions,
        cabins,
        cabins.request(cabins.at(day(3), 9), end=cabins.at(day(6), 9)),
    )
    assert stay.booking.quantity == 3
    assert stay.booking.total.amount_minor == 150_000
    # The stay runs from the service's check-in to its check-out time, whatever was sent.
    assert stay.booking.start == cabins.at(day(3), 15)
    assert stay.booking.end == cabins.at(day(6), 11)


async def test_minimum_notice_and_maximum_advance_are_enforced(
    sessions: Sessions, owner_engine: AsyncEngine
) -> None:
    shop = await make_shop(owner_engine, min_notice_minutes=24 * 60, max_advance_days=30)
    tomorrow_early = shop.at(NOW.date() + timedelta(days=1), 9)
    assert tomorrow_early - NOW < timedelta(hours=24)
    with pytest.raises(SlotUnavailable):
        await place(sessions, shop, shop.request(tomorrow_early))
    with pytest.raises(SlotUnavailable):
        await place(sessions, shop, shop.request(shop.at(day(40), 10)))
    placed = await place(sessions, shop, shop.request(shop.at(day(2), 10)))
    assert placed.booking.status == "confirmed"


async def test_off_grid_start_is_unavailable(sessions: Sessions, owner_engine: AsyncEngine) -> None:
    shop = await make_shop(owner_engine)
    with pytest.raises(SlotUnavailable):
        await place(sessions, shop, shop.request(shop.at(day(2), 10, 15)))


RAW_INSERT = text(
    """
    INSERT INTO bookings (tenant_id, id, branch_id, service_id, resource_id, customer_name,
      party_size, starts_at, ends_at, blocked, exclusive, status, unit_price_minor, pricing,
      quantity, total_minor, currency, payment_provider)
    VALUES (:t, gen_random_uuid(), :b, :s, :r, 'Walk-in', 1, :start, :end,
      tstzrange(:start, :end), true, 'confirmed', 0, 'fixed', 1, 0, 'EGP', 'cash')
    """
)


async def test_series_losing_a_race_on_one_resource_moves_whole_to_the_next(
    sessions: Sessions, owner_engine: AsyncEngine
) -> None:
    shop = await make_shop(owner_engine, resources=2)
    taken = shop.at(day(4), 10)
    async with owner_engine.connect() as blocker:
        # An uncommitted booking the engine cannot see yet: only the constraint can.
        await blocker.execute(
            RAW_INSERT,
            {
                "t": shop.tenant_id,
                "b": shop.branch_id,
                "s": shop.service_id,
                "r": shop.resource_ids[0],
                "start": taken,
                "end": taken + timedelta(hours=1),
            },
        )
        request = shop.request(
            shop.at(day(3), 10), resource_id=None, recurrence=Recurrence("daily", count=3)
        )
        task = asyncio.create_task(place(sessions, shop, request))
        await asyncio.sleep(1.0)
        assert not task.done()  # waiting on the blocker's row
        await blocker.commit()
    placed = await task
    assert {o.resource_id for o in placed.occurrences} == {shop.resource_ids[1]}
    async with owner_engine.connect() as conn:
        on_first = (
            await conn.execute(
                text("SELECT count(*) FROM bookings WHERE resource_id = :r"),
                {"r": shop.resource_ids[0]},
            )
        ).scalar_one()
    assert on_first == 1  # only the blocker: the two rows written there were undone
