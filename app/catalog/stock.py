"""Product stock moves only by movements: a delta with a reason, who made it and, for a
booking, which one. Each movement is applied to product_stock and recorded in the same
statement, so a quantity never changes without its row in stock_movements.

Below zero is impossible twice over: every decrement is conditional (`quantity + delta >= 0`
in the UPDATE, re-checked by PostgreSQL on the row it holds once a concurrent writer commits)
and product_stock has CHECK (quantity >= 0) for any code that forgets. Each statement locks
one stock row, and a booking takes its rows in product-id order, so stock writers never
deadlock each other.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import trail as audit
from app.catalog.checks import Problems
from app.catalog.errors import InsufficientStock, ProductArchived
from app.catalog.models import Product, ProductStock, StockMovement
from app.catalog.queries import branch_states
from app.catalog.views import StockMovementView
from app.db import new_id, retry_on_contention, set_tenant, set_tenant_and_lock_timeout
from app.errors import NotFound
from app.tenancy.service import Principal
from app.validation import field_error

MAX_QUANTITY = 10**9
MAX_DELTA = 10**6
LOCK_TIMEOUT_MS = 3000
BOOKING_REASON = "booking"

_COLUMNS = (
    "tenant_id, id, product_id, branch_id, delta, quantity_after, kind, reason, actor_kind, "
    "actor_id, booking_id, created_at"
)
_VALUES = (
    ":tenant_id, :id, :product_id, :branch_id, :delta, quantity, :kind, :reason, :actor_kind, "
    ":actor_id, :booking_id, COALESCE(CAST(:now AS timestamptz), now())"
)

# A booking sells only an active product, and only what is there.
_TAKE = text(
    f"""
    WITH taken AS (
        UPDATE product_stock s SET quantity = s.quantity + :delta
          FROM products p
         WHERE s.tenant_id = :tenant_id AND s.product_id = :product_id
           AND s.branch_id = :branch_id AND s.quantity + :delta >= 0
           AND p.tenant_id = s.tenant_id AND p.id = s.product_id AND p.active
        RETURNING s.quantity, p.price_minor, p.currency
    ), moved AS (
        INSERT INTO stock_movements ({_COLUMNS}) SELECT {_VALUES} FROM taken
    )
    SELECT price_minor, currency FROM taken
    """
)
_DECREASE = text(
    f"""
    WITH applied AS (
        UPDATE product_stock SET quantity = quantity + :delta
         WHERE tenant_id = :tenant_id AND product_id = :product_id AND branch_id = :branch_id
           AND quantity + :delta >= 0
        RETURNING quantity
    )
    INSERT INTO stock_movements ({_COLUMNS}) SELECT {_VALUES} FROM applied
    RETURNING quantity_after
    """
)
_INCREASE = text(
    f"""
    WITH applied AS (
        INSERT INTO product_stock AS s (tenant_id, product_id, branch_id, quantity)
        VALUES (:tenant_id, :product_id, :branch_id, :delta)
        ON CONFLICT (tenant_id, product_id, branch_id)
        DO UPDATE SET quantity = s.quantity + EXCLUDED.quantity
        WHERE s.quantity + EXCLUDED.quantity <= {MAX_QUANTITY}
        RETURNING quantity
    )
    INSERT INTO stock_movements ({_COLUMNS}) SELECT {_VALUES} FROM applied
    RETURNING quantity_after
    """
)


@dataclass(frozen=True, slots=True)
class Sold:
    """What a booking took: the product's price and currency at that moment."""

    unit_price_minor: int
    currency: str


def _params(
    movement_id: uuid.UUID,
    tenant_id: uuid.UUID,
    *,
    product_id: uuid.UUID,
    branch_id: uuid.UUID,
    delta: int,
    kind: str,
    reason: str,
    actor: audit.Actor,
    booking_id: uuid.UUID | None,
    now: datetime | None,
) -> dict[str, object]:
    return {
        "tenant_id": tenant_id,
        "id": movement_id,
        "product_id": product_id,
        "branch_id": branch_id,
        "delta": delta,
        "kind": kind,
        "reason": reason,
        "actor_kind": actor.kind,
        "actor_id": actor.id,
        "booking_id": booking_id,
        "now": now,
    }


async def take_for_booking(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    actor: audit.Actor,
    *,
    booking_id: uuid.UUID,
    branch_id: uuid.UUID,
    product_id: uuid.UUID,
    quantity: int,
    now: datetime,
) -> Sold | None:
    """Inside the booking's transaction: take `quantity` from the branch's stock and record
    the movement; None when there is not enough (nothing changed). ProductArchived for a
    product that is no longer sold."""
    params = _params(
        new_id(),
        tenant_id,
        product_id=product_id,
        branch_id=branch_id,
        delta=-quantity,
        kind="booking",
        reason=BOOKING_REASON,
        actor=actor,
        booking_id=booking_id,
        now=now,
    )
    row = (await session.execute(_TAKE, params)).first()
    if row is not None:
        return Sold(int(row.price_minor), row.currency.strip())
    active = await session.scalar(
        select(Product.active).where(Product.tenant_id == tenant_id, Product.id == product_id)
    )
    if active is False:
        raise ProductArchived("products", product_id)
    return None


