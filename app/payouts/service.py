"""Payout use cases: what staff are owed, payout runs, and settling or failing a payout.

A run moves each staff member's payable (what they earned up to the period's end, less what
earlier payouts already moved) into `payouts_in_transit:<rail>` in ONE transaction with the
payout row and its outbox row. The ledger entry's idempotency key is derived from (resource,
currency, period), so a run repeated for the same period, even racing another, writes
nothing new. The payable's database guard makes the final refusal of an overdraw.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import trail as audit
from app.db import lock_all, new_id, retry_on_contention, set_lock_timeout, set_tenant
from app.errors import InvalidState, NotFound
from app.ledger import chart
from app.ledger.errors import LedgerKeyReused, PayableOverdrawn
from app.ledger.service import post, reverse
from app.money import Money
from app.outbox.service import stage
from app.payouts.models import (
    FAILED,
    IN_TRANSIT,
    PAID,
    RAIL_MANUAL,
    RAIL_STRIPE,
    Payout,
    PayoutAccount,
)
from app.validation import field_error

TOPIC_REQUESTED = "payout.requested"
REASON_PAYOUT = "payout"
REASON_FAILED = "payout.failed"
REASON_PAID = "payout.paid"
DEFAULT_MINIMUM_MINOR = 1


class PayoutNotFound(NotFound):
    slug = "payout_not_found"
    title = "No such payout"


class PayoutNotInTransit(InvalidState):
    slug = "payout_not_in_transit"
    title = "The payout is already paid or failed"


def settles_through(rail: str) -> str:
    """Where a paid payout's money leaves from: Stripe's clearing for Connect transfers,
    the bank's for the manual rail (the account codes are the chart's)."""
    return RAIL_STRIPE if rail == RAIL_STRIPE else chart.BANK


@dataclass(frozen=True, slots=True)
class Payable:
    resource_id: uuid.UUID
    currency: str
    owed_minor: int


@dataclass(frozen=True, slots=True)
class PayoutRun:
    period_start: date
    period_end: date
    created: list[Payout]
    skipped: list[Payable]


async def list_payables(session: AsyncSession, tenant_id: uuid.UUID) -> list[Payable]:
    """What each staff member is owed now, from the ledger's balances (own read tx)."""
    async with session.begin():
        await set_tenant(session, tenant_id)
        return await _owed(session, tenant_id, None)


_OWED = text(
    "SELECT a.code, a.currency, -coalesce(sum(p.amount_minor) FILTER (WHERE"
    " CAST(:cutoff AS timestamptz) IS NULL OR e.occurred_at < :cutoff"
    " OR e.reason IN ('payout', 'payout.failed')), 0) AS owed,"
    " -b.balance_minor AS now_owed"
    " FROM ledger_accounts a JOIN balances b ON b.tenant_id = a.tenant_id AND b.account_id = a.id"
    " LEFT JOIN postings p ON p.tenant_id = a.tenant_id AND p.account_id = a.id"
    " LEFT JOIN journal_entries e ON e.tenant_id = p.tenant_id AND e.id = p.entry_id"
    f" WHERE a.tenant_id = :tenant_id AND a.code LIKE '{chart.STAFF_PAYABLE_PREFIX}%'"
    " GROUP BY a.id, a.code, a.currency, b.balance_minor ORDER BY a.code, a.currency"
)


async def _owed(
    session: AsyncSession, tenant_id: uuid.UUID, cutoff: datetime | None
) -> list[Payable]:
    """Owed per payable: earned before `cutoff` less every payout (whenever it happened),
    never more than the balance now. Without a cutoff: the balance now."""
    rows = await session.execute(_OWED, {"tenant_id": tenant_id, "cutoff": cutoff})
    result = []
    for row in rows:
        owed = int(row.now_owed) if cutoff is None else min(int(row.owed), int(row.now_owed))
        result.append(Payable(chart.payable_resource(row.code), row.currency.strip(), owed))
    return result


