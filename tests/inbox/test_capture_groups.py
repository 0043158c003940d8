"""Plain captures of one business applied as a group, in one transaction
(app/bookings/capture.py apply_captures, driven by the applier's capture_groups): each leaves
what it would leave alone, the invoices are numbered 1..N at the one commit, an event the group
cannot take plainly is applied alone the general way, a write the database refuses rolls the
group back and every event is applied alone, and a group raced by cancellations over real
parallel connections keeps the books right."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.bookings import checkout
from app.db import create_engine, session_factory
from app.edge.api.payments import sandbox_event_for
from app.money import Money
from app.outbox.dispatch import Dispatcher
from app.settings import Settings, app_role_url
from app.worker.jobs import payments as payment_jobs
from app.worker.jobs.inbox import Applier
from tests.checkout import races
from tests.checkout.support import PRICE, Client, book, count, now, open_shop, run_outbox
from tests.inbox.support import apply_inbox, owner_url, post_capture_entry
from tests.inbox.test_applier import FAST, paid_event, post_sandbox
from tests.inbox.test_plain_capture import effect, taxed_shop


async def transactions(owner: AsyncEngine, tenant_id: uuid.UUID) -> dict[uuid.UUID, int]:
    """The transaction that posted each payment's capture entry, by payment."""
    async with owner.connect() as connection:
        rows = await connection.execute(
            text(
                "SELECT payment_id, CAST(created_xact AS text) AS xact FROM journal_entries "
                "WHERE tenant_id = :t AND reason = 'payment'"
            ),
            {"t": tenant_id},
        )
        return {r.payment_id: int(r.xact) for r in rows}


async def outcomes(owner: AsyncEngine) -> dict[str, str]:
    async with owner.connect() as connection:
        rows = await connection.execute(text("SELECT event_id, outcome FROM inbox"))
        return {r.event_id: r.outcome for r in rows}


