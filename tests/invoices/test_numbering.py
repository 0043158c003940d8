"""Gapless numbering under real concurrency: parallel transactions on separate connections,
some of which roll back. Numbers are drawn at commit (migration 0021), so an issuing
transaction holds no per-business lock while it runs: only its commit touches the counter."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.db import tenant_transaction
from app.invoices.service import issue_credit_note, issue_invoice
from app.invoices.views import InvoiceView
from tests.invoices.setup import (
    NOW,
    Shop,
    credit,
    invoice,
    make_paid,
    make_refund,
    make_shop,
    view_of,
)
from tests.invoices.setup import make_tenant as new_tenant

Sessions = async_sessionmaker[AsyncSession]


class Abort(Exception):
    """Raised inside a transaction to roll it back after it drew a number."""


def numbers(series: str, count: int) -> list[str]:
    return [f"{series}-2026-{n:06d}" for n in range(1, count + 1)]


async def stored_numbers(owner: AsyncEngine, tenant_id: uuid.UUID, kind: str) -> list[str]:
    async with owner.connect() as conn:
        rows = await conn.execute(
            text("SELECT number FROM invoices WHERE tenant_id = :t AND kind = :k ORDER BY 1"),
            {"t": tenant_id, "k": kind},
        )
        return [row.number for row in rows]


async def shop_with_payments(owner: AsyncEngine, count: int) -> tuple[Shop, list[uuid.UUID]]:
    shop = await make_shop(owner, await new_tenant(owner))
    return shop, [(await make_paid(owner, shop)).payment_id for _ in range(count)]


async def issue_in_parallel(
    sessions: Sessions,
    tenant_id: uuid.UUID,
    payment_ids: list[uuid.UUID],
    *,
    abort: set[int] | frozenset[int] = frozenset(),
) -> list[InvoiceView | BaseException]:
    """Every transaction opens and sets its tenant, then all issue at once (a barrier), hold
    their number briefly, and commit, or roll back when their index is in `abort`."""
    barrier = asyncio.Barrier(len(payment_ids))

    async def one(index: int, payment_id: uuid.UUID) -> InvoiceView:
        async with tenant_transaction(sessions, tenant_id) as session:
            await barrier.wait()
            issued = await issue_invoice(session, tenant_id, payment_id, NOW)
            await asyncio.sleep(0.005)
            if index in abort:
                raise Abort(str(issued.id))
        return await view_of(sessions, tenant_id, issued.id)

    return await asyncio.gather(
        *(one(i, p) for i, p in enumerate(payment_ids)), return_exceptions=True
    )


async def test_twenty_parallel_transactions_get_numbers_one_to_twenty(
    owner_engine: AsyncEngine, sessions: Sessions
) -> None:
    shop, payment_ids = await shop_with_payments(owner_engine, 20)

    results = await issue_in_parallel(sessions, shop.tenant_id, payment_ids)

    views = [r for r in results if isinstance(r, InvoiceView)]
    assert len(views) == 20, [r for r in results if not isinstance(r, InvoiceView)]
    assert sorted(v.number for v in views) == numbers("INV", 20)
    assert {v.payment_id for v in views} == set(payment_ids)
    assert await stored_numbers(owner_engine, shop.tenant_id, "invoice") == numbers("INV", 20)


async def test_parallel_transactions_that_roll_back_leave_no_gap(
    owner_engine: AsyncEngine, sessions: Sessions
) -> None:
    shop, payment_ids = await shop_with_payments(owner_engine, 20)
    aborted = {0, 3, 7, 12, 19}

    results = await issue_in_parallel(sessions, shop.tenant_id, payment_ids, abort=aborted)

    assert sum(isinstance(r, Abort) for r in results) == len(aborted)
    committed = sorted(r.number for r in results if isinstance(r, InvoiceView))
    assert committed == numbers("INV", 15)
    assert await stored_numbers(owner_engine, shop.tenant_id, "invoice") == numbers("INV", 15)
    # The rolled-back payments are invoiced later with the next numbers, still gapless.
    later = [await invoice(sessions, shop.tenant_id, payment_ids[i]) for i in sorted(aborted)]
    assert [v.number for v in later] == numbers("INV", 20)[15:]


async def test_a_rolled_back_transaction_does_not_consume_a_number(
    owner_engine: AsyncEngine, sessions: Sessions
) -> None:
    shop, (first, second) = await shop_with_payments(owner_engine, 2)

    with pytest.raises(Abort):
        async with tenant_transaction(sessions, shop.tenant_id) as session:
            issued = await issue_invoice(session, shop.tenant_id, first, NOW)
            assert issued.created
            raise Abort(str(issued.id))

    assert (await invoice(sessions, shop.tenant_id, second)).number == "INV-2026-000001"
    assert (await invoice(sessions, shop.tenant_id, first)).number == "INV-2026-000002"


async def test_an_issuer_beside_an_open_one_neither_waits_nor_leaves_a_gap(
    owner_engine: AsyncEngine, sessions: Sessions
) -> None:
    """The first transaction has issued and is still open (the rest of a capture); the second
    issues and commits without queueing behind it, and the first, rolled back, leaves no gap."""
    shop, (first, second) = await shop_with_payments(owner_engine, 2)
    drawn = asyncio.Event()
    done = asyncio.Event()

    async def rolls_back() -> None:
        async with tenant_transaction(sessions, shop.tenant_id) as session:
            await issue_invoice(session, shop.tenant_id, first, NOW)
            drawn.set()
            await asyncio.wait_for(done.wait(), 5)  # still open while the other commits
            raise Abort()

    async def beside() -> tuple[InvoiceView, float]:
        await drawn.wait()
        started = time.perf_counter()
        view = await invoice(sessions, shop.tenant_id, second)
        elapsed = time.perf_counter() - started
        done.set()
        return view, elapsed

    aborted, result = await asyncio.gather(rolls_back(), beside(), return_exceptions=True)

    assert isinstance(aborted, Abort)
    assert not isinstance(result, BaseException), result
    view, elapsed = result
    assert view.number == "INV-2026-000001"
    assert elapsed < 2.0  # it did not wait for the open transaction (which waits 5 s for it)
    assert await stored_numbers(owner_engine, shop.tenant_id, "invoice") == ["INV-2026-000001"]


async def test_parallel_issuers_of_one_payment_share_one_invoice(
    owner_engine: AsyncEngine, sessions: Sessions
) -> None:
    shop, (payment_id,) = await shop_with_payments(owner_engine, 1)

    results = await issue_in_parallel(sessions, shop.tenant_id, [payment_id] * 6)

    assert {r.number for r in results if isinstance(r, InvoiceView)} == {"INV-2026-000001"}
    assert all(isinstance(r, InvoiceView) for r in results)
    assert await stored_numbers(owner_engine, shop.tenant_id, "invoice") == ["INV-2026-000001"]


async def test_parallel_credit_notes_have_their_own_gapless_series(
    owner_engine: AsyncEngine, sessions: Sessions
) -> None:
    shop = await make_shop(owner_engine, await new_tenant(owner_engine))
    refunds = []
    for _ in range(10):
        paid = await make_paid(owner_engine, shop)
        await invoice(sessions, shop.tenant_id, paid.payment_id)
        refunds.append(await make_refund(owner_engine, shop, paid, 1_000))
    barrier = asyncio.Barrier(len(refunds) * 2)

    async def one(refund_id: uuid.UUID) -> InvoiceView:
        async with tenant_transaction(sessions, shop.tenant_id) as session:
            await barrier.wait()
            issued = await issue_credit_note(session, shop.tenant_id, refund_id, NOW)
        return await view_of(sessions, shop.tenant_id, issued.id)

    # Each refund twice at once: one credit note per refund, numbers 1..10.
    results = await asyncio.gather(*(one(r) for r in refunds * 2))

    assert sorted({v.number for v in results}) == numbers("CN", 10)
    assert await stored_numbers(owner_engine, shop.tenant_id, "credit_note") == numbers("CN", 10)
    assert (await credit(sessions, shop.tenant_id, refunds[0])).number in numbers("CN", 10)
