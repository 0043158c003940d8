"""`reckon seed-demo` writes ninety days of history through the real use cases: every booking
state, sandbox payments, refunds, a payout run and a reconciliation run with one discrepancy,
with the books balanced, and nothing added when it runs again. (Its time is a figure in the
README, not an assertion: a loaded CI machine is several times slower than an idle one.)"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.cli.demo import seed_demo
from app.settings import Settings

STATES = {"confirmed", "completed", "cancelled", "no_show", "pending_payment", "expired"}


async def _rows(owner_engine: AsyncEngine, sql: str) -> list[Any]:
    async with owner_engine.connect() as connection:
        return list(await connection.execute(text(sql)))


async def _counts(owner_engine: AsyncEngine) -> dict[str, int]:
    tables = ("bookings", "payments", "refunds", "postings", "payouts", "reconciliation_runs")
    return {
        table: (await _rows(owner_engine, f"SELECT count(*) FROM {table}"))[0][0]
        for table in tables
    }


async def test_demo_history_has_every_state_balanced_books_and_seeds_once(
    settings: Settings, owner_engine: AsyncEngine
) -> None:
    await seed_demo(settings)

    tenants = await _rows(owner_engine, "SELECT id, slug FROM tenants ORDER BY slug")
    assert [t.slug for t in tenants] == ["nile-salon", "pine-cabins"]
    states = await _rows(
        owner_engine, "SELECT t.slug, b.status FROM bookings b JOIN tenants t ON t.id = b.tenant_id"
    )
    for tenant in tenants:
        assert {s.status for s in states if s.slug == tenant.slug} >= STATES, tenant.slug
    span = await _rows(
        owner_engine,
        "SELECT min(starts_at) AS first, max(starts_at) AS last, "
        "count(*) FILTER (WHERE starts_at < now()) AS past FROM bookings",
    )
    assert (span[0].last - span[0].first).days >= 90
    assert span[0].past >= 150

    # Trial balance: every currency's postings sum to zero, per business.
    unbalanced = await _rows(
        owner_engine,
        "SELECT tenant_id, currency, sum(amount_minor) FROM postings "
        "GROUP BY tenant_id, currency HAVING sum(amount_minor) <> 0",
    )
    assert unbalanced == []
    money = await _rows(
        owner_engine,
        "SELECT t.slug, "
        "(SELECT count(*) FROM payments p WHERE p.tenant_id = t.id AND p.provider = 'sandbox' "
        " AND p.captured_minor > 0) AS captured, "
        "(SELECT count(*) FROM refunds r WHERE r.tenant_id = t.id AND r.status = 'succeeded') "
        " AS refunds, "
        "(SELECT count(*) FROM payouts o WHERE o.tenant_id = t.id AND o.status = 'paid') AS paid, "
        "(SELECT count(*) FROM reconciliation_discrepancies d WHERE d.tenant_id = t.id "
        " AND d.status = 'open') AS open_discrepancies "
        "FROM tenants t ORDER BY t.slug",
    )
    for row in money:
        assert row.captured > 10 and row.refunds > 3 and row.open_discrepancies == 1, row
    # The salon's stylists earn commission (the cabins have no staff to pay).
    assert [(row.slug, row.paid) for row in money] == [("nile-salon", 1), ("pine-cabins", 0)]
    # Nothing pending that only a provider would finish (the worker finds no refund owed).
    assert await _rows(owner_engine, "SELECT id FROM refunds WHERE status = 'pending'") == []

    before = await _counts(owner_engine)
    await seed_demo(settings)
    assert await _counts(owner_engine) == before
