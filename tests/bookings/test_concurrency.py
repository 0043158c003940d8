"""The guarantee under real parallel connections: no double booking, never over capacity,
stock never negative — and every loser gets SlotUnavailable / OutOfStock, nothing else."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Awaitable
from datetime import timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.audit import trail as audit
from app.bookings.lifecycle import cancel_booking, check_in_booking
from app.bookings.placing import place_booking
from app.bookings.rescheduling import reschedule_booking
from app.bookings.rules import BookingRequest, LineItem, Recurrence
from tests.bookings.setup import NOW, Shop, day, make_shop

Sessions = async_sessionmaker[AsyncSession]
ACTIVE = "('pending_payment', 'confirmed', 'checked_in')"

OVERLAPS = f"""
SELECT count(*) FROM bookings a JOIN bookings b
  ON a.tenant_id = b.tenant_id AND a.resource_id = b.resource_id AND a.id < b.id
 AND a.blocked && b.blocked
WHERE a.exclusive AND a.status IN {ACTIVE} AND b.status IN {ACTIVE}
"""

# For every active booking's start instant, the party sizes on its resource covering it.
OVER_CAPACITY = f"""
SELECT count(*) FROM bookings a
  JOIN resources r ON r.tenant_id = a.tenant_id AND r.id = a.resource_id
WHERE a.status IN {ACTIVE} AND r.capacity < (
  SELECT sum(b.party_size) FROM bookings b
  WHERE b.tenant_id = a.tenant_id AND b.resource_id = a.resource_id
    AND b.status IN {ACTIVE} AND b.blocked @> lower(a.blocked))
