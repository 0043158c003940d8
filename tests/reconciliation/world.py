"""Rows for payout and reconciliation tests: catalog, bookings and payments written directly
as the owner (their own domains test their routes); every ledger entry goes through the real
`ledger.post` with the money path's account codes and keys."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.db import tenant_transaction
from app.ledger import chart as accounts
from app.ledger.service import Line, post
from app.money import Money

DAY_START = datetime(2026, 3, 10, tzinfo=UTC)


@dataclass
class World:
    tenant_id: uuid.UUID
    branch_id: uuid.UUID
    service_id: uuid.UUID
    resource_ids: list[uuid.UUID]
    currency: str = "EGP"


async def make_world(
    owner: AsyncEngine,
    *,
    tenant_id: uuid.UUID | None = None,
    resources: int = 1,
    currency: str = "EGP",
) -> World:
    """A tenant in UTC (unless given), one branch, one service and `resources` staff."""
    world = World(
        tenant_id or uuid.uuid4(),
        uuid.uuid4(),
        uuid.uuid4(),
        sorted(uuid.uuid4() for _ in range(resources)),
        currency,
    )
    p = {"t": world.tenant_id, "b": world.branch_id, "s": world.service_id, "cur": currency}
    async with owner.begin() as conn:
        if tenant_id is None:
            await conn.execute(
                text(
                    "INSERT INTO tenants (id, slug, name, currency, timezone) "
                    "VALUES (:t, :slug, 'Test', :cur, 'UTC')"
                ),
                {**p, "slug": f"t-{uuid.uuid4().hex[:12]}"},
            )
        await conn.execute(
            text(
                "INSERT INTO branches (tenant_id, id, name, timezone)"
                " VALUES (:t, :b, 'Main', 'UTC')"
            ),
            p,
        )
        await conn.execute(
            text(
                "INSERT INTO services (tenant_id, id, name, policy, price_minor, currency, pricing,"
                " duration_minutes, slot_step_minutes) VALUES (:t, :s, 'Cut', 'time_slot', 10000,"
                " :cur, 'fixed', 60, 60)"
            ),
            p,
        )
        for rid in world.resource_ids:
            await conn.execute(
                text(
                    "INSERT INTO resources (tenant_id, id, name, kind, capacity)"
                    " VALUES (:t, :r, 'Staff', 'staff', 1)"
                ),
                {**p, "r": rid},
            )
    return world


async def add_payment(
    owner: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    world: World,
    *,
    provider: str,
    amount: int,
    fee: int = 0,
    charge_ref: str | None = None,
    intent_ref: str | None = None,
    at: datetime = DAY_START + timedelta(hours=10),
    currency: str | None = None,
) -> uuid.UUID:
    """A completed booking paid through `provider`, with its captured and fee entries."""
    currency = currency or world.currency
    booking_id, payment_id = uuid.uuid4(), uuid.uuid4()
    p: dict[str, Any] = {
        "t": world.tenant_id,
        "bk": booking_id,
        "pay": payment_id,
        "b": world.branch_id,
        "s": world.service_id,
        "r": world.resource_ids[0],
        "start": at,
        "end": at + timedelta(hours=1),
        "amount": amount,
        "cur": currency,
        "provider": provider,
        "fee": fee,
        "pref": intent_ref,
        "cref": charge_ref,
    }
    async with owner.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO bookings (tenant_id, id, branch_id, service_id, resource_id,"
                " customer_name, starts_at, ends_at, blocked, exclusive, status, unit_price_minor,"
                " pricing, quantity, total_minor, currency, payment_provider) VALUES (:t, :bk, :b,"
                " :s, :r, 'Layla', :start, :end, tstzrange(:start, :end), false, 'completed',"
                " :amount, 'fixed', 1, :amount, :cur, :provider)"
            ),
            p,
        )
        await conn.execute(
            text(
                "INSERT INTO payments (tenant_id, id, booking_id, provider, status, amount_minor,"
                " currency, captured_minor, fee_minor, provider_ref, provider_charge_ref)"
                " VALUES (:t, :pay, :bk, :provider, 'succeeded', :amount, :cur, :amount, :fee,"
                " :pref, :cref)"
            ),
            p,
        )
    money = Money(amount, currency)
    async with tenant_transaction(sessions, world.tenant_id) as session:
        await post(
            session,
            world.tenant_id,
            idempotency_key=f"booking:{booking_id}:booked",
            reason="checkout",
            lines=accounts.booked(money),
            occurred_at=at,
            booking_id=booking_id,
        )
        await post(
            session,
            world.tenant_id,
            idempotency_key=f"payment:{payment_id}:captured",
            reason="payment",
            lines=accounts.captured(provider, money),
            occurred_at=at,
            booking_id=booking_id,
            payment_id=payment_id,
        )
        if fee:
            await post(
                session,
                world.tenant_id,
                idempotency_key=f"payment:{payment_id}:fee",
                reason="fee",
                lines=accounts.fee(provider, Money(fee, currency)),
                occurred_at=at,
                booking_id=booking_id,
                payment_id=payment_id,
            )
    return payment_id


async def add_refund(
    owner: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    world: World,
    payment_id: uuid.UUID,
    *,
    provider: str,
    amount: int,
    refund_ref: str | None,
    at: datetime = DAY_START + timedelta(hours=14),
) -> uuid.UUID:
    refund_id = uuid.uuid4()
    async with owner.begin() as conn:
        booking_id = (
            await conn.execute(
                text("SELECT booking_id FROM payments WHERE tenant_id = :t AND id = :p"),
                {"t": world.tenant_id, "p": payment_id},
            )
        ).scalar_one()
        await conn.execute(
            text(
                "UPDATE payments SET refunded_minor = refunded_minor + :a WHERE tenant_id = :t"
                " AND id = :p"
            ),
            {"t": world.tenant_id, "p": payment_id, "a": amount},
        )
        await conn.execute(
            text(
                "INSERT INTO refunds (tenant_id, id, payment_id, booking_id, amount_minor,"
                " currency, status, reason, provider_ref) VALUES (:t, :id, :p, :bk, :a, :cur,"
                " 'succeeded', 'requested_by_customer', :ref)"
            ),
            {
                "t": world.tenant_id,
                "id": refund_id,
                "p": payment_id,
                "bk": booking_id,
                "a": amount,
                "cur": world.currency,
                "ref": refund_ref,
            },
        )
    async with tenant_transaction(sessions, world.tenant_id) as session:
        await post(
            session,
            world.tenant_id,
            idempotency_key=f"refund:{refund_id}",
            reason="refund",
            lines=accounts.refunded(provider, Money(amount, world.currency), from_revenue=None),
            occurred_at=at,
            booking_id=booking_id,
            payment_id=payment_id,
        )
    return refund_id


async def earn_commission(
    sessions: async_sessionmaker[AsyncSession],
    world: World,
    resource_id: uuid.UUID,
    amount: int,
    *,
    at: datetime,
    key: str | None = None,
) -> None:
    """Commission accrues (amount > 0) or is clawed back after a refund (amount < 0)."""
    money = Money(abs(amount), world.currency)
    lines = accounts.commission(resource_id, money)
    if amount < 0:
        lines = [Line(line.code, line.type, -line.amount) for line in lines]
    async with tenant_transaction(sessions, world.tenant_id) as session:
        await post(
            session,
            world.tenant_id,
            idempotency_key=key or f"test:{uuid.uuid4()}",
            reason="commission" if amount > 0 else "refund",
            lines=lines,
            occurred_at=at,
            dimensions={"resource_id": resource_id},
        )


async def balance(owner: AsyncEngine, tenant_id: uuid.UUID, code: str) -> int:
    """Sum of the account's postings (only payables keep a cached balance row)."""
    async with owner.connect() as conn:
        value = (
            await conn.execute(
                text(
                    "SELECT sum(p.amount_minor) FROM ledger_accounts a JOIN postings p"
                    " ON p.tenant_id = a.tenant_id AND p.account_id = a.id"
                    " WHERE a.tenant_id = :t AND a.code = :c"
                ),
                {"t": tenant_id, "c": code},
            )
        ).scalar_one_or_none()
    return int(value or 0)
