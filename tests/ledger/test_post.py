"""ledger.post() and reverse(): accounts on first use, idempotency, reversals, payables."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.db import open_batch, set_lock_timeout, set_tenant, tenant_transaction
from app.ledger import accounts, service
from app.ledger.errors import (
    AccountTypeMismatch,
    EntryAlreadyReversed,
    LedgerKeyReused,
    LedgerUsageError,
    PayableOverdrawn,
    UnbalancedEntry,
)
from app.ledger.service import Entry
from app.money import Money
from tests.factories import Business, sign_up
from tests.ledger.conftest import NOON, lines, post, sale

PAYABLE = "payable:staff:7f1e"


def accrue(amount: int) -> list[service.Line]:
    return lines(("expense:commission", "expense", amount), (PAYABLE, "liability", -amount))


def payout(amount: int) -> list[service.Line]:
    return lines((PAYABLE, "liability", amount), ("clearing:bank", "asset", -amount))


async def _counts(owner_engine: AsyncEngine) -> tuple[int, int]:
    async with owner_engine.connect() as connection:
        row = (
            await connection.execute(
                text(
                    "SELECT (SELECT count(*) FROM journal_entries), (SELECT count(*) FROM postings)"
                )
            )
        ).one()
    return int(row[0]), int(row[1])


async def test_post_creates_accounts_on_first_use_and_balances(
    sessions: async_sessionmaker[AsyncSession],
    business: Business,
) -> None:
    booking_id = uuid.uuid4()
    entry = await post(
        sessions,
        business.tenant_id,
        sale(12_345),
        booking_id=booking_id,
        dimensions={"branch_id": uuid.uuid4()},
    )
    await post(sessions, business.tenant_id, sale(655))
    assert entry.created and entry.booking_id == booking_id
    assert {(p.account_code, p.amount.amount_minor) for p in entry.postings} == {
        ("receivable:customer", 12_345),
        ("deferred_revenue", -12_345),
    }
    listed = await accounts.list_accounts(sessions(), business.tenant_id)
    assert [(a.code, a.type, a.currency, a.balance_minor) for a in listed] == [
        ("deferred_revenue", "liability", "EGP", -13_000),
        ("receivable:customer", "asset", "EGP", 13_000),
    ]


async def test_same_key_twice_returns_first_entry_and_writes_nothing(
    sessions: async_sessionmaker[AsyncSession],
    business: Business,
    owner_engine: AsyncEngine,
) -> None:
    first = await post(sessions, business.tenant_id, sale(500), key="booking:1:checkout")
    again = await post(
        sessions, business.tenant_id, sale(500), key="booking:1:checkout", reason="other"
    )
    assert again.id == first.id and again.reason == "checkout"
    assert first.created and not again.created
    assert await _counts(owner_engine) == (1, 2)


async def test_same_key_with_different_postings_is_refused(
    sessions: async_sessionmaker[AsyncSession],
    business: Business,
    owner_engine: AsyncEngine,
) -> None:
    await post(sessions, business.tenant_id, sale(500), key="k")
    with pytest.raises(LedgerKeyReused):
        await post(sessions, business.tenant_id, sale(501), key="k")
    assert await _counts(owner_engine) == (1, 2)


async def test_two_concurrent_transactions_with_same_key_write_one_entry(
    sessions: async_sessionmaker[AsyncSession],
    business: Business,
    owner_engine: AsyncEngine,
) -> None:
    for round_ in range(5):
        key = f"race:{round_}"
        results = await asyncio.gather(
            *[post(sessions, business.tenant_id, sale(900), key=key) for _ in range(8)]
        )
        assert len({entry.id for entry in results}) == 1
        assert sum(entry.created for entry in results) == 1
    assert await _counts(owner_engine) == (5, 10)
    listed = await accounts.list_accounts(sessions(), business.tenant_id)
    assert {a.code: a.balance_minor for a in listed}["receivable:customer"] == 4_500


async def test_post_outside_a_transaction_raises(
    sessions: async_sessionmaker[AsyncSession],
    business: Business,
) -> None:
    async with sessions() as session:
        with pytest.raises(LedgerUsageError):
            await service.post(
                session,
                business.tenant_id,
                idempotency_key="x",
                reason="r",
                lines=sale(1),
                occurred_at=NOON,
            )


@pytest.mark.parametrize(
    "bad",
    [
        lines(("a", "asset", 100), ("b", "liability", -99)),
        lines(("a", "asset", 100)),
        lines(("a", "asset", 0), ("b", "liability", 0)),
        [
            service.Line("a", "asset", Money(100, "EGP")),
            service.Line("b", "asset", Money(-100, "USD")),
        ],
        lines(("a", "bogus", 100), ("b", "asset", -100)),
    ],
)
async def test_invalid_lines_are_refused_before_writing(
    sessions: async_sessionmaker[AsyncSession],
    business: Business,
    owner_engine: AsyncEngine,
    bad: list[service.Line],
) -> None:
    with pytest.raises(UnbalancedEntry):
        await post(sessions, business.tenant_id, bad)
    assert await _counts(owner_engine) == (0, 0)


async def test_zero_lines_are_dropped(
    sessions: async_sessionmaker[AsyncSession], business: Business
) -> None:
    entry = await post(
        sessions, business.tenant_id, [*sale(300), *lines(("expense:fees:stripe", "expense", 0))]
    )
    assert len(entry.postings) == 2


async def test_account_type_is_fixed_by_first_use(
    sessions: async_sessionmaker[AsyncSession],
    business: Business,
) -> None:
    await post(sessions, business.tenant_id, sale(100))
    with pytest.raises(AccountTypeMismatch):
        await post(
            sessions,
            business.tenant_id,
            lines(("receivable:customer", "liability", 100), ("cash", "asset", -100)),
        )


async def test_reverse_mirrors_the_entry_once(
    sessions: async_sessionmaker[AsyncSession],
    business: Business,
    owner_engine: AsyncEngine,
) -> None:
    original = await post(
        sessions,
        business.tenant_id,
        sale(700),
        payment_id=uuid.uuid4(),
        dimensions={"service_id": "s1"},
    )

    async def run(key: str) -> Entry:
        async with tenant_transaction(sessions, business.tenant_id) as session:
            return await service.reverse(
                session, business.tenant_id, original.id, key, "correction"
            )

    reversal = await run("rev:1")
    assert reversal.reverses_entry_id == original.id
    assert reversal.payment_id == original.payment_id
    assert reversal.dimensions == {"service_id": "s1"}
    assert sorted(p.amount.amount_minor for p in reversal.postings) == [-700, 700]
    assert (await run("rev:1")).id == reversal.id
    with pytest.raises(EntryAlreadyReversed):
        await run("rev:2")
    listed = await accounts.list_accounts(sessions(), business.tenant_id)
    assert {a.balance_minor for a in listed} == {0}
    assert await _counts(owner_engine) == (2, 4)


async def test_payable_cannot_go_negative(
    sessions: async_sessionmaker[AsyncSession],
    business: Business,
    owner_engine: AsyncEngine,
) -> None:
    await post(sessions, business.tenant_id, accrue(1_000))
    await post(sessions, business.tenant_id, payout(600))
    with pytest.raises(PayableOverdrawn):
        await post(sessions, business.tenant_id, payout(401))
    await post(sessions, business.tenant_id, payout(400))
    async with tenant_transaction(sessions, business.tenant_id) as session:
        assert await accounts.balance_of(session, business.tenant_id, PAYABLE, "EGP") == 0
    assert await _counts(owner_engine) == (3, 6)


async def test_entry_that_credits_and_debits_the_same_payable_nets_first(
    sessions: async_sessionmaker[AsyncSession],
    business: Business,
) -> None:
    """Within one entry only the net change matters: no transient overdraft."""
    entry = await post(sessions, business.tenant_id, [*payout(300), *accrue(300)])
    assert len(entry.postings) == 4


async def test_concurrent_payouts_racing_for_one_balance_at_most_one_wins(
    sessions: async_sessionmaker[AsyncSession],
    business: Business,
    owner_engine: AsyncEngine,
) -> None:
    await post(sessions, business.tenant_id, accrue(1_000))

    async def pay(n: int) -> bool:
        async with sessions() as session:
            try:
                async with session.begin():
                    await set_tenant(session, business.tenant_id)
                    await set_lock_timeout(session, 10_000)
                    await service.post(
                        session,
                        business.tenant_id,
                        idempotency_key=f"payout:{n}",
                        reason="payout",
                        lines=payout(700),
                        occurred_at=NOON,
                    )
                    # Hold the row lock a moment so the racers really overlap.
                    await session.execute(text("SELECT pg_sleep(0.05)"))
            except PayableOverdrawn:
                return False
        return True

    outcomes = await asyncio.gather(*[pay(n) for n in range(10)])
    assert outcomes.count(True) == 1
    async with tenant_transaction(sessions, business.tenant_id) as session:
        assert await accounts.balance_of(session, business.tenant_id, PAYABLE, "EGP") == -300
    assert await _counts(owner_engine) == (2, 4)


async def test_accounts_are_isolated_per_tenant(
    sessions: async_sessionmaker[AsyncSession],
    business: Business,
    owner_engine: AsyncEngine,
    client: AsyncTestClient[Litestar],
) -> None:
    other = await sign_up(client, timezone="UTC")
    await post(sessions, business.tenant_id, sale(100))
    await post(sessions, other.tenant_id, sale(999))
    mine = await accounts.list_accounts(sessions(), business.tenant_id)
    assert {a.balance_minor for a in mine} == {100, -100}
    async with sessions() as session, session.begin():
        await set_tenant(session, other.tenant_id)
        visible = (
            (
                await session.execute(
                    text(
                        "SELECT DISTINCT tenant_id FROM ledger_accounts UNION "
                        "SELECT DISTINCT tenant_id FROM postings UNION "
                        "SELECT tenant_id FROM balances"
                    )
                )
            )
            .scalars()
            .all()
        )
    assert visible == [other.tenant_id]
    async with owner_engine.connect() as connection:
        per_tenant = (
            await connection.execute(text("SELECT count(DISTINCT tenant_id) FROM ledger_accounts"))
        ).scalar_one()
    assert per_tenant == 2


async def _post_in(
    sessions: async_sessionmaker[AsyncSession],
    tenant_id: uuid.UUID,
    entry_lines: list[service.Line],
    key: str,
) -> uuid.UUID:
    """post_in through a batch run in its own transaction, as place_booking runs it."""
    async with tenant_transaction(sessions, tenant_id) as session, open_batch(session) as batch:
        return service.post_in(
            batch,
            tenant_id,
            idempotency_key=key,
            reason="booking",
            lines=entry_lines,
            occurred_at=NOON,
        )


async def test_post_in_writes_what_post_writes_in_the_batch_round_trip(
    sessions: async_sessionmaker[AsyncSession],
    business: Business,
    owner_engine: AsyncEngine,
) -> None:
    """Accounts on first use (also when eight first uses race), balanced postings under the
    entry, and the same entry as post() reads back."""
    ids = await asyncio.gather(
        *[_post_in(sessions, business.tenant_id, sale(100), f"batch:{n}") for n in range(8)]
    )
    assert await _counts(owner_engine) == (8, 16)
    async with tenant_transaction(sessions, business.tenant_id) as session:
        entry = await service.get_entry(session, business.tenant_id, ids[0])
    assert entry.idempotency_key == "batch:0" and entry.reason == "booking"
    assert {(p.account_code, p.amount.amount_minor) for p in entry.postings} == {
        ("receivable:customer", 100),
        ("deferred_revenue", -100),
    }
    listed = await accounts.list_accounts(sessions(), business.tenant_id)
    assert [(a.code, a.type, a.balance_minor) for a in listed] == [
        ("deferred_revenue", "liability", -800),
        ("receivable:customer", "asset", 800),
    ]


async def test_post_in_refuses_a_posted_key_and_an_account_of_another_type(
    sessions: async_sessionmaker[AsyncSession],
    business: Business,
    owner_engine: AsyncEngine,
) -> None:
    await post(sessions, business.tenant_id, sale(500), key="taken")
    with pytest.raises(IntegrityError):
        await _post_in(sessions, business.tenant_id, sale(500), "taken")
    with pytest.raises(IntegrityError):
        await _post_in(
            sessions,
            business.tenant_id,
            lines(("receivable:customer", "liability", 100), ("cash", "asset", -100)),
            "other-type",
        )
    with pytest.raises(AccountTypeMismatch):
        await _post_in(
            sessions,
            business.tenant_id,
            lines(("x", "asset", 100), ("x", "liability", -100)),
            "mixed",
        )
    assert await _counts(owner_engine) == (1, 2)
