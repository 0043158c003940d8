"""The database itself refuses invalid ledger states, whoever writes: the owner or the app role."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from app.db import set_tenant
from tests.factories import Business
from tests.ledger.conftest import lines, post, sale

Connect = Callable[[], AbstractAsyncContextManager[AsyncConnection]]


@pytest.fixture(params=["owner", "app"])
def connect(
    request: pytest.FixtureRequest,
    owner_engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    business: Business,
) -> Connect:
    """A transaction as the owner role (superuser) or as the app role with the tenant set."""

    @asynccontextmanager
    async def owner() -> AsyncIterator[AsyncConnection]:
        async with owner_engine.begin() as connection:
            yield connection

    @asynccontextmanager
    async def app() -> AsyncIterator[AsyncConnection]:
        async with sessions() as session, session.begin():
            await set_tenant(session, business.tenant_id)
            yield await session.connection()

    return owner if request.param == "owner" else app


async def _account(
    owner_engine: AsyncEngine, tenant_id: uuid.UUID, code: str, currency: str = "EGP"
) -> uuid.UUID:
    async with owner_engine.connect() as connection:
        account_id = (
            await connection.execute(
                text(
                    "SELECT id FROM ledger_accounts "
                    "WHERE tenant_id = :t AND code = :c AND currency = :cur"
                ),
                {"t": tenant_id, "c": code, "cur": currency},
            )
        ).scalar_one()
    assert isinstance(account_id, uuid.UUID)
    return account_id


async def _raw_entry(
    connection: AsyncConnection, tenant_id: uuid.UUID, postings: list[tuple[uuid.UUID, int, str]]
) -> None:
    entry_id = uuid.uuid4()
    await connection.execute(
        text(
            "INSERT INTO journal_entries (tenant_id, id, idempotency_key, reason, occurred_at) "
            "VALUES (:t, :id, :key, 'raw', now())"
        ),
        {"t": tenant_id, "id": entry_id, "key": f"raw:{entry_id}"},
    )
    for account_id, amount, currency in postings:
        await connection.execute(
            text(
                "INSERT INTO postings "
                "(tenant_id, id, entry_id, account_id, amount_minor, currency) "
                "VALUES (:t, gen_random_uuid(), :e, :a, :m, :c)"
            ),
            {"t": tenant_id, "e": entry_id, "a": account_id, "m": amount, "c": currency},
        )


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE postings SET amount_minor = amount_minor * 2",
        "DELETE FROM postings",
        "UPDATE journal_entries SET reason = 'tampered'",
        "DELETE FROM journal_entries",
    ],
)
async def test_update_and_delete_of_entries_and_postings_fail(
    connect: Connect,
    sessions: async_sessionmaker[AsyncSession],
    business: Business,
    owner_engine: AsyncEngine,
    statement: str,
) -> None:
    await post(sessions, business.tenant_id, sale(5000))
    with pytest.raises(DBAPIError, match=r"append-only|permission denied"):
        async with connect() as connection:
            await connection.execute(text(statement))
    async with owner_engine.connect() as connection:
        rows = (
            await connection.execute(
                text(
                    "SELECT reason, amount_minor FROM journal_entries e JOIN postings p "
                    "ON p.entry_id = e.id ORDER BY amount_minor"
                )
            )
        ).all()
    assert [tuple(r) for r in rows] == [("checkout", -5000), ("checkout", 5000)]


async def test_owner_is_refused_by_the_trigger_itself(
    owner_engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], business: Business
) -> None:
    await post(sessions, business.tenant_id, sale(100))
    with pytest.raises(DBAPIError, match="postings is append-only: UPDATE"):
        async with owner_engine.begin() as connection:
            await connection.execute(text("UPDATE postings SET amount_minor = 1"))


async def test_unbalanced_entry_fails_at_commit(
    connect: Connect,
    sessions: async_sessionmaker[AsyncSession],
    business: Business,
    owner_engine: AsyncEngine,
) -> None:
    await post(sessions, business.tenant_id, sale(100))
    receivable = await _account(owner_engine, business.tenant_id, "receivable:customer")
    deferred = await _account(owner_engine, business.tenant_id, "deferred_revenue")
    with pytest.raises(DBAPIError, match="does not balance: EGP 10"):
        async with connect() as connection:
            await _raw_entry(
                connection, business.tenant_id, [(receivable, 110, "EGP"), (deferred, -100, "EGP")]
            )
    assert await _entry_count(owner_engine) == 1


async def test_entry_with_one_or_no_posting_fails(
    connect: Connect,
    sessions: async_sessionmaker[AsyncSession],
    business: Business,
    owner_engine: AsyncEngine,
) -> None:
    await post(sessions, business.tenant_id, sale(100))
    receivable = await _account(owner_engine, business.tenant_id, "receivable:customer")
    with pytest.raises(DBAPIError, match="has 0 posting"):
        async with connect() as connection:
            await _raw_entry(connection, business.tenant_id, [])
    with pytest.raises(DBAPIError, match="has 1 posting"):
        async with connect() as connection:
            await _raw_entry(connection, business.tenant_id, [(receivable, 100, "EGP")])
    assert await _entry_count(owner_engine) == 1


async def test_balance_is_per_currency(
    connect: Connect,
    sessions: async_sessionmaker[AsyncSession],
    business: Business,
    owner_engine: AsyncEngine,
) -> None:
    await post(sessions, business.tenant_id, sale(100))
    await post(sessions, business.tenant_id, sale(100, "USD"))
    egp = await _account(owner_engine, business.tenant_id, "receivable:customer", "EGP")
    usd = await _account(owner_engine, business.tenant_id, "deferred_revenue", "USD")
    with pytest.raises(DBAPIError, match="does not balance"):
        async with connect() as connection:
            await _raw_entry(
                connection, business.tenant_id, [(egp, 100, "EGP"), (usd, -100, "USD")]
            )


async def test_posting_in_another_currency_than_its_account_fails(
    connect: Connect,
    sessions: async_sessionmaker[AsyncSession],
    business: Business,
    owner_engine: AsyncEngine,
) -> None:
    await post(sessions, business.tenant_id, sale(100))
    receivable = await _account(owner_engine, business.tenant_id, "receivable:customer")
    deferred = await _account(owner_engine, business.tenant_id, "deferred_revenue")
    with pytest.raises(DBAPIError, match="fk_postings_account_currency"):
        async with connect() as connection:
            await _raw_entry(
                connection, business.tenant_id, [(receivable, 100, "USD"), (deferred, -100, "USD")]
            )
    assert await _entry_count(owner_engine) == 1


async def test_postings_cannot_be_added_to_a_committed_entry(
    connect: Connect,
    sessions: async_sessionmaker[AsyncSession],
    business: Business,
    owner_engine: AsyncEngine,
) -> None:
    entry = await post(sessions, business.tenant_id, sale(100))
    receivable = await _account(owner_engine, business.tenant_id, "receivable:customer")
    deferred = await _account(owner_engine, business.tenant_id, "deferred_revenue")
    with pytest.raises(DBAPIError, match="are closed"):
        async with connect() as connection:
            for account_id, amount in [(receivable, 7), (deferred, -7)]:
                await connection.execute(
                    text(
                        "INSERT INTO postings (tenant_id, id, entry_id, account_id, amount_minor, "
                        "currency) VALUES (:t, gen_random_uuid(), :e, :a, :m, 'EGP')"
                    ),
                    {"t": business.tenant_id, "e": entry.id, "a": account_id, "m": amount},
                )


async def test_balanced_raw_entry_is_accepted(
    connect: Connect,
    sessions: async_sessionmaker[AsyncSession],
    business: Business,
    owner_engine: AsyncEngine,
) -> None:
    """The guards refuse only what is invalid: a correct raw entry commits."""
    await post(sessions, business.tenant_id, sale(100))
    receivable = await _account(owner_engine, business.tenant_id, "receivable:customer")
    deferred = await _account(owner_engine, business.tenant_id, "deferred_revenue")
    async with connect() as connection:
        await _raw_entry(
            connection, business.tenant_id, [(deferred, -40, "EGP"), (receivable, 40, "EGP")]
        )
    async with owner_engine.connect() as connection:
        balance = (
            await connection.execute(
                text("SELECT sum(amount_minor) FROM postings WHERE account_id = :a"),
                {"a": receivable},
            )
        ).scalar_one()
    assert balance == 140
    assert await _entry_count(owner_engine) == 2


async def test_app_role_cannot_write_balances_or_change_account_identity(
    sessions: async_sessionmaker[AsyncSession],
    business: Business,
    owner_engine: AsyncEngine,
) -> None:
    await post(
        sessions,
        business.tenant_id,
        lines(("payable:staff:x", "liability", -100), ("expense:commission", "expense", 100)),
    )
    with pytest.raises(DBAPIError, match="permission denied"):
        async with sessions() as session, session.begin():
            await set_tenant(session, business.tenant_id)
            await session.execute(text("UPDATE balances SET balance_minor = 0"))
    with pytest.raises(DBAPIError, match="cannot change code, type or currency"):
        async with owner_engine.begin() as connection:
            await connection.execute(text("UPDATE ledger_accounts SET code = 'payable:other'"))
    with pytest.raises(DBAPIError, match="ck_ledger_accounts_payable_is_liability"):
        async with owner_engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO ledger_accounts (tenant_id, id, code, type, currency, name) "
                    "VALUES (:t, gen_random_uuid(), 'payable:y', 'asset', 'EGP', 'y')"
                ),
                {"t": business.tenant_id},
            )


async def test_owner_can_still_truncate_for_cleanup(
    sessions: async_sessionmaker[AsyncSession],
    business: Business,
    owner_engine: AsyncEngine,
) -> None:
    await post(sessions, business.tenant_id, sale(100))
    async with owner_engine.connect() as connection:
        transaction = await connection.begin()
        await connection.execute(text("TRUNCATE postings, journal_entries CASCADE"))
        count = (await connection.execute(text("SELECT count(*) FROM postings"))).scalar_one()
        await transaction.rollback()
    assert count == 0
    assert await _entry_count(owner_engine) == 1


async def _entry_count(owner_engine: AsyncEngine) -> int:
    async with owner_engine.connect() as connection:
        return int(
            (await connection.execute(text("SELECT count(*) FROM journal_entries"))).scalar_one()
        )