async def return_for_booking(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    actor: audit.Actor,
    *,
    booking_id: uuid.UUID,
    branch_id: uuid.UUID,
    product_id: uuid.UUID,
    quantity: int,
    now: datetime,
) -> None:
    """Inside the transaction that cancels or expires a booking: what it took goes back on
    the shelf, recorded as a `restock` movement naming the booking."""
    params = _params(
        new_id(),
        tenant_id,
        product_id=product_id,
        branch_id=branch_id,
        delta=quantity,
        kind="restock",
        reason=BOOKING_REASON,
        actor=actor,
        booking_id=booking_id,
        now=now,
    )
    await session.execute(_INCREASE, params)


async def open_stock(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    actor: audit.Actor,
    *,
    product_id: uuid.UUID,
    branch_id: uuid.UUID,
    quantity: int,
    now: datetime | None,
) -> None:
    """A new product's stock at a branch: the row, and its opening movement when not zero."""
    if quantity == 0:
        session.add(
            ProductStock(
                tenant_id=tenant_id, product_id=product_id, branch_id=branch_id, quantity=0
            )
        )
        await session.flush()
        return
    params = _params(
        new_id(),
        tenant_id,
        product_id=product_id,
        branch_id=branch_id,
        delta=quantity,
        kind="opening",
        reason="opening stock",
        actor=actor,
        booking_id=None,
        now=now,
    )
    await session.execute(_INCREASE, params)


@retry_on_contention()
async def record_stock_movement(
    session: AsyncSession,
    actor: Principal,
    product_id: uuid.UUID,
    *,
    branch_id: uuid.UUID,
    delta: int,
    reason: str,
    now: datetime,
) -> StockMovementView:
    """An adjustment by hand (a delivery, a count, breakage): applied at once, or refused with
    InsufficientStock when it would take the stock below zero. Archived products may still
    be adjusted, so what is left of them can be written off."""
    problems = Problems()
    reason = problems.text(reason, "reason", max_length=500)
    if delta == 0:
        problems.add("delta", "must not be zero")
    problems.int_range(delta, "delta", -MAX_DELTA, MAX_DELTA)
    problems.raise_if_any()
    tenant_id = actor.tenant_id
    async with session.begin():
        await set_tenant_and_lock_timeout(session, tenant_id, LOCK_TIMEOUT_MS)
        if await session.get(Product, (tenant_id, product_id)) is None:
            raise NotFound("Product not found", entity="product", id=str(product_id))
        known = await branch_states(session, tenant_id, [branch_id])
        problems.known([branch_id], set(known), "branch_id", "branch")
        problems.raise_if_any()
        who = audit.Actor.user(actor.user_id)
        movement_id = new_id()
        params = _params(
            movement_id,
            tenant_id,
            product_id=product_id,
            branch_id=branch_id,
            delta=delta,
            kind="adjustment",
            reason=reason,
            actor=who,
            booking_id=None,
            now=now,
        )
        statement = _INCREASE if delta > 0 else _DECREASE
        after = (await session.execute(statement, params)).scalar_one_or_none()
        if after is None:
            if delta > 0:
                raise field_error("delta", f"would take the stock above {MAX_QUANTITY}")
            available = await _quantity(session, tenant_id, product_id, branch_id)
            raise InsufficientStock(
                product_id=str(product_id), branch_id=str(branch_id), available=available
            )
        audit.record(
            session,
            tenant_id,
            who,
            "product.stock_moved",
            "product",
            product_id,
            after={
                "branch_id": str(branch_id),
                "delta": delta,
                "reason": reason,
                "quantity": after,
            },
        )
    return StockMovementView(
        movement_id,
        product_id,
        branch_id,
        delta,
        int(after),
        "adjustment",
        reason,
        who.kind,
        who.id,
        None,
        now,
    )


async def _quantity(
    session: AsyncSession, tenant_id: uuid.UUID, product_id: uuid.UUID, branch_id: uuid.UUID
) -> int:
    found = await session.scalar(
        select(ProductStock.quantity).where(
            ProductStock.tenant_id == tenant_id,
            ProductStock.product_id == product_id,
            ProductStock.branch_id == branch_id,
        )
    )
    return int(found or 0)


async def list_stock_movements(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    product_id: uuid.UUID,
    *,
    branch_id: uuid.UUID | None = None,
    limit: int = 200,
) -> list[StockMovementView]:
    """A product's movements, newest first."""
    async with session.begin():
        await set_tenant(session, tenant_id)
        if await session.get(Product, (tenant_id, product_id)) is None:
            raise NotFound("Product not found", entity="product", id=str(product_id))
        query = select(StockMovement).where(
            StockMovement.tenant_id == tenant_id, StockMovement.product_id == product_id
        )
        if branch_id is not None:
            query = query.where(StockMovement.branch_id == branch_id)
        rows = await session.scalars(
            query.order_by(StockMovement.created_at.desc(), StockMovement.id.desc()).limit(limit)
        )
        return [
            StockMovementView(
                m.id,
                m.product_id,
                m.branch_id,
                m.delta,
                m.quantity_after,
                m.kind,
                m.reason,
                m.actor_kind,
                m.actor_id,
                m.booking_id,
                m.created_at,
            )
            for m in rows
        ]
