"""`GET /api/v1/customers` and `GET /api/v1/customers/{id}`: the business's customers, read
by every role that reads bookings (a v1.1 addition: the list is an object with `next`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, Router, get
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from app import paging
from app.customers import queries
from app.edge.http import principal


class CustomerOut(msgspec.Struct):
    id: uuid.UUID
    name: str
    email: str | None
    phone: str | None
    locale: str
    created_at: datetime
    bookings_count: int
    last_booking_at: datetime | None

    @classmethod
    def of(cls, view: queries.CustomerView) -> CustomerOut:
        return cls(
            id=view.id,
            name=view.name,
            email=view.email,
            phone=view.phone,
            locale=view.locale,
            created_at=view.created_at,
            bookings_count=view.bookings_count,
            last_booking_at=view.last_booking_at,
        )


class CustomerPageOut(msgspec.Struct):
    items: list[CustomerOut]
    next: str | None
    """Pass as `cursor` for the next page; null on the last page."""


class MoneyOut(msgspec.Struct):
    amount_minor: int
    currency: str


class HistoryOut(msgspec.Struct):
    id: uuid.UUID
    start: datetime
    end: datetime
    status: str
    service_id: uuid.UUID
    resource_id: uuid.UUID
    total: MoneyOut
    """The booking's price snapshot; what was paid is in `lifetime_value`, from the ledger."""


class LifetimeValueOut(msgspec.Struct):
    currency: str
    paid_minor: int
    refunded_minor: int
    net_minor: int


class CustomerDetailOut(msgspec.Struct):
    customer: CustomerOut
    no_shows: int
    lifetime_value: list[LifetimeValueOut]
    """Per currency, from the ledger: captured payments less refunds. Empty if never paid."""
    bookings: list[HistoryOut]
    """The newest 200 bookings, newest first (`customer.bookings_count` counts them all)."""

    @classmethod
    def of(cls, detail: queries.CustomerDetail) -> CustomerDetailOut:
        return cls(
            customer=CustomerOut.of(detail.customer),
            no_shows=detail.no_shows,
            lifetime_value=[
                LifetimeValueOut(v.currency, v.paid_minor, v.refunded_minor, v.net.amount_minor)
                for v in detail.lifetime_value
            ],
            bookings=[
                HistoryOut(
                    id=h.id,
                    start=h.start,
                    end=h.end,
                    status=h.status,
                    service_id=h.service_id,
                    resource_id=h.resource_id,
                    total=MoneyOut(h.total.amount_minor, h.total.currency),
                )
                for h in detail.history
            ],
        )


@get("/customers")
async def list_customers(
    request: Request[Any, Any, Any],
    session: AsyncSession,
    q: Annotated[str | None, Parameter(max_length=queries.MAX_QUERY)] = None,
    limit: Annotated[int, Parameter(ge=1)] = paging.DEFAULT_LIMIT,
    cursor: str | None = None,
) -> CustomerPageOut:
    """Customers by name. `q` keeps those whose name or email contains it (any case) or whose
    phone contains its digits. A page holds `limit` rows (default 100, most 500); `next` is
    the cursor of the next page, null on the last."""
    page = await queries.list_customers(
        session, principal(request).tenant_id, q=q, cursor=cursor, limit=limit
    )
    return CustomerPageOut([CustomerOut.of(c) for c in page.items], page.next)


@get("/customers/{customer_id:uuid}")
async def get_customer(
    request: Request[Any, Any, Any], customer_id: uuid.UUID, session: AsyncSession
) -> CustomerDetailOut:
    """One customer with their booking history, no-shows and lifetime value."""
    detail = await queries.get_customer(session, principal(request).tenant_id, customer_id)
    return CustomerDetailOut.of(detail)


def router() -> Router:
    return Router(path="/api/v1", tags=["customers"], route_handlers=[list_customers, get_customer])
