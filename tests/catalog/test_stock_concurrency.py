"""Stock under real parallel connections: bookings deducting a product race hand adjustments
taking it away; the stock never goes below zero, every loser is told why, and what is left is
exactly the opening stock plus the movements, each success accounted for by one movement
(and each booking's by its booking line)."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Awaitable
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.audit import trail as audit
from app.bookings.placing import place_booking
from app.bookings.rules import LineItem
from app.catalog.stock import record_stock_movement
from app.tenancy.service import Principal
from tests.bookings.setup import NOW, Shop, day, make_shop

Sessions = async_sessionmaker[AsyncSession]
OPENING = 20
BOOKINGS = 30
ADJUSTMENTS = 6
TAKEN_BY_ADJUSTMENT = 3


async def outcomes(tasks: list[Awaitable[Any]]) -> Counter[str]:
    results = await asyncio.gather(*tasks, return_exceptions=True)
    return Counter("ok" if not isinstance(r, BaseException) else type(r).__name__ for r in results)


async def rows(owner: AsyncEngine, sql: str, **params: Any) -> list[Any]:
    async with owner.connect() as conn:
        return list((await conn.execute(text(sql), params)).all())


def owner_of(shop: Shop) -> Principal:
    return Principal(uuid.uuid4(), shop.tenant_id, "owner", "owner@example.com")


async def adjust(sessions: Sessions, shop: Shop, delta: int) -> Any:
    async with sessions() as session:
        return await record_stock_movement(
            session,
            owner_of(shop),
            shop.product_ids[0],
            branch_id=shop.branch_id,
            delta=delta,
            reason="stock count",
            now=NOW,
        )


async def book(sessions: Sessions, shop: Shop, n: int) -> Any:
    # Every booking has its own slot: they compete for the stock only.
    request = shop.request(
        shop.at(day(3 + n // 32), 9 + n % 8),
        resource_id=shop.resource_ids[(n // 8) % 4],
        products=(LineItem(shop.product_ids[0], 1),),
    )
    async with sessions() as session:
        return await place_booking(session, shop.tenant_id, audit.PUBLIC, request, NOW)


async def test_bookings_and_adjustments_racing_for_stock_never_take_it_below_zero(
    sessions: Sessions, owner_engine: AsyncEngine
) -> None:
    shop = await make_shop(owner_engine, resources=4, products=1, stock=OPENING)
    tasks: list[Awaitable[Any]] = [book(sessions, shop, n) for n in range(BOOKINGS)]
    for index in range(ADJUSTMENTS):
        # Interleaved with the bookings, so both kinds hold the row lock in turn.
        tasks.insert(index * 5, adjust(sessions, shop, -TAKEN_BY_ADJUSTMENT))
    results = await asyncio.gather(*tasks, return_exceptions=True)
    kinds = Counter("ok" if not isinstance(r, BaseException) else type(r).__name__ for r in results)
    # The stock runs out: demand is 30 + 6 x 3 = 48 against 20.
    assert set(kinds) <= {"ok", "OutOfStock", "InsufficientStock"}, kinds
    assert kinds["OutOfStock"] + kinds["InsufficientStock"] > 0
    booked = [r for r in results if hasattr(r, "booking")]
    adjusted = [r for r in results if hasattr(r, "quantity_after")]
    assert len(booked) + len(adjusted) == kinds["ok"]

    [(left,)] = await rows(owner_engine, "SELECT quantity FROM product_stock")
    # More bookings than stock: some failed for want of one unit, and stock only falls.
    assert left == 0
    movements = await rows(
        owner_engine, "SELECT kind, delta, booking_id, quantity_after FROM stock_movements"
    )
    # Nothing moved without its movement: what is left is the opening stock plus every delta.
    assert left == OPENING + sum(m.delta for m in movements)
    assert all(m.quantity_after >= 0 for m in movements)
    # One movement per success, and each booking's names its booking and matches its line.
    by_booking = {m.booking_id: m.delta for m in movements if m.kind == "booking"}
    assert set(by_booking) == {r.booking.id for r in booked}
    lines = await rows(owner_engine, "SELECT booking_id, quantity FROM booking_products")
    assert {b: -q for b, q in lines} == by_booking
    adjustments = [m for m in movements if m.kind == "adjustment"]
    assert len(adjustments) == len(adjusted)
    assert {m.delta for m in adjustments} <= {-TAKEN_BY_ADJUSTMENT}
    assert len(booked) + TAKEN_BY_ADJUSTMENT * len(adjusted) == OPENING - left
    # Each movement saw the stock its predecessor left: the quantities after are all distinct.
    assert len({m.quantity_after for m in movements}) == len(movements)


async def test_parallel_adjustments_take_exactly_what_there_is(
    sessions: Sessions, owner_engine: AsyncEngine
) -> None:
    shop = await make_shop(owner_engine, products=1, stock=10)
    got = await outcomes([adjust(sessions, shop, -1) for _ in range(25)])
    assert got == Counter({"ok": 10, "InsufficientStock": 15})
    assert await rows(owner_engine, "SELECT quantity FROM product_stock") == [(0,)]
    after = await rows(owner_engine, "SELECT quantity_after FROM stock_movements ORDER BY 1")
    assert [q for (q,) in after] == list(range(10))
