"""The applier's plain capture (app/bookings/capture.py, raw statements in two round trips)
leaves the books exactly as the general way (checkout.apply_payment_succeeded, then
issue_invoice) leaves them: the same payment, bookings, ledger entry, outbox events, audit rows
and invoice, row for row."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.bookings import checkout
from app.db import create_engine, session_factory
from app.money import Money
from app.settings import Settings, app_role_url
from app.worker.jobs.inbox import Applier
from tests.checkout.support import PRICE, Client, Shop, book, now, open_shop
from tests.inbox.support import apply_inbox, owner_url, post_capture_entry
from tests.inbox.test_applier import FAST, paid_event, post_sandbox

# An audit snapshot without the booking's own times (JSON null stays null).
_WITHOUT_TIMES = "CASE WHEN jsonb_typeof({0}) = 'object' THEN {0} - 'start' - 'end' ELSE {0} END"


async def effect(owner: AsyncEngine, tenant_id: uuid.UUID, booking: dict[str, Any]) -> Any:
    """What a capture left behind for one booking, without its own ids and times."""
    payment_id = uuid.UUID(booking["payment"]["id"])
    booking_id = uuid.UUID(booking["id"])
    ids = {"t": tenant_id, "p": payment_id, "b": booking_id}
    async with owner.connect() as connection:

        async def rows(sql: str) -> list[tuple[Any, ...]]:
            return [tuple(r) for r in await connection.execute(text(sql), ids)]

        payment = await rows(
            "SELECT status, amount_minor, captured_minor, fee_minor, currency FROM payments "
            "WHERE tenant_id = :t AND id = :p"
        )
        booked = await rows("SELECT status, version FROM bookings WHERE tenant_id = :t AND id = :b")
        ledger = await rows(
            "SELECT e.reason, e.booking_id = :b, a.code, p.amount_minor, p.currency "
            "FROM journal_entries e JOIN postings p ON p.tenant_id = e.tenant_id "
            "AND p.entry_id = e.id JOIN ledger_accounts a ON a.tenant_id = p.tenant_id "
            "AND a.id = p.account_id WHERE e.tenant_id = :t "
            "AND e.payment_id = :p AND e.reason = 'payment' ORDER BY a.code"
        )
        outbox = await rows(
            "SELECT topic, aggregate_type, payload->>'status', payload->>'version', "
            "payload->>'booking_id' = CAST(:b AS text), (SELECT array_agg(k ORDER BY k) FROM "
            "jsonb_object_keys(payload) k) FROM outbox WHERE tenant_id = :t "
            "AND aggregate_id IN (:b, :p) AND topic <> 'booking.placed' ORDER BY seq"
        )
        audit = await rows(
            "SELECT action, entity_type, actor_kind, actor_id, jsonb_typeof(before), "
            f"{_WITHOUT_TIMES.format('before')}, {_WITHOUT_TIMES.format('after')} "
            "FROM audit_log WHERE tenant_id = :t AND (entity_id = :b "
            "OR entity_id IN (SELECT id FROM invoices WHERE tenant_id = :t AND payment_id = :p)) "
            "AND action <> 'booking.placed' ORDER BY action"
        )
        invoice = await rows(
            "SELECT kind, series, year, booking_id = :b, business_name, timezone, customer_name, "
            "customer_email, subtotal_minor, tax_minor, total_minor, currency, tax_rate_bps, "
            "tax_label, footer, sequence IS NOT NULL FROM invoices "
            "WHERE tenant_id = :t AND payment_id = :p"
        )
        lines = await rows(
            "SELECT l.position, split_part(l.description, ' · ', 1), l.quantity, "
            "l.unit_price_minor, l.amount_minor, l.currency, l.booking_id = :b, l.product_id "
            "FROM invoice_lines l JOIN invoices i ON i.tenant_id = l.tenant_id "
            "AND i.id = l.invoice_id WHERE i.tenant_id = :t AND i.payment_id = :p "
            "ORDER BY l.position"
        )
    return payment, booked, ledger, outbox, audit, invoice, lines


async def taxed_shop(client: Client) -> Shop:
    """A shop whose invoices carry a tax rate, a label to escape and a footer."""
    shop = await open_shop(client)
    taxed = await client.put(
        "/api/v1/settings/invoicing",
        headers=shop.business.headers,
        json={"tax_rate_bps": 1_400, "tax_label": "VAT <EG>", "footer": "Tax ID 123"},
    )
    assert taxed.status_code == 200, taxed.text
    return shop


async def test_a_plain_capture_leaves_what_the_general_way_leaves(
    client: Client, owner_engine: AsyncEngine, settings: Settings
) -> None:
    shop = await taxed_shop(client)
    tenant_id = shop.business.tenant_id
    first, plain, general = [await book(client, shop, hour=h) for h in (9, 11, 13)]

    engine = create_engine(app_role_url(owner_url(owner_engine)), pool_size=4)
    sessions = session_factory(engine)
    through_orm: list[str] = []
    event.listen(engine.sync_engine, "before_cursor_execute", lambda *a: through_orm.append(a[2]))
    applier = Applier(engine, sessions, config=FAST)
    try:
        # The business's first capture opens its ledger accounts, the plain way too.
        assert (await post_sandbox(client, settings, paid_event(shop, first))).status_code == 200
        assert await applier.drain() == 1
        assert through_orm == []  # not one statement through the ORM
        assert (await post_sandbox(client, settings, paid_event(shop, plain))).status_code == 200
        assert await applier.drain() == 1
        assert through_orm == []
        async with sessions() as session:
            outcome = await checkout.record_payment_succeeded(
                session,
                tenant_id,
                uuid.UUID(general["payment"]["id"]),
                amount=Money(PRICE, "EGP"),
                fee_minor=0,
                provider_ref=f"evt_{uuid.uuid4().hex}",
                now=now(),
            )
        assert outcome.changed
    finally:
        await applier.close()
        await engine.dispose()

    done = await effect(owner_engine, tenant_id, plain)
    assert done == await effect(owner_engine, tenant_id, general)
    assert await effect(owner_engine, tenant_id, first) == done
    payment, booked, ledger, outbox, audit, invoice, lines = done
    assert payment == [("succeeded", PRICE, PRICE, 0, "EGP")]
    assert booked == [("confirmed", 2)]
    assert [(code, amount) for _, _, code, amount, _ in ledger] == [
        ("clearing:sandbox", PRICE),
        ("receivable:customer", -PRICE),
    ]
    assert [r[0] for r in outbox] == ["booking.confirmed"]
    assert sorted(r[0] for r in audit) == ["booking.confirmed", "invoice.issued"]
    assert invoice and invoice[0][10] == PRICE and invoice[0][-1] is True
    assert invoice[0][12:15] == (1_400, "VAT <EG>", "Tax ID 123") and invoice[0][9] > 0
    assert lines and sum(r[4] for r in lines) == PRICE


async def test_a_capture_whose_write_is_refused_is_applied_the_general_way(
    client: Client, owner_engine: AsyncEngine, settings: Settings
) -> None:
    """The plain capture's entry meets one already posted under its key (the payment still
    open): the unique key refuses it, the transaction rolls back whole, and the general way
    applies the event, finding the entry posted (ledger.post's idempotency)."""
    shop = await open_shop(client)
    tenant_id = shop.business.tenant_id
    first, booking = [await book(client, shop, hour=h) for h in (9, 11)]
    assert (await post_sandbox(client, settings, paid_event(shop, first))).status_code == 200
    await apply_inbox(owner_engine)
    payment_id = uuid.UUID(booking["payment"]["id"])
    await post_capture_entry(owner_engine, tenant_id, booking, PRICE)
    event = paid_event(shop, booking)
    assert (await post_sandbox(client, settings, event)).status_code == 200

    await apply_inbox(owner_engine)

    async with owner_engine.connect() as connection:
        outcome = await connection.scalar(
            text("SELECT outcome FROM inbox WHERE event_id = :e"), {"e": event["id"]}
        )
        entries = await connection.scalar(
            text("SELECT count(*) FROM journal_entries WHERE tenant_id = :t AND payment_id = :p"),
            {"t": tenant_id, "p": payment_id},
        )
        invoices = await connection.scalar(
            text("SELECT count(*) FROM invoices WHERE tenant_id = :t AND payment_id = :p"),
            {"t": tenant_id, "p": payment_id},
        )
    assert outcome == "processed"
    assert entries == 2  # booked when placed, and the one capture entry
    assert invoices == 1
    done = await effect(owner_engine, tenant_id, booking)
    assert done[0] == [("succeeded", PRICE, PRICE, 0, "EGP")]
    assert done[1] == [("confirmed", 2)]