"""


async def scalar(owner: AsyncEngine, sql: str, **params: Any) -> Any:
    async with owner.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar_one()


async def outcomes(tasks: list[Awaitable[Any]]) -> Counter[str]:
    results = await asyncio.gather(*tasks, return_exceptions=True)
    return Counter("ok" if not isinstance(r, BaseException) else type(r).__name__ for r in results)


async def attempt(race_sessions: Sessions, shop: Shop, request: BookingRequest) -> Any:
    async with race_sessions() as session:
        return await place_booking(session, shop.tenant_id, audit.PUBLIC, request, NOW)


async def test_hundred_concurrent_attempts_at_one_slot_yield_exactly_one_booking(
    race_sessions: Sessions, owner_engine: AsyncEngine
) -> None:
    shop = await make_shop(owner_engine, buffer_after_minutes=15)
    start = shop.at(day(6), 10)
    got = await outcomes([attempt(race_sessions, shop, shop.request(start)) for _ in range(100)])
    assert got == Counter({"ok": 1, "SlotUnavailable": 99})
    assert await scalar(owner_engine, "SELECT count(*) FROM bookings") == 1
    assert await scalar(owner_engine, OVERLAPS) == 0


async def test_capacity_five_with_mixed_party_sizes_is_never_exceeded(
    race_sessions: Sessions, owner_engine: AsyncEngine
) -> None:
    shop = await make_shop(owner_engine, capacity=5, duration_minutes=60, slot_step_minutes=30)
    rng = random.Random(7)
    # Overlapping hour-long slots at 10:00 and 10:30 compete for the same seats.
    requests = [
        shop.request(shop.at(day(6), 10, rng.choice((0, 30))), party_size=rng.choice((1, 2, 3)))
        for _ in range(60)
    ]
    got = await outcomes([attempt(race_sessions, shop, r) for r in requests])
    assert set(got) <= {"ok", "SlotUnavailable"}
    assert got["ok"] >= 2
    assert await scalar(owner_engine, OVER_CAPACITY) == 0
    peak = await scalar(
        owner_engine, f"SELECT sum(party_size) FROM bookings WHERE status IN {ACTIVE}"
    )
    # 10:00 and 10:30 both cover 10:30-11:00, so everything booked shares one instant.
    assert 4 <= peak <= 5


async def test_overlapping_nightly_stays_allow_at_most_one(
    race_sessions: Sessions, owner_engine: AsyncEngine
) -> None:
    shop = await make_shop(owner_engine, policy="nightly", pricing="nightly")
    rng = random.Random(11)
    requests = []
    for _ in range(40):
        # Every stay includes the night of day 10.
        check_in = day(rng.randint(7, 10))
        nights = (day(10) - check_in).days + rng.randint(1, 3)
        requests.append(
            shop.request(shop.at(check_in, 15), end=shop.at(check_in + timedelta(days=nights), 11))
        )
    got = await outcomes([attempt(race_sessions, shop, r) for r in requests])
    assert got == Counter({"ok": 1, "SlotUnavailable": 39})
    assert await scalar(owner_engine, OVERLAPS) == 0


async def test_concurrent_stock_deductions_never_go_negative(
    race_sessions: Sessions, owner_engine: AsyncEngine
) -> None:
    shop = await make_shop(owner_engine, resources=4, products=2, stock=10)
    items = (LineItem(shop.product_ids[0], 1), LineItem(shop.product_ids[1], 2))
    requests = [
        shop.request(
            shop.at(day(3 + n // 32), 9 + n % 8),
            resource_id=shop.resource_ids[(n // 8) % 4],
            products=items,
        )
        for n in range(30)
    ]
    got = await outcomes([attempt(race_sessions, shop, r) for r in requests])
    # Product 1 has 10 units at 2 per booking: five bookings, then out of stock.
    assert got == Counter({"ok": 5, "OutOfStock": 25})
    stock = await scalar(
        owner_engine, "SELECT array_agg(quantity ORDER BY product_id) FROM product_stock"
    )
    assert stock == [5, 0]
    sold = await scalar(owner_engine, "SELECT sum(quantity) FROM booking_products")
    assert sold == 15


async def test_reschedule_racing_a_new_booking_never_overlaps(
    race_sessions: Sessions, owner_engine: AsyncEngine
) -> None:
    shop = await make_shop(owner_engine)
    for offset in range(8):
        target = shop.at(day(5 + offset), 14)
        async with race_sessions() as session:
            placed = await place_booking(
                session,
                shop.tenant_id,
                audit.PUBLIC,
                shop.request(shop.at(day(5 + offset), 10)),
                NOW,
            )

        async def move(booking_id: Any = placed.booking.id, start: Any = target) -> Any:
            async with race_sessions() as session:
                return await reschedule_booking(
                    session, shop.tenant_id, audit.SYSTEM, booking_id, start=start, now=NOW
                )

        got = await outcomes(
            [move(), *[attempt(race_sessions, shop, shop.request(target)) for _ in range(5)]]
        )
        assert got == Counter({"ok": 1, "SlotUnavailable": 5}), offset
    assert await scalar(owner_engine, OVERLAPS) == 0
    assert (
        await scalar(
            owner_engine,
            "SELECT count(*) FROM bookings "
            "WHERE extract(hour FROM starts_at AT TIME ZONE "
            "'Africa/Cairo') = 14",
        )
        == 8
    )


async def test_capacity_n_reschedules_and_bookings_racing_stay_within_capacity(
    race_sessions: Sessions, owner_engine: AsyncEngine
) -> None:
    shop = await make_shop(owner_engine, capacity=3)
    ids = []
    for _ in range(3):
        async with race_sessions() as session:
            placed = await place_booking(
                session, shop.tenant_id, audit.PUBLIC, shop.request(shop.at(day(4), 10)), NOW
            )
        ids.append(placed.booking.id)
    target = shop.at(day(4), 12)

    async def move(booking_id: Any) -> Any:
        async with race_sessions() as session:
            return await reschedule_booking(
                session, shop.tenant_id, audit.SYSTEM, booking_id, start=target, now=NOW
            )

    got = await outcomes(
        [
            *(move(i) for i in ids),
            *(attempt(race_sessions, shop, shop.request(target)) for _ in range(6)),
        ]
    )
    assert got["ok"] == 3
    assert set(got) == {"ok", "SlotUnavailable"}
    assert await scalar(owner_engine, OVER_CAPACITY) == 0


async def test_racing_state_changes_on_one_booking_end_in_409s_not_500s(
    race_sessions: Sessions, owner_engine: AsyncEngine
) -> None:
    shop = await make_shop(owner_engine)
    async with race_sessions() as session:
        placed = await place_booking(
            session,
            shop.tenant_id,
            audit.PUBLIC,
            shop.request(shop.at(day(3), 10), recurrence=Recurrence("daily", count=6)),
            NOW,
        )
    ids = [o.id for o in placed.occurrences]

    async def cancel(booking_id: Any, scope: Any) -> Any:
        async with race_sessions() as session:
            return await cancel_booking(
                session, shop.tenant_id, audit.SYSTEM, booking_id, NOW, scope
            )

    async def check_in(booking_id: Any) -> Any:
        async with race_sessions() as session:
            return await check_in_booking(session, shop.tenant_id, audit.SYSTEM, booking_id, NOW)

    got = await outcomes(
        [
            *(cancel(i, "series") for i in ids),
            *(cancel(i, "one") for i in ids),
            *(check_in(i) for i in ids),
        ]
    )
    assert set(got) <= {"ok", "InvalidState", "BookingBusy"}
    assert got["ok"] >= 1
    statuses = await scalar(
        owner_engine, "SELECT array_agg(DISTINCT status ORDER BY status) FROM bookings"
    )
    assert set(statuses) <= {"cancelled", "checked_in"}
    cancelled_twice = await scalar(
        owner_engine,
        "SELECT count(*) FROM (SELECT entity_id FROM audit_log WHERE action = "
        "'booking.cancelled' GROUP BY entity_id HAVING count(*) > 1) t",
    )
    assert cancelled_twice == 0
