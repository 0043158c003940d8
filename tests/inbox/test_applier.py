"""Acknowledge first, apply after: the webhook stores and answers; the applier in the worker
applies stored events in per-payment order, in parallel across payments, exactly once, and
puts a poison event aside (dead, visible) without holding up any other payment."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import create_engine, session_factory
from app.edge.api.payments import sandbox_event_for
from app.edge.asgi import sandbox_secret
from app.integrations import sandbox
from app.money import Money
from app.payments import inbox
from app.settings import Settings, app_role_url
from app.worker.jobs.inbox import Applier, ApplierConfig
from tests.checkout.support import PRICE, Client, Shop, balance, book, count, get_booking, open_shop
from tests.inbox.support import apply_inbox, owner_url

FAST = ApplierConfig(concurrency=10, max_attempts=3, backoff_base=0.0, lease_seconds=30.0)


def paid_event(shop: Shop, booking: dict[str, Any], kind: str = "payment.succeeded") -> Any:
    event = sandbox_event_for(
        shop.business.tenant_id,
        uuid.UUID(booking["payment"]["id"]),
        Money(PRICE, "EGP"),
        kind == "payment.succeeded",
    )
    event["type"] = kind
    return event


async def post_sandbox(client: Client, settings: Settings, event: dict[str, Any]) -> Any:
    raw, header = sandbox.signed_event(event, sandbox_secret(settings), int(time.time()))
    return await client.post(
        "/webhooks/sandbox", content=raw, headers={sandbox.SIGNATURE_HEADER: header}
    )


async def statuses(owner: AsyncEngine) -> list[tuple[str, str, str | None]]:
    async with owner.connect() as connection:
        rows = await connection.execute(
            text("SELECT event_id, status, outcome FROM inbox ORDER BY seq")
        )
        return [(r.event_id, r.status, r.outcome) for r in rows]


async def test_webhook_answers_once_stored_and_applies_nothing_until_the_applier_runs(
    client: Client, owner_engine: AsyncEngine, settings: Settings
) -> None:
    shop = await open_shop(client)
    bookings = [await book(client, shop, hour=8 + i) for i in range(3)]
    events = [paid_event(shop, b) for b in bookings]

    answers = [await post_sandbox(client, settings, e) for e in events]
    again = await post_sandbox(client, settings, events[0])

    assert [a.status_code for a in answers] == [200, 200, 200]
    assert {a.json()["status"] for a in answers} == {"accepted"}
    assert again.status_code == 200 and again.json() == {"status": "duplicate"}
    assert await count(owner_engine, "SELECT count(*) FROM inbox WHERE status = 'pending'") == 3
    assert (await get_booking(client, shop, bookings[0]["id"]))["status"] == "pending_payment"

    assert await apply_inbox(owner_engine) == 3

    for b in bookings:
        assert (await get_booking(client, shop, b["id"]))["status"] == "confirmed"
    assert [s[1:] for s in await statuses(owner_engine)] == [("done", "processed")] * 3
    assert await balance(owner_engine, shop.business.tenant_id, "clearing:sandbox") == 3 * PRICE


async def test_parallel_captures_of_one_business_get_invoice_numbers_one_to_n(
    client: Client, owner_engine: AsyncEngine, settings: Settings
) -> None:
    """Twenty captures of one business applied by ten concurrent transactions (real parallel
    connections): each invoice is numbered at its commit, 1..20, no gap, no duplicate."""
    shop = await open_shop(client)
    bookings = [
        await book(client, shop, days_ahead=3 + i // 12, hour=8 + i % 12) for i in range(20)
    ]
    for b in bookings:
        assert (await post_sandbox(client, settings, paid_event(shop, b))).status_code == 200

    await apply_inbox(owner_engine, FAST)

    async with owner_engine.connect() as connection:
        rows = await connection.execute(
            text("SELECT sequence, number FROM invoices WHERE tenant_id = :t ORDER BY sequence"),
            {"t": shop.business.tenant_id},
        )
        numbered = [(r.sequence, r.number) for r in rows]
    assert [s for s, _ in numbered] == list(range(1, 21))
    assert len({n for _, n in numbered}) == 20
    assert all(n is not None and n.startswith("INV-") for _, n in numbered)
    processed = await count(owner_engine, "SELECT count(*) FROM inbox WHERE outcome = 'processed'")
    assert processed == 20


async def test_events_of_one_payment_are_claimed_one_at_a_time_in_arrival_order(
    client: Client, owner_engine: AsyncEngine, settings: Settings
) -> None:
    shop = await open_shop(client)
    first, other = await book(client, shop, hour=9), await book(client, shop, hour=11)
    sequence = [
        paid_event(shop, first, "payment.failed"),
        paid_event(shop, first, "payment.succeeded"),
        paid_event(shop, other, "payment.succeeded"),
        paid_event(shop, first, "payment.noted"),
    ]
    for event in sequence:
        assert (await post_sandbox(client, settings, event)).status_code == 200
    engine = create_engine(app_role_url(owner_url(owner_engine)), pool_size=2)
    try:
        async with engine.connect() as connection:
            heads = await inbox.claim(connection, "test", 10, 30.0)
            again = await inbox.claim(connection, "test", 10, 30.0)
            await connection.commit()
    finally:
        await engine.dispose()

    # The head of each payment only; a claimed head holds its payment's later events back.
    assert [c.event_id for c in heads] == [sequence[0]["id"], sequence[2]["id"]]
    assert again == []
    await owner_release(owner_engine)
    await apply_inbox(owner_engine)
    async with owner_engine.connect() as connection:
        rows = await connection.execute(
            text("SELECT event_id FROM inbox WHERE order_key = :p ORDER BY processed_at, seq"),
            {"p": first["payment"]["id"]},
        )
        applied_order = [r.event_id for r in rows]
    assert applied_order == [sequence[0]["id"], sequence[1]["id"], sequence[3]["id"]]
    assert (await get_booking(client, shop, first["id"]))["status"] == "confirmed"


async def owner_release(owner: AsyncEngine) -> None:
    async with owner.begin() as connection:
        await connection.execute(text("UPDATE inbox SET locked_until = NULL"))


async def store_raw(owner: AsyncEngine, event: dict[str, Any], order_key: str) -> None:
    """An event as the edge stores it, with a payload the applier cannot use (a poison)."""
    async with owner.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO inbox (id, provider, event_id, event_type, payload, order_key) "
                "VALUES (:id, 'sandbox', :e, :t, CAST(:p AS jsonb), :k)"
            ),
            {
                "id": uuid.uuid4(),
                "e": event["id"],
                "t": event["type"],
                "p": json.dumps(event),
                "k": order_key,
            },
        )


async def test_a_poison_event_goes_dead_visibly_and_holds_back_only_its_own_payment(
    client: Client, owner_engine: AsyncEngine, settings: Settings
) -> None:
    shop = await open_shop(client)
    victim, bystander = await book(client, shop, hour=9), await book(client, shop, hour=11)
    poison = paid_event(shop, victim)
    poison["data"]["amount_minor"] = "not a number"  # nothing can ever apply this
    await store_raw(owner_engine, poison, victim["payment"]["id"])
    later = paid_event(shop, victim)
    assert (await post_sandbox(client, settings, later)).status_code == 200
    assert (await post_sandbox(client, settings, paid_event(shop, bystander))).status_code == 200

    await apply_inbox(owner_engine, FAST)

    async with owner_engine.connect() as connection:
        rows = {
            r.event_id: r
            for r in await connection.execute(
                text("SELECT event_id, status, attempts, last_error FROM inbox")
            )
        }
    assert rows[poison["id"]].status == "dead"
    assert rows[poison["id"]].attempts == FAST.max_attempts
    assert "ValueError" in rows[poison["id"]].last_error
    assert rows[later["id"]].status == "pending"  # per-payment order: it waits
    assert (await get_booking(client, shop, bystander["id"]))["status"] == "confirmed"
    assert (await get_booking(client, shop, victim["id"]))["status"] == "pending_payment"

    # Once the cause is dealt with (here: the poison row is settled by hand as ignored), the
    # payment's later event goes through.
    async with owner_engine.begin() as connection:
        await connection.execute(
            text("UPDATE inbox SET status = 'done', outcome = 'ignored' WHERE event_id = :e"),
            {"e": poison["id"]},
        )
    await apply_inbox(owner_engine, FAST)
    assert (await get_booking(client, shop, victim["id"]))["status"] == "confirmed"


async def test_dead_events_can_be_retried(
    client: Client, owner_engine: AsyncEngine, settings: Settings
) -> None:
    shop = await open_shop(client)
    booking = await book(client, shop)
    poison = paid_event(shop, booking)
    poison["data"]["amount_minor"] = "x"
    await store_raw(owner_engine, poison, booking["payment"]["id"])
    await apply_inbox(owner_engine, FAST)
    engine = create_engine(app_role_url(owner_url(owner_engine)), pool_size=1)
    try:
        async with engine.begin() as connection:
            dead = (await connection.execute(text("SELECT id FROM inbox"))).scalars().all()
            revived = await inbox.retry_dead(connection, list(dead))
    finally:
        await engine.dispose()
    assert revived == list(dead)
    assert await count(owner_engine, "SELECT count(*) FROM inbox WHERE attempts = 0") == 1


async def test_two_appliers_and_an_expired_lease_apply_an_event_once(
    client: Client, owner_engine: AsyncEngine, settings: Settings
) -> None:
    """Applier A claims and stalls past its lease; B claims the same event and applies it;
    A then applies its stale claim and finds it done. Both at once, then one after the
    other: one capture, one invoice."""
    shop = await open_shop(client)
    booking = await book(client, shop)
    assert (await post_sandbox(client, settings, paid_event(shop, booking))).status_code == 200
    url = app_role_url(owner_url(owner_engine))
    engine = create_engine(url, pool_size=8)
    a = Applier(engine, session_factory(engine), config=ApplierConfig())
    b = Applier(engine, session_factory(engine), config=ApplierConfig())
    try:
        async with a.bookkeeping.connect() as connection:
            [stale] = await inbox.claim(connection, a.worker_id, 10, 0.2)
        await asyncio.sleep(0.3)
        async with b.bookkeeping.connect() as connection:
            [fresh] = await inbox.claim(connection, b.worker_id, 10, 30.0)
        assert stale.id == fresh.id
        await asyncio.gather(a.apply(stale), b.apply(fresh))
        await a.apply(stale)
    finally:
        await a.close()
        await b.close()
        await engine.dispose()

    tenant = shop.business.tenant_id
    assert await balance(owner_engine, tenant, "clearing:sandbox") == PRICE
    assert await count(owner_engine, "SELECT count(*) FROM invoices WHERE kind = 'invoice'") == 1
    assert [s[1:] for s in await statuses(owner_engine)] == [("done", "processed")]
