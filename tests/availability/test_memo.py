"""The API's availability memo: an answer is reused only while everything it was computed from
holds. Each change below is made behind the API's back (straight in PostgreSQL, as another
process or a migration would), so only the calendar fingerprint can notice it."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.availability import service
from app.availability.memo import AvailabilityMemo
from app.edge.asgi import api_deps_of
from tests.availability.test_routes import query
from tests.bookings.setup import Shop
from tests.bookings.test_routes import setup, soon
from tests.factories import Business

Client = AsyncTestClient[Litestar]


def local(shop: Shop, data: Any) -> list[str]:
    return [
        datetime.fromisoformat(s["start"]).astimezone(shop.tz).strftime("%H:%M")
        for s in data["slots"]
    ]


async def ask(client: Client, business: Business, shop: Shop) -> tuple[bytes, list[str]]:
    response = await client.get(
        "/api/v1/availability", headers=business.headers, params=query(shop)
    )
    assert response.status_code == 200, response.text
    return response.content, local(shop, response.json())


async def run(owner: AsyncEngine, sql: str, **params: object) -> None:
    async with owner.begin() as connection:
        await connection.execute(text(sql), params)


async def test_a_repeated_question_is_answered_from_the_memo_until_a_row_changes(
    client: Client, app: Litestar, owner_engine: AsyncEngine
) -> None:
    business, shop = await setup(client, owner_engine, hours=(time(9), time(12)))
    memo = api_deps_of(app).availability_memo
    first, starts = await ask(client, business, shop)
    assert starts == ["09:00", "10:00", "11:00"]
    entries = len(memo)
    again, _ = await ask(client, business, shop)
    assert again == first and len(memo) == entries  # served from the entry made above

    # Time off written straight into the table: the next answer sees it.
    day = soon()
    await run(
        owner_engine,
        "INSERT INTO time_off (tenant_id, id, resource_id, starts_at, ends_at, reason) "
        "VALUES (:t, gen_random_uuid(), :r, :s, :e, 'dentist')",
        t=shop.tenant_id,
        r=shop.resource_id,
        s=shop.at(day, 10),
        e=shop.at(day, 11),
    )
    _, starts = await ask(client, business, shop)
    assert starts == ["09:00", "11:00"]

    # Working hours shortened behind the API's back.
    await run(
        owner_engine,
        "UPDATE resource_hours SET end_time = '11:00' WHERE tenant_id = :t",
        t=shop.tenant_id,
    )
    _, starts = await ask(client, business, shop)
    assert starts == ["09:00"]


async def test_a_hold_that_runs_out_frees_its_slot_at_once(
    client: Client, owner_engine: AsyncEngine
) -> None:
    business, shop = await setup(client, owner_engine, hours=(time(9), time(11)))
    day = soon()
    await run(
        owner_engine,
        "INSERT INTO bookings (tenant_id, id, branch_id, service_id, resource_id, customer_name,"
        " party_size, starts_at, ends_at, blocked, exclusive, status, hold_expires_at,"
        " unit_price_minor, pricing, quantity, total_minor, currency, payment_provider)"
        " VALUES (:t, gen_random_uuid(), :b, :s, :r, 'Held', 1, :start, :end,"
        " tstzrange(:start, :end), true, 'pending_payment', now() + interval '10 minutes',"
        " 10000, 'fixed', 1, 10000, 'EGP', 'sandbox')",
        t=shop.tenant_id,
        b=shop.branch_id,
        s=shop.service_id,
        r=shop.resource_id,
        start=shop.at(day, 9),
        end=shop.at(day, 10),
    )
    _, starts = await ask(client, business, shop)
    assert starts == ["10:00"]
    # The hold's time is up (nothing expired the row yet): its slot is offered again.
    await run(
        owner_engine,
        "UPDATE bookings SET hold_expires_at = now() - interval '1 second' WHERE tenant_id = :t",
        t=shop.tenant_id,
    )
    _, starts = await ask(client, business, shop)
    assert starts == ["09:00", "10:00"]


async def test_a_remembered_answer_drops_what_the_minimum_notice_has_ruled_out(
    client: Client, owner_engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Within one minute the fingerprint holds, yet a slot can fall inside the notice: it is
    filtered out of the remembered answer, and that filtered answer is not reused as is."""
    _, shop = await setup(
        client, owner_engine, timezone="UTC", hours=(time(0), time(23)), min_notice_minutes=60
    )
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    memo = AvailabilityMemo()

    async def free(now: datetime) -> service.Answer:
        async with sessions() as session:
            return await service.get_availability(
                session,
                shop.tenant_id,
                service_id=shop.service_id,
                branch_id=shop.branch_id,
                first=tomorrow,
                last=tomorrow,
                now=now,
                memo=memo,
            )

    def hours(answer: service.Answer) -> list[int]:
        return [slot.start.hour for slot in answer.found.slots]

    ten = datetime.combine(tomorrow, time(10), tzinfo=UTC)
    remembered = await free(ten)  # the notice runs to 11:00 exactly: 11:00 is offered
    assert hours(remembered)[:2] == [11, 12] and remembered.remembered is not None
    assert len(memo) == 1
    again = await free(ten + timedelta(seconds=20, microseconds=5))
    # The same minute, the same rows: the same entry, but 11:00 is now inside the notice.
    assert len(memo) == 1
    assert hours(again)[:2] == [12, 13] and again.remembered is None
    assert hours(again) == hours(remembered)[1:]
    # A new minute computes afresh, and agrees.
    fresh = await free(ten + timedelta(minutes=1))
    assert len(memo) == 2 and hours(fresh) == hours(again)