@retry_on_contention()
async def run_payouts(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    period_start: date,
    period_end: date,
    minimum_minor: int,
    now: datetime,
    actor: audit.Actor,
) -> PayoutRun:
    """Create one payout per staff member owed at least `minimum_minor` for the period."""
    if period_end <= period_start:
        raise field_error("period_end", "must be after period_start")
    if minimum_minor < 1:
        raise field_error("minimum_minor", "must be at least 1")
    created: list[Payout] = []
    skipped: list[Payable] = []
    async with session.begin():
        await set_tenant(session, tenant_id)
        await set_lock_timeout(session, 5000)
        cutoff = await _local_midnight(session, tenant_id, period_end)
        accounts = await _payout_accounts(session)
        for payable in await _owed(session, tenant_id, cutoff):
            if payable.owed_minor < minimum_minor:
                continue
            payout = await _create_one(
                session,
                tenant_id,
                payable,
                accounts.get(payable.resource_id),
                (period_start, period_end),
                now,
                actor,
            )
            if payout is None:
                skipped.append(payable)
            else:
                created.append(payout)
    return PayoutRun(period_start, period_end, created, skipped)


async def _create_one(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    payable: Payable,
    account: PayoutAccount | None,
    period: tuple[date, date],
    now: datetime,
    actor: audit.Actor,
) -> Payout | None:
    """One payout in a savepoint: a period already paid or a payable the database refuses
    to overdraw skips this staff member without undoing the others."""
    stripe = account is not None and account.rail == RAIL_STRIPE
    rail = RAIL_STRIPE if stripe else RAIL_MANUAL
    payout_id = new_id()
    amount = Money(payable.owed_minor, payable.currency)
    key = f"payout:{payable.resource_id}:{payable.currency}:{period[0]}:{period[1]}"
    lines = chart.payout_in_transit(payable.resource_id, rail, amount)
    try:
        async with session.begin_nested():
            entry = await post(
                session,
                tenant_id,
                idempotency_key=key,
                reason=REASON_PAYOUT,
                lines=lines,
                occurred_at=now,
                dimensions={"resource_id": payable.resource_id, "payout_id": payout_id},
            )
            if not entry.created:
                return None
            payout = Payout(
                tenant_id=tenant_id,
                id=payout_id,
                resource_id=payable.resource_id,
                rail=rail,
                destination=account.connected_account_id if stripe and account else None,
                status=IN_TRANSIT,
                amount_minor=amount.amount_minor,
                currency=amount.currency,
                period_start=period[0],
                period_end=period[1],
                transfer_entry_id=entry.id,
                created_at=now,
                updated_at=now,
            )
            session.add(payout)
            await session.flush()
            await stage(
                session, tenant_id, TOPIC_REQUESTED, "payout", payout_id, {"payout_id": payout_id}
            )
            audit.record(
                session,
                tenant_id,
                actor,
                "payout.created",
                "payout",
                payout_id,
                after={"amount_minor": amount.amount_minor, "rail": rail},
            )
    except (LedgerKeyReused, PayableOverdrawn):
        return None
    return payout


async def _local_midnight(session: AsyncSession, tenant_id: uuid.UUID, day: date) -> datetime:
    tz = (
        await session.execute(
            text("SELECT timezone FROM tenants WHERE id = :id"), {"id": tenant_id}
        )
    ).scalar_one()
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(str(tz)))


async def _payout_accounts(session: AsyncSession) -> dict[uuid.UUID, PayoutAccount]:
    rows = (await session.scalars(select(PayoutAccount))).all()
    return {row.resource_id: row for row in rows}


async def list_payouts(
    session: AsyncSession, tenant_id: uuid.UUID, *, status: str | None = None, limit: int = 200
) -> list[Payout]:
    async with session.begin():
        await set_tenant(session, tenant_id)
        query = select(Payout).order_by(Payout.created_at.desc(), Payout.id).limit(limit)
        if status is not None:
            query = query.where(Payout.status == status)
        return list((await session.scalars(query)).all())


async def get_payout(session: AsyncSession, tenant_id: uuid.UUID, payout_id: uuid.UUID) -> Payout:
    async with session.begin():
        await set_tenant(session, tenant_id)
        payout = await session.get(Payout, (tenant_id, payout_id))
    if payout is None:
        raise PayoutNotFound(payout_id=payout_id)
    return payout


async def _lock_payout(session: AsyncSession, tenant_id: uuid.UUID, payout_id: uuid.UUID) -> Payout:
    await set_tenant(session, tenant_id)
    await set_lock_timeout(session)
    rows = await lock_all(
        session, select(Payout).where(Payout.tenant_id == tenant_id, Payout.id == payout_id)
    )
    if not rows:
        raise PayoutNotFound(payout_id=payout_id)
    return rows[0]


