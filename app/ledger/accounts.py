"""Reading accounts: balances are sums of postings, now or at a date, and the trial balance.
Payables also keep a trigger-maintained row in `balances` that carries their no-overdraft check.

Balances use the ledger's sign: debit-normal accounts (asset, expense) are usually > 0,
credit-normal ones (liability, revenue, equity) usually < 0.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import set_tenant
from app.ledger.errors import LedgerUsageError


@dataclass(frozen=True, slots=True)
class AccountBalance:
    code: str
    name: str
    type: str
    currency: str
    balance_minor: int


@dataclass(frozen=True, slots=True)
class TrialBalance:
    """Per currency: the sum of debit balances and of credit balances (both >= 0, equal)."""

    currency: str
    debits_minor: int
    credits_minor: int


_AT = """
    SELECT a.code, a.name, a.type, a.currency, coalesce(sum(p.amount_minor), 0) AS balance_minor
      FROM ledger_accounts a
      LEFT JOIN (postings p JOIN journal_entries e
                 ON e.tenant_id = p.tenant_id AND e.id = p.entry_id AND e.occurred_at <= :at)
        ON p.tenant_id = a.tenant_id AND p.account_id = a.id
     WHERE a.tenant_id = :tenant_id
     GROUP BY a.tenant_id, a.id
     ORDER BY a.currency, a.code
"""


_END_OF_TIME = datetime.max.replace(tzinfo=UTC)


async def list_accounts(session: AsyncSession, tenant_id: uuid.UUID) -> list[AccountBalance]:
    """Every account with its current balance."""
    async with session.begin():
        await set_tenant(session, tenant_id)
        rows = await session.execute(text(_AT), {"tenant_id": tenant_id, "at": _END_OF_TIME})
        return [
            AccountBalance(r.code, r.name, r.type, r.currency.strip(), int(r.balance_minor))
            for r in rows
        ]


async def balances_at(
    session: AsyncSession, tenant_id: uuid.UUID, at: datetime
) -> list[AccountBalance]:
    """Every account's balance counting entries that occurred at or before `at`."""
    async with session.begin():
        await set_tenant(session, tenant_id)
        rows = await session.execute(text(_AT), {"tenant_id": tenant_id, "at": at})
        return [
            AccountBalance(r.code, r.name, r.type, r.currency.strip(), int(r.balance_minor))
            for r in rows
        ]


async def trial_balance(
    session: AsyncSession, tenant_id: uuid.UUID, at: datetime | None = None
) -> list[TrialBalance]:
    """Debit and credit balance totals per currency, at `at` or now. Equal when the books
    balance, which the database guarantees."""
    async with session.begin():
        await set_tenant(session, tenant_id)
        source = _AT
        at = _END_OF_TIME if at is None else at
        rows = await session.execute(
            text(
                "SELECT currency, "
                "coalesce(sum(balance_minor) FILTER (WHERE balance_minor > 0), 0) AS debits, "
                "coalesce(-sum(balance_minor) FILTER (WHERE balance_minor < 0), 0) AS credits "
                f"FROM ({source}) accounts GROUP BY currency ORDER BY currency"
            ),
            {"tenant_id": tenant_id, "at": at},
        )
        return [TrialBalance(r.currency.strip(), int(r.debits), int(r.credits)) for r in rows]


async def balance_of(session: AsyncSession, tenant_id: uuid.UUID, code: str, currency: str) -> int:
    """Current balance of one account (0 if it does not exist yet), in the caller's
    transaction — e.g. a payout reading what is owed to a staff member before paying it."""
    if not session.in_transaction():
        raise LedgerUsageError("balance_of() must run inside the caller's transaction")
    value = (
        await session.execute(
            text(
                "SELECT coalesce(sum(p.amount_minor), 0) FROM ledger_accounts a "
                "JOIN postings p ON p.tenant_id = a.tenant_id AND p.account_id = a.id "
                "WHERE a.tenant_id = :tenant_id AND a.code = :code AND a.currency = :currency"
            ),
            {"tenant_id": tenant_id, "code": code, "currency": currency},
        )
    ).scalar_one_or_none()
    return int(value) if value is not None else 0
