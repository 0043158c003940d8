"""Bookings from every channel find their customer by normalised email or phone, or create
one, in the booking's own transaction; concurrent bookings by one new customer create one row
(real parallel connections); the migration's backfill groups existing bookings the same way."""

from __future__ import annotations

import asyncio
import importlib.util
import uuid
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.audit import trail as audit
from app.bookings.errors import SlotUnavailable
from app.bookings.placing import place_booking
from app.bookings.rules import Customer
from tests.bookings.setup import NOW, Shop, day, make_shop
from tests.infra import ROOT

Sessions = async_sessionmaker[AsyncSession]
ROUNDS = 4
RACERS = 20


async def scalar(owner: AsyncEngine, sql: str, **params: Any) -> Any:
    async with owner.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar_one()


async def book(sessions: Sessions, shop: Shop, customer: Customer, offset: int, index: int) -> Any:
    request = shop.request(
        shop.at(day(offset), 9 + index % 8), customer=customer, resource_id=shop.resource_ids[0]
    )
    async with sessions() as session:
        return await place_booking(session, shop.tenant_id, audit.PUBLIC, request, NOW)


async def customer_of(owner: AsyncEngine, booking_id: uuid.UUID) -> uuid.UUID:
    found: uuid.UUID = await scalar(
        owner, "SELECT customer_id FROM bookings WHERE id = :id", id=booking_id
    )
    return found


async def test_same_email_or_phone_in_any_spelling_is_one_customer(
    sessions: Sessions, owner_engine: AsyncEngine
) -> None:
    shop = await make_shop(owner_engine)
    spellings = [
        Customer("Layla Hassan", "layla@example.com", "+20 100 000 0000"),
        Customer("Layla H.", " LAYLA@Example.com ", None),
        Customer("Layla", None, "+20-100-000-0000"),
        Customer("Layla", None, "(20) 1000000000"),
    ]
    placed = [await book(sessions, shop, c, 1, i) for i, c in enumerate(spellings)]
    ids = {await customer_of(owner_engine, p.booking.id) for p in placed}
    assert len(ids) == 1
    other = await book(sessions, shop, Customer("Sara Nabil", "sara@example.com", None), 2, 0)
    assert await customer_of(owner_engine, other.booking.id) not in ids
    row = await scalar(
        owner_engine,
        "SELECT name || '|' || email || '|' || phone FROM customers WHERE id = :id",
        id=ids.pop(),
    )
    assert row == "Layla Hassan|layla@example.com|+20 100 000 0000"  # as first seen


async def test_name_only_customers_match_by_name_and_a_lost_slot_leaves_no_customer(
    sessions: Sessions, owner_engine: AsyncEngine
) -> None:
    shop = await make_shop(owner_engine)
    first = await book(sessions, shop, Customer("Walk In  Ahmed"), 1, 0)
    second = await book(sessions, shop, Customer("walk in ahmed"), 1, 1)
    assert await customer_of(owner_engine, first.booking.id) == await customer_of(
        owner_engine, second.booking.id
    )
    try:
        await book(sessions, shop, Customer("Nobody Yet", "nobody@example.com"), 1, 0)
    except SlotUnavailable:
        pass
    else:
        raise AssertionError("the slot was taken")
    assert await scalar(owner_engine, "SELECT count(*) FROM customers") == 1


async def test_concurrent_bookings_by_one_new_customer_create_exactly_one_customer(
    race_sessions: Sessions, owner_engine: AsyncEngine
) -> None:
    shop = await make_shop(owner_engine, resources=RACERS)
    start = shop.at(day(3), 10)
    for round_ in range(ROUNDS):
        # Half by email, half by the same phone written differently: both keys race.
        customers = [
            Customer(f"Racer {round_}", f"racer{round_}@example.com", f"+20 111 222 33{round_:02d}")
            if i % 2
            else Customer(f"Racer {round_}", None, f"0020-111-222-33{round_:02d}")
            for i in range(RACERS)
        ]

        async def attempt(i: int, customer: Customer, when: datetime) -> Any:
            request = shop.request(when, customer=customer, resource_id=shop.resource_ids[i])
            async with race_sessions() as session:
                return await place_booking(session, shop.tenant_id, audit.PUBLIC, request, NOW)

        results = await asyncio.gather(
            *(attempt(i, c, start + timedelta(days=round_)) for i, c in enumerate(customers)),
            return_exceptions=True,
        )
        outcome = Counter(
            "ok" if not isinstance(r, BaseException) else type(r).__name__ for r in results
        )
        errors = [repr(r)[:300] for r in results if isinstance(r, BaseException)]
        assert outcome == Counter({"ok": RACERS}), (outcome, errors[:2])
    per_round = await scalar(
        owner_engine,
        "SELECT array_agg(n ORDER BY n) FROM (SELECT count(DISTINCT customer_id) AS n "
        "FROM bookings WHERE customer_id IS NOT NULL GROUP BY starts_at) x",
    )
    assert per_round == [1] * ROUNDS
    assert await scalar(owner_engine, "SELECT count(*) FROM customers") == ROUNDS
    assert await scalar(owner_engine, "SELECT count(*) FROM bookings") == ROUNDS * RACERS


def _backfill_sql() -> str:
    path = next(ROOT.joinpath("migrations/versions").glob("0018_*.py"))
    spec = importlib.util.spec_from_file_location("migration_0018", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return str(module.BACKFILL)


async def test_the_migration_backfill_groups_existing_bookings_by_the_same_rule(
    sessions: Sessions, owner_engine: AsyncEngine
) -> None:
    shop = await make_shop(owner_engine)
    other = await make_shop(owner_engine)
    people = [
        Customer("Layla Hassan", "layla@example.com", "+20 100 000 0000"),
        Customer("Layla", "LAYLA@example.com", None),
        Customer("L. Hassan", None, "0020 100 000 0000"),
        Customer("Omar", None, None),
        Customer("omar"),
        Customer("Sara", "sara@example.com", "+20 100 000 0000"),  # phone taken: joins Layla
        Customer("Mina", "mina@example.com", None),
    ]
    for i, person in enumerate(people):
        await book(sessions, shop, person, 1 + i // 8, i)
    await book(sessions, other, people[0], 1, 0)
    before = await scalar(
        owner_engine,
        "SELECT array_agg(n ORDER BY n) FROM (SELECT count(*) AS n FROM bookings "
        "GROUP BY customer_id) x",
    )
    async with owner_engine.begin() as conn:
        # Placed in this order (NOW is fixed): the backfill takes the oldest first.
        await conn.execute(text("UPDATE bookings SET customer_id = NULL, created_at = starts_at"))
        await conn.execute(text("DELETE FROM customers"))
        await conn.execute(text(_backfill_sql()))
    after = await scalar(
        owner_engine,
        "SELECT array_agg(n ORDER BY n) FROM (SELECT count(*) AS n FROM bookings "
        "GROUP BY customer_id) x",
    )
    # Layla (4 bookings, Sara's by the shared phone), Omar (2), Mina (1), the other shop's 1.
    assert after == before == [1, 1, 2, 4]
    unmatched = "SELECT count(*) FROM bookings WHERE customer_id IS NULL"
    assert await scalar(owner_engine, unmatched) == 0
    assert (
        await scalar(
            owner_engine,
            "SELECT count(*) FROM bookings b JOIN customers c ON c.id = b.customer_id "
            "WHERE c.tenant_id <> b.tenant_id",
        )
        == 0
    )