@retry_on_contention()
async def mark_payout_paid(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    payout_id: uuid.UUID,
    *,
    provider_ref: str | None,
    now: datetime,
    actor: audit.Actor,
) -> Payout:
    """The money left: Dr payouts_in_transit:<rail> / Cr the rail's clearing. Idempotent."""
    async with session.begin():
        payout = await _lock_payout(session, tenant_id, payout_id)
        if payout.status == PAID:
            return payout
        if payout.status != IN_TRANSIT:
            raise PayoutNotInTransit(payout_id=payout_id, status=payout.status)
        amount = Money(payout.amount_minor, payout.currency)
        entry = await post(
            session,
            tenant_id,
            idempotency_key=f"payout:{payout_id}:paid",
            reason=REASON_PAID,
            lines=chart.payout_settled(payout.rail, settles_through(payout.rail), amount),
            occurred_at=now,
            dimensions={
                "resource_id": payout.resource_id,
                "payout_id": payout_id,
                "provider_ref": provider_ref,
            },
        )
        payout.status, payout.settle_entry_id, payout.paid_at = PAID, entry.id, now
        payout.provider_ref, payout.updated_at = provider_ref, now
        audit.record(
            session,
            tenant_id,
            actor,
            "payout.paid",
            "payout",
            payout_id,
            after={"provider_ref": provider_ref},
        )
    return payout


async def fail_payout(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    payout_id: uuid.UUID,
    *,
    reason: str,
    now: datetime,
    actor: audit.Actor,
) -> Payout:
    """The money did not leave: reverse the transfer entry so the payable is owed again."""
    async with session.begin():
        payout = await _lock_payout(session, tenant_id, payout_id)
        if payout.status == FAILED:
            return payout
        if payout.status != IN_TRANSIT:
            raise PayoutNotInTransit(payout_id=payout_id, status=payout.status)
        await reverse(
            session,
            tenant_id,
            payout.transfer_entry_id,
            f"payout:{payout_id}:reversed",
            REASON_FAILED,
            occurred_at=now,
        )
        payout.status, payout.failure_reason, payout.updated_at = FAILED, reason[:500], now
        audit.record(
            session,
            tenant_id,
            actor,
            "payout.failed",
            "payout",
            payout_id,
            after={"reason": reason[:500]},
        )
    return payout


async def set_payout_account(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    resource_id: uuid.UUID,
    *,
    rail: str,
    connected_account_id: str | None,
    now: datetime,
    actor: audit.Actor,
) -> PayoutAccount:
    """Map a staff member to a rail (a Stripe Connect account id, or manual/bank)."""
    if rail == RAIL_STRIPE and not (connected_account_id or "").startswith("acct_"):
        raise field_error("connected_account_id", "a Stripe rail needs an acct_... id")
    async with session.begin():
        await set_tenant(session, tenant_id)
        exists = (
            await session.execute(
                text("SELECT 1 FROM resources WHERE tenant_id = :t AND id = :id"),
                {"t": tenant_id, "id": resource_id},
            )
        ).first()
        if exists is None:
            raise NotFound("Resource not found", entity="resource", id=str(resource_id))
        account = (
            await session.scalars(
                select(PayoutAccount)
                .where(
                    PayoutAccount.tenant_id == tenant_id, PayoutAccount.resource_id == resource_id
                )
                .with_for_update()
            )
        ).one_or_none()
        if account is None:
            account = PayoutAccount(
                tenant_id=tenant_id, id=new_id(), resource_id=resource_id, rail=rail, created_at=now
            )
            session.add(account)
        account.rail = rail
        account.connected_account_id = connected_account_id if rail == RAIL_STRIPE else None
        account.updated_at = now
        audit.record(
            session,
            tenant_id,
            actor,
            "payout_account.set",
            "payout_account",
            account.id,
            after={"rail": rail, "resource_id": str(resource_id)},
        )
    return account


def default_period(today: date) -> tuple[date, date]:
    """The last complete ISO week (Monday to Monday)."""
    end = today - timedelta(days=today.weekday())
    return end - timedelta(days=7), end
