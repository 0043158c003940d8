"""A request for a slot already full is refused by one read before any placing work
(app.bookings.guard.plain_slot_check; with an Idempotency-Key, inside the statement that
records the key): same 409 problem as place_booking's, stored under its Idempotency-Key the
same way, and never when place_booking would answer anything else."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from httpx import Response
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.bookings.test_routes import Client, body, count, setup, soon


async def post(
    client: Client, headers: dict[str, str], payload: dict[str, Any], key: str | None = None
) -> Response:
    extra = {"Idempotency-Key": key} if key else {}
    return await client.post("/api/v1/bookings", headers={**headers, **extra}, json=payload)


@contextmanager
def statements(client: Client) -> Iterator[list[str]]:
    """Every statement the API's engine runs from now on: through SQLAlchemy, and straight
    through psycopg (the early refusal's own, and placing's pipelines, app.db.run_together /
    Batch), seen by wrapping the driver connection's execute at each pool checkout."""
    seen: list[str] = []
    wrapped: list[Any] = []

    def record(*args: object) -> None:
        seen.append(str(args[2]))

    def wrap(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        raw = dbapi_connection.driver_connection
        if "execute" in vars(raw):
            return
        original = raw.execute

        async def execute(query: Any, params: Any = None, **options: Any) -> Any:
            seen.append(query if isinstance(query, str) else query.as_string(raw))
            return await original(query, params, **options)

        raw.execute = execute
        wrapped.append(raw)

    engine = client.app.state.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    event.listen(engine, "checkout", wrap)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)
        event.remove(engine, "checkout", wrap)
        for raw in wrapped:
            del raw.execute


async def test_full_slot_is_refused_early_with_place_bookings_own_answer_and_key(
    client: Client, owner_engine: AsyncEngine
) -> None:
    business, shop = await setup(client, owner_engine)
    start = shop.at(soon(), 12)
    assert (await post(client, business.headers, body(shop, start), "first")).status_code == 201
    customers = await count(owner_engine, "SELECT count(*) FROM customers")

    with statements(client) as seen:
        early = await post(client, business.headers, body(shop, start), "second")
        # One read of the slot, no placing: no customer looked up, no booking written.
        assert [sql for sql in seen if "FROM bookings" in sql]
        assert not [sql for sql in seen if "customers" in sql or "INSERT INTO bookings" in sql]
        # Without a resource, place_booking itself decides (every resource is tried).
        anywhere = {k: v for k, v in body(shop, start).items() if k != "resource_id"}
        placed = await post(client, business.headers, anywhere, "third")
        assert [sql for sql in seen if "INSERT INTO customers" in sql]
    assert early.status_code == placed.status_code == 409
    assert early.headers["content-type"] == placed.headers["content-type"]
    assert early.json()["type"] == "slot_unavailable"
    assert early.content == placed.content
    assert await count(owner_engine, "SELECT count(*) FROM customers") == customers

    replay = await post(client, business.headers, body(shop, start), "second")
    assert replay.status_code == 409
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.content == early.content
    other = await post(client, business.headers, body(shop, shop.at(soon(), 13)), "second")
    assert other.status_code == 422
    assert other.json()["type"] == "idempotency_key_reused"
    # A key that already holds a booking replays it, though its slot is now full.
    again = await post(client, business.headers, body(shop, start), "first")
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    without_key = await post(client, business.headers, body(shop, start))
    assert without_key.content == early.content


async def test_a_lapsed_hold_does_not_refuse_the_slot(
    client: Client, owner_engine: AsyncEngine
) -> None:
    business, shop = await setup(client, owner_engine)
    start = shop.at(soon(), 12)
    held = await post(client, business.headers, body(shop, start, payment={"provider": "stripe"}))
    assert held.status_code == 201, held.text
    async with owner_engine.begin() as conn:
        await conn.execute(
            text("UPDATE bookings SET hold_expires_at = :at WHERE id = :id"),
            {"at": datetime.now(UTC) - timedelta(minutes=1), "id": uuid.UUID(held.json()["id"])},
        )
    taken = await post(client, business.headers, body(shop, start), str(uuid.uuid4()))
    assert taken.status_code == 201, taken.text


async def test_capacity_n_slot_is_refused_early_only_once_no_party_fits(
    client: Client, owner_engine: AsyncEngine
) -> None:
    business, shop = await setup(client, owner_engine, capacity=3)
    start = shop.at(soon(), 12)
    first = await post(client, business.headers, body(shop, start, party_size=2))
    assert first.status_code == 201, first.text
    too_big = await post(client, business.headers, body(shop, start, party_size=2))
    assert too_big.status_code == 409
    assert too_big.json()["type"] == "slot_unavailable"
    fits = await post(client, business.headers, body(shop, start, party_size=1))
    assert fits.status_code == 201, fits.text
    full = await post(client, business.headers, body(shop, start, party_size=1))
    assert full.status_code == 409
    assert full.json()["type"] == "slot_unavailable"
    assert await count(owner_engine, "SELECT count(*) FROM bookings") == 2


async def test_full_slot_of_an_archived_service_keeps_place_bookings_answer(
    client: Client, owner_engine: AsyncEngine
) -> None:
    business, shop = await setup(client, owner_engine)
    start = shop.at(soon(), 12)
    assert (await post(client, business.headers, body(shop, start))).status_code == 201
    async with owner_engine.begin() as conn:
        await conn.execute(
            text("UPDATE services SET active = false WHERE id = :id"), {"id": shop.service_id}
        )
    archived = await post(client, business.headers, body(shop, start), str(uuid.uuid4()))
    assert archived.status_code == 422, archived.text
    assert archived.json()["type"] != "slot_unavailable"


async def test_keyed_booking_reads_its_slot_in_the_statement_that_records_its_key(
    client: Client, owner_engine: AsyncEngine
) -> None:
    business, shop = await setup(client, owner_engine)
    with statements(client) as seen:
        placed = await post(client, business.headers, body(shop, shop.at(soon(), 12)), "k")
    assert placed.status_code == 201, placed.text
    # The early refusal's read costs the booking no round trip of its own.
    recording = [sql for sql in seen if "INSERT INTO idempotency_keys" in sql]
    assert len(recording) == 1
    assert "b.blocked @>" in recording[0]
    assert [sql for sql in seen if "b.blocked @>" in sql] == recording