async def settle_refunds(
    owner: AsyncEngine, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    """The worker's turn: sandbox refunds are asked of the provider and finished."""
    dispatcher = Dispatcher()
    payment_jobs.register_handlers(dispatcher)
    await run_outbox(owner, sessions, settings, dispatcher, "payment.refund")


def payment_of(booking: dict[str, Any]) -> uuid.UUID:
    return uuid.UUID(booking["payment"]["id"])


async def test_a_group_applies_in_one_transaction_what_each_capture_would_alone(
    client: Client, owner_engine: AsyncEngine, settings: Settings
) -> None:
    shop = await taxed_shop(client)
    tenant_id = shop.business.tenant_id
    grouped = [await book(client, shop, hour=8 + i) for i in range(6)]
    general = await book(client, shop, days_ahead=4, hour=9)
    for booking in grouped:
        assert (await post_sandbox(client, settings, paid_event(shop, booking))).status_code == 200

    assert await apply_inbox(owner_engine, FAST) == len(grouped)

    by_payment = await transactions(owner_engine, tenant_id)
    assert len({by_payment[payment_of(b)] for b in grouped}) == 1  # one transaction
    engine = create_engine(app_role_url(owner_url(owner_engine)), pool_size=2)
    try:
        async with session_factory(engine)() as session:
            outcome = await checkout.record_payment_succeeded(
                session,
                tenant_id,
                payment_of(general),
                amount=Money(PRICE, "EGP"),
                fee_minor=0,
                provider_ref=f"evt_{uuid.uuid4().hex}",
                now=now(),
            )
        assert outcome.changed
    finally:
        await engine.dispose()
    alone = await effect(owner_engine, tenant_id, general)
    for booking in grouped:
        assert await effect(owner_engine, tenant_id, booking) == alone
    numbers = await count(
        owner_engine,
        "SELECT count(DISTINCT sequence) FILTER (WHERE sequence BETWEEN 1 AND 7) FROM invoices "
        "WHERE tenant_id = :t",
        t=tenant_id,
    )
    assert numbers == 7
    assert set((await outcomes(owner_engine)).values()) == {"processed"}


async def test_what_a_group_cannot_take_plainly_is_applied_alone_the_general_way(
    client: Client,
    owner_engine: AsyncEngine,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    shop = await open_shop(client)
    other = await open_shop(client)
    tenant_id = shop.business.tenant_id
    plain = [await book(client, shop, hour=8 + i) for i in range(3)]
    short, cancelled, foreign, done = [await book(client, shop, hour=12 + i) for i in range(4)]
    # Already applied: its event is delivered again under a new id, and finds it captured.
    assert (await post_sandbox(client, settings, paid_event(shop, done))).status_code == 200
    await apply_inbox(owner_engine, FAST)
    cancel = await client.post(
        f"/api/v1/bookings/{cancelled['id']}/cancel", headers=shop.business.headers
    )
    assert cancel.status_code == 200, cancel.text
    events = {
        "plain": [paid_event(shop, b) for b in plain],
        "short": sandbox_event_for(tenant_id, payment_of(short), Money(PRICE - 1, "EGP"), True),
        "cancelled": paid_event(shop, cancelled),
        # Names another business: that business has no such payment.
        "foreign": sandbox_event_for(
            other.business.tenant_id, payment_of(foreign), Money(PRICE, "EGP"), True
        ),
        "again": paid_event(shop, done),
    }
    for event in [*events["plain"], *(e for k, e in events.items() if k != "plain")]:
        assert (await post_sandbox(client, settings, event)).status_code == 200

    await apply_inbox(owner_engine, FAST)

    seen = await outcomes(owner_engine)
    assert {seen[e["id"]] for e in events["plain"]} == {"processed"}
    assert seen[events["short"]["id"]].startswith("rejected")
    assert seen[events["foreign"]["id"]].startswith("rejected")
    assert seen[events["again"]["id"]] == "processed: already captured"
    # The hold was let go: the general way takes the late money and refunds it.
    assert seen[events["cancelled"]["id"]] == "processed: refunded: booking no longer held"
    by_payment = await transactions(owner_engine, tenant_id)
    assert len({by_payment[payment_of(b)] for b in plain}) == 1
    assert payment_of(short) not in by_payment and payment_of(foreign) not in by_payment
    captured = await count(
        owner_engine,
        "SELECT count(*) FROM journal_entries WHERE tenant_id = :t AND payment_id = :p "
        "AND reason = 'payment'",
        t=tenant_id,
        p=payment_of(done),
    )
    assert captured == 1
    await settle_refunds(owner_engine, sessions, settings)
    await races.assert_books(owner_engine, tenant_id)


async def test_a_group_whose_write_is_refused_rolls_back_and_each_is_applied_alone(
    client: Client, owner_engine: AsyncEngine, settings: Settings
) -> None:
    """One payment of the group already has an entry under its capture key (the payment still
    open): the unique key refuses the group's entry, the group rolls back whole, and every event
    is applied alone; the refused one by the general way, which finds the entry posted."""
    shop = await open_shop(client)
    tenant_id = shop.business.tenant_id
    first, *grouped = [await book(client, shop, hour=8 + i) for i in range(5)]
    assert (await post_sandbox(client, settings, paid_event(shop, first))).status_code == 200
    await apply_inbox(owner_engine)
    posted = grouped[2]
    await post_capture_entry(owner_engine, tenant_id, posted, PRICE)
    for booking in grouped:
        assert (await post_sandbox(client, settings, paid_event(shop, booking))).status_code == 200

    await apply_inbox(owner_engine, FAST)

    assert set((await outcomes(owner_engine)).values()) == {"processed"}
    by_payment = await transactions(owner_engine, tenant_id)
    alone = [by_payment[payment_of(b)] for b in grouped if b is not posted]
    assert len(set(alone)) == len(alone)  # each in its own transaction
    for booking in grouped:
        entries = await count(
            owner_engine,
            "SELECT count(*) FROM journal_entries WHERE tenant_id = :t AND payment_id = :p",
            t=tenant_id,
            p=payment_of(booking),
        )
        assert entries == 2  # booked when placed, and the one capture entry
    await races.assert_books(owner_engine, tenant_id)


async def test_groups_raced_by_cancellations_keep_the_books(
    live_client: httpx.AsyncClient,
    settings: Settings,
    owner_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Every capture stored first, then two appliers apply them in groups while the owner
    cancels every other booking over real HTTP: each booking ends as its money says."""
    client = live_client
    shop = await races.race_shop(client)
    tenant_id = shop.business.tenant_id
    bookings = await races.place(client, shop)
    for booking in bookings:
        assert (await post_sandbox(client, settings, paid_event(shop, booking))).status_code == 200
    engine = create_engine(app_role_url(owner_url(owner_engine)), pool_size=12)
    appliers = [Applier(engine, session_factory(engine), config=FAST) for _ in range(2)]
    try:
        answers = await asyncio.gather(
            *(applier.drain() for applier in appliers),
            *(
                client.post(f"/api/v1/bookings/{b['id']}/cancel", headers=shop.business.headers)
                for b in bookings[::2]
            ),
        )
    finally:
        for applier in appliers:
            await applier.close()
        await engine.dispose()
    cancels = [a for a in answers if isinstance(a, httpx.Response)]
    assert {a.status_code for a in cancels} <= {200, 409}, [a.text for a in cancels]
    await apply_inbox(owner_engine, FAST)  # whatever a lost lock race put back
    late = "processed: refunded: booking no longer held"  # the cancel came first
    assert set((await outcomes(owner_engine)).values()) <= {"processed", late}
    await settle_refunds(owner_engine, sessions, settings)
    assert await races.assert_books(owner_engine, tenant_id) == len(bookings)
    confirmed = await count(
        owner_engine,
        "SELECT count(*) FROM bookings WHERE tenant_id = :t AND status = 'confirmed'",
        t=tenant_id,
    )
    assert confirmed == len(bookings) - len(bookings[::2])
    grouped = Counter((await transactions(owner_engine, tenant_id)).values())
    assert max(grouped.values()) > 1  # the appliers did apply captures in groups
