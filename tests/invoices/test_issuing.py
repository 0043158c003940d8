"""Issuing invoices and credit notes inside the caller's transaction: lines, tax, numbering,
idempotency, and the database guards behind them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.db import run_together, set_tenant, tenant_transaction
from app.errors import InvalidState
from app.invoices import amounts, issuing, lines
from app.invoices.service import (
    InvoicingUsageError,
    PaymentNotCaptured,
    issue_credit_note,
    issue_invoice,
)
from tests.invoices.setup import (
    NOW,
    credit,
    invoice,
    make_paid,
    make_refund,
    make_shop,
    make_tenant,
    set_rate,
)

Sessions = async_sessionmaker[AsyncSession]


async def count(owner: AsyncEngine, sql: str, **params: object) -> int:
    async with owner.connect() as conn:
        return int((await conn.execute(text(sql), params)).scalar_one())


async def test_invoice_lists_each_booking_of_a_series_and_its_products(
    owner_engine: AsyncEngine, sessions: Sessions
) -> None:
    tenant_id = await make_tenant(owner_engine)
    shop = await make_shop(owner_engine, tenant_id)
    await set_rate(owner_engine, tenant_id, 1_400)
    paid = await make_paid(owner_engine, shop, series=3, products=2, party_size=2)

    view = await invoice(sessions, tenant_id, paid.payment_id)

    assert view.number == "INV-2026-000001"
    assert view.kind == "invoice"
    assert view.customer_name == "Layla Hassan"
    assert view.business_name == "Nile Spa"
    # 3 x (2 seats x 100.00 + 2 x 25.00) = 750.00, tax-inclusive at 14%.
    assert view.total.amount_minor == paid.amount_minor == 75_000
    assert view.tax.amount_minor == 9_211  # 75000 * 1400 / 11400 = 9210.53 -> 9211
    assert view.subtotal.amount_minor == 75_000 - 9_211
    assert [line.booking_id for line in view.lines] == [
        b for b in paid.booking_ids for _ in range(2)
    ]
    services = view.lines[0::2]
    products = view.lines[1::2]
    assert all(line.description.startswith("Massage · 2026-03-") for line in services)
    assert [(s.quantity, s.unit_price.amount_minor, s.amount.amount_minor) for s in services] == [
        (2, 10_000, 20_000)
    ] * 3
    assert [(p.description, p.quantity, p.amount.amount_minor) for p in products] == [
        ("Oil", 2, 5_000)
    ] * 3
    assert sum(line.amount.amount_minor for line in view.lines) == view.total.amount_minor


async def test_issuing_twice_returns_the_same_invoice_and_consumes_one_number(
    owner_engine: AsyncEngine, sessions: Sessions
) -> None:
    tenant_id = await make_tenant(owner_engine)
    shop = await make_shop(owner_engine, tenant_id)
    first, second = await make_paid(owner_engine, shop), await make_paid(owner_engine, shop)

    once = await invoice(sessions, tenant_id, first.payment_id)
    again = await invoice(sessions, tenant_id, first.payment_id)
    other = await invoice(sessions, tenant_id, second.payment_id)

    assert again == once
    assert other.number == "INV-2026-000002"
    assert await count(owner_engine, "SELECT count(*) FROM invoices") == 2


async def test_numbers_are_per_tenant_and_per_year_in_the_tenant_timezone(
    owner_engine: AsyncEngine, sessions: Sessions
) -> None:
    cairo = await make_tenant(owner_engine, timezone="Africa/Cairo")
    other = await make_tenant(owner_engine, timezone="America/New_York")
    cairo_shop, other_shop = (
        await make_shop(owner_engine, cairo),
        await make_shop(owner_engine, other),
    )
    new_year_utc = datetime(2026, 12, 31, 23, 30, tzinfo=UTC)  # 2027 in Cairo, 2026 in NY

    a = await invoice(sessions, cairo, (await make_paid(owner_engine, cairo_shop)).payment_id)
    b = await invoice(sessions, other, (await make_paid(owner_engine, other_shop)).payment_id)
    c = await invoice(
        sessions, cairo, (await make_paid(owner_engine, cairo_shop)).payment_id, new_year_utc
    )
    d = await invoice(
        sessions, other, (await make_paid(owner_engine, other_shop)).payment_id, new_year_utc
    )

    assert [a.number, b.number] == ["INV-2026-000001", "INV-2026-000001"]
    assert c.number == "INV-2027-000001"
    assert d.number == "INV-2026-000002"


async def test_cash_series_invoices_only_the_booking_its_payment_covers(
    owner_engine: AsyncEngine, sessions: Sessions
) -> None:
    tenant_id = await make_tenant(owner_engine)
    shop = await make_shop(owner_engine, tenant_id)
    paid = await make_paid(owner_engine, shop, series=2, provider="cash")
    # Pay at venue: the second booking of the series carries its own payment.
    async with owner_engine.begin() as conn:
        await conn.execute(
            text("UPDATE payments SET amount_minor = 10000, captured_minor = 10000 WHERE id = :p"),
            {"p": paid.payment_id},
        )
        await conn.execute(
            text(
                "INSERT INTO payments (tenant_id, id, booking_id, provider, status, amount_minor, "
                "currency) VALUES (:t, :id, :b, 'cash', 'requires_payment', 10000, 'EGP')"
            ),
            {"t": tenant_id, "id": uuid.uuid4(), "b": paid.booking_ids[1]},
        )

    view = await invoice(sessions, tenant_id, paid.payment_id)

    assert [line.booking_id for line in view.lines] == [paid.booking_ids[0]]
    assert view.total.amount_minor == 10_000


async def test_lines_are_adjusted_to_the_amount_actually_captured(
    owner_engine: AsyncEngine, sessions: Sessions
) -> None:
    tenant_id = await make_tenant(owner_engine)
    shop = await make_shop(owner_engine, tenant_id)
    paid = await make_paid(owner_engine, shop)
    async with owner_engine.begin() as conn:
        await conn.execute(
            text("UPDATE bookings SET total_minor = 9000 WHERE id = :b"),
            {"b": paid.booking_ids[0]},
        )

    view = await invoice(sessions, tenant_id, paid.payment_id)

    assert [(line.description, line.amount.amount_minor) for line in view.lines][1:] == [
        ("Adjustment", 1_000)
    ]
    assert view.lines[0].quantity == 1 and view.lines[0].amount.amount_minor == 9_000
    assert view.total.amount_minor == 10_000


async def test_credit_notes_reference_the_invoice_and_give_back_its_tax_exactly(
    owner_engine: AsyncEngine, sessions: Sessions
) -> None:
    tenant_id = await make_tenant(owner_engine)
    shop = await make_shop(owner_engine, tenant_id)
    await set_rate(owner_engine, tenant_id, 1_400)
    paid = await make_paid(owner_engine, shop, unit_price_minor=1_001)
    issued = await invoice(sessions, tenant_id, paid.payment_id)
    await set_rate(owner_engine, tenant_id, 500)  # later terms do not touch the credit notes
    parts = [333, 333, 335]
    notes = []
    for part in parts:
        refund_id = await make_refund(owner_engine, shop, paid, part)
        notes.append(await credit(sessions, tenant_id, refund_id))

    assert [n.number for n in notes] == ["CN-2026-000001", "CN-2026-000002", "CN-2026-000003"]
    assert all(n.credits_invoice_id == issued.id for n in notes)
    assert all(n.credits_number == issued.number for n in notes)
    assert [n.total.amount_minor for n in notes] == parts
    assert all(n.tax_rate_bps == 1_400 for n in notes)
    assert all(n.subtotal.amount_minor + n.tax.amount_minor == n.total.amount_minor for n in notes)
    assert notes[0].tax.amount_minor == 41  # 333 * 1400 / 11400 = 40.89
    assert sum(n.tax.amount_minor for n in notes) == issued.tax.amount_minor == 123
    assert all(len(n.lines) == 1 and "INV-2026-000001" in n.lines[0].description for n in notes)


async def test_credit_note_is_idempotent_per_refund_and_issues_a_missing_invoice(
    owner_engine: AsyncEngine, sessions: Sessions
) -> None:
    tenant_id = await make_tenant(owner_engine)
    shop = await make_shop(owner_engine, tenant_id)
    paid = await make_paid(owner_engine, shop)
    refund_id = await make_refund(owner_engine, shop, paid, 4_000)

    once = await credit(sessions, tenant_id, refund_id)
    again = await credit(sessions, tenant_id, refund_id)

    assert again == once
    assert once.credits_number == "INV-2026-000001"
    assert await count(owner_engine, "SELECT count(*) FROM invoices WHERE kind = 'invoice'") == 1
    assert await count(owner_engine, "SELECT count(*) FROM invoices") == 2
    assert (await invoice(sessions, tenant_id, paid.payment_id)).id == once.credits_invoice_id


async def test_refuses_an_uncaptured_payment_and_a_failed_refund(
    owner_engine: AsyncEngine, sessions: Sessions
) -> None:
    tenant_id = await make_tenant(owner_engine)
    shop = await make_shop(owner_engine, tenant_id)
    pending = await make_paid(owner_engine, shop, status="processing")
    paid = await make_paid(owner_engine, shop)
    failed = await make_refund(owner_engine, shop, paid, 100, status="failed")

    with pytest.raises(PaymentNotCaptured):
        await invoice(sessions, tenant_id, pending.payment_id)
    with pytest.raises(InvalidState):
        await credit(sessions, tenant_id, failed)
    assert await count(owner_engine, "SELECT count(*) FROM invoices") == 0
    assert await count(owner_engine, "SELECT count(*) FROM invoice_counters") == 0


async def test_issuing_needs_the_callers_transaction_with_the_tenant_set(
    owner_engine: AsyncEngine, sessions: Sessions
) -> None:
    tenant_id = await make_tenant(owner_engine)
    shop = await make_shop(owner_engine, tenant_id)
    paid = await make_paid(owner_engine, shop)
    refund_id = await make_refund(owner_engine, shop, paid, 100)
    other = await make_tenant(owner_engine)

    async with sessions() as session:
        with pytest.raises(InvoicingUsageError):
            await issue_invoice(session, tenant_id, paid.payment_id, NOW)
    async with sessions() as session, session.begin():
        with pytest.raises(InvoicingUsageError):
            await issue_credit_note(session, tenant_id, refund_id, NOW)
    async with sessions() as session, session.begin():
        await set_tenant(session, other)
        with pytest.raises(InvoicingUsageError):
            await issue_invoice(session, tenant_id, paid.payment_id, NOW)
    assert await count(owner_engine, "SELECT count(*) FROM invoices") == 0


async def test_rls_hides_another_tenants_payment_from_the_issuer(
    owner_engine: AsyncEngine, sessions: Sessions
) -> None:
    mine, theirs = await make_tenant(owner_engine), await make_tenant(owner_engine)
    their_paid = await make_paid(owner_engine, await make_shop(owner_engine, theirs))

    async with tenant_transaction(sessions, mine) as session:
        with pytest.raises(Exception, match="Payment not found"):
            await issue_invoice(session, mine, their_paid.payment_id, NOW)


async def test_database_keeps_issued_documents_immutable_and_balanced(
    owner_engine: AsyncEngine, sessions: Sessions
) -> None:
    tenant_id = await make_tenant(owner_engine)
    shop = await make_shop(owner_engine, tenant_id)
    view = await invoice(sessions, tenant_id, (await make_paid(owner_engine, shop)).payment_id)

    for statement in (
        "UPDATE invoices SET total_minor = 1 WHERE id = :id",
        "DELETE FROM invoice_lines WHERE invoice_id = :id",
        "DELETE FROM invoices WHERE id = :id",
    ):
        with pytest.raises(DBAPIError, match="immutable"):
            async with owner_engine.begin() as conn:
                await conn.execute(text(statement), {"id": view.id})
    with pytest.raises(DBAPIError, match="sum to 10001 EGP, not its total 10000"):
        async with owner_engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO invoice_lines (tenant_id, id, invoice_id, position, description, "
                    "quantity, unit_price_minor, amount_minor, currency) "
                    "VALUES (:t, :id, :inv, 9, 'extra', 1, 1, 1, 'EGP')"
                ),
                {"t": tenant_id, "id": uuid.uuid4(), "inv": view.id},
            )
    assert await count(owner_engine, "SELECT count(*) FROM invoice_lines") == 1


async def test_the_plain_captures_invoice_lists_what_issue_invoice_lists(
    owner_engine: AsyncEngine, sessions: Sessions
) -> None:
    """issuing.READS + plan_invoice (the applier's plain capture) against the ORM path's
    covered bookings and lines: a series, products on each booking, two on one of them (in
    name order, the later-inserted first)."""
    tenant_id = await make_tenant(owner_engine)
    shop = await make_shop(owner_engine, tenant_id)
    await set_rate(owner_engine, tenant_id, 1_400)
    paid = await make_paid(owner_engine, shop, series=3, products=2, party_size=2)
    aloe = uuid.uuid4()
    async with owner_engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO products (tenant_id, id, name, price_minor, currency) "
                "VALUES (:t, :p, 'Aloe', 700, 'EGP')"
            ),
            {"t": tenant_id, "p": aloe},
        )
        await conn.execute(
            text("INSERT INTO booking_products VALUES (:t, :b, :p, 3, 700, 'EGP')"),
            {"t": tenant_id, "b": paid.booking_ids[1], "p": aloe},
        )
    anchor = paid.booking_ids[0]
    async with sessions() as session, session.begin():
        await set_tenant(session, tenant_id)
        keys = {"t": tenant_id, "p": paid.payment_id}
        read = await run_together(session, [(sql, keys) for sql in issuing.READS.values()])
        covered = await lines.covered_bookings(session, tenant_id, paid.payment_id, anchor)
        expected = await lines.booking_lines(session, tenant_id, covered)
    planned = issuing.plan_invoice(
        tenant_id,
        paid.payment_id,
        anchor,
        paid.amount_minor,
        "EGP",
        dict(zip(issuing.READS, read, strict=True)),
        NOW,
    )

    assert planned is not None
    ((_, params),) = planned.statements
    listed = [
        tuple(params[f"v{row}_{column}"] for column in (4, 5, 6, 7, 9, 10))
        for row in range(len(expected))
    ]
    assert f"v{len(expected)}_0" not in params
    assert listed == [
        (e.description, e.quantity, e.unit_price_minor, e.amount_minor, e.booking_id, e.product_id)
        for e in amounts.balance_lines(expected, paid.amount_minor)
    ]
    assert [e.product_id for e in expected if e.booking_id == paid.booking_ids[1]] == [
        None,
        aloe,
        shop.product_id,
    ]
