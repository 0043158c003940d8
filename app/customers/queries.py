"""Reading customers: the searchable list (keyset pages by name) and one customer with their
booking history, no-shows and lifetime value.

Lifetime value comes from the ledger, never from booking prices: what moved into the
providers' clearing accounts for this customer's bookings when they paid (entries with reason
`payment`) less what moved out when they were refunded (reason `refund`, a reversed refund
counting back), per currency. Fees, disputes and payouts are not the customer's doing and are
left out. Bookings are read by SQL: the bookings domain depends on this one, not the reverse.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.customers.models import Customer
from app.db import set_tenant
from app.errors import NotFound
from app.ledger import chart
from app.ledger.reports import REFUND_REASON
from app.money import Money
from app.paging import DEFAULT_LIMIT, Key, Keyset, Page
from app.validation import field_error

PAYMENT_REASON = "payment"
"""The reason app.payments posts a capture under (Dr clearing:<provider> / Cr receivable)."""
HISTORY_LIMIT = 200
MAX_QUERY = 100

CUSTOMER_ORDER = Keyset("customers", Key(Customer.name_key, str), Key(Customer.id, uuid.UUID))


@dataclass(frozen=True, slots=True)
class CustomerView:
    id: uuid.UUID
    name: str
    email: str | None
    phone: str | None
    locale: str
    created_at: datetime
    bookings_count: int = 0
    last_booking_at: datetime | None = None

    @classmethod
    def of(cls, row: Customer, counts: tuple[int, datetime | None] = (0, None)) -> CustomerView:
        return cls(row.id, row.name, row.email, row.phone, row.locale, row.created_at, *counts)


@dataclass(frozen=True, slots=True)
class HistoryLine:
    id: uuid.UUID
    start: datetime
    end: datetime
    status: str
    service_id: uuid.UUID
    resource_id: uuid.UUID
    total: Money


@dataclass(frozen=True, slots=True)
class LifetimeValue:
    currency: str
    paid_minor: int
    refunded_minor: int

    @property
    def net(self) -> Money:
        return Money(self.paid_minor - self.refunded_minor, self.currency)


@dataclass(frozen=True, slots=True)
class CustomerDetail:
    customer: CustomerView
    history: list[HistoryLine]
    """The newest HISTORY_LIMIT bookings, newest first; `customer.bookings_count` counts all."""
    no_shows: int
    lifetime_value: list[LifetimeValue]
    """One row per currency the customer paid in; empty when they never paid."""


def search_terms(q: str | None) -> tuple[str, str] | None:
    """(name or email text, phone digits) to look for; None for an empty query."""
    if q is None or not q.strip():
        return None
    if len(q) > MAX_QUERY:
        raise field_error("q", f"must be at most {MAX_QUERY} characters")
    words = " ".join(q.split()).lower()
    digits = "".join(ch for ch in q if ch.isdigit())
    return words, digits


async def list_customers(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    q: str | None = None,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> Page[CustomerView]:
    """Customers by name, those whose name, email or phone contains `q` (case-insensitive;
    the digits of `q` against the phone's digits). Own read transaction."""
    query = select(Customer).where(Customer.tenant_id == tenant_id)
    terms = search_terms(q)
    if terms is not None:
        words, digits = terms
        matches = [
            Customer.name_key.contains(words, autoescape=True),
            Customer.email_key.contains(words, autoescape=True),
        ]
        if digits:
            matches.append(Customer.phone_key.contains(digits, autoescape=True))
        query = query.where(or_(*matches))
    async with session.begin():
        await set_tenant(session, tenant_id)
        page = await CUSTOMER_ORDER.fetch(session, query, cursor, limit)
        counts = await _booking_counts(session, tenant_id, [c.id for c in page.items])
    return Page([CustomerView.of(c, counts.get(c.id, (0, None))) for c in page.items], page.next)


async def _booking_counts(
    session: AsyncSession, tenant_id: uuid.UUID, ids: list[uuid.UUID]
) -> dict[uuid.UUID, tuple[int, datetime | None]]:
    if not ids:
        return {}
    rows = await session.execute(
        text(
            "SELECT customer_id, count(*), max(starts_at) FROM bookings "
            "WHERE tenant_id = :t AND customer_id = ANY(:ids) GROUP BY customer_id"
        ),
        {"t": tenant_id, "ids": ids},
    )
    return {row[0]: (int(row[1]), row[2]) for row in rows}


_HISTORY = text(
    """
    SELECT id, starts_at, ends_at, status, service_id, resource_id, total_minor, currency
      FROM bookings WHERE tenant_id = :t AND customer_id = :c
     ORDER BY starts_at DESC, id LIMIT :limit
    """
)
_COUNTS = text(
    """
    SELECT count(*), count(*) FILTER (WHERE status = 'no_show'), max(starts_at)
      FROM bookings WHERE tenant_id = :t AND customer_id = :c
    """
)
_LIFETIME_VALUE = text(
    f"""
    SELECT p.currency,
           coalesce(sum(p.amount_minor) FILTER (WHERE NOT is_refund), 0) AS paid,
           coalesce(-sum(p.amount_minor) FILTER (WHERE is_refund), 0) AS refunded
      FROM (
        SELECT e.tenant_id, e.id,
               (e.reason = :refund OR r.reason IS NOT DISTINCT FROM :refund) AS is_refund
          FROM journal_entries e
          JOIN bookings b ON b.tenant_id = e.tenant_id AND b.id = e.booking_id
          LEFT JOIN journal_entries r ON r.tenant_id = e.tenant_id AND r.id = e.reverses_entry_id
         WHERE e.tenant_id = :t AND b.customer_id = :c
           AND (e.reason IN (:payment, :refund) OR r.reason IN (:payment, :refund))
      ) e
      JOIN postings p ON p.tenant_id = e.tenant_id AND p.entry_id = e.id
      JOIN ledger_accounts a ON a.tenant_id = p.tenant_id AND a.id = p.account_id
     WHERE a.code LIKE '{chart.CLEARING_ROOT}:%'
     GROUP BY p.currency ORDER BY p.currency
    """
)


async def get_customer(
    session: AsyncSession, tenant_id: uuid.UUID, customer_id: uuid.UUID
) -> CustomerDetail:
    """One customer of this business (NotFound otherwise, another business's included), in
    one read transaction so the history and the ledger agree."""
    async with session.begin():
        await set_tenant(session, tenant_id)
        row = await session.scalar(
            select(Customer).where(Customer.tenant_id == tenant_id, Customer.id == customer_id)
        )
        if row is None:
            raise NotFound("Customer not found", entity="customer", id=str(customer_id))
        params = {"t": tenant_id, "c": customer_id}
        total, no_shows, last = (await session.execute(_COUNTS, params)).one()
        history = [
            HistoryLine(r[0], r[1], r[2], r[3], r[4], r[5], Money(int(r[6]), str(r[7]).strip()))
            for r in await session.execute(_HISTORY, {**params, "limit": HISTORY_LIMIT})
        ]
        value = [
            LifetimeValue(str(r[0]).strip(), int(r[1]), int(r[2]))
            for r in await session.execute(
                _LIFETIME_VALUE, {**params, "payment": PAYMENT_REASON, "refund": REFUND_REASON}
            )
        ]
    view = CustomerView.of(row, (int(total), last))
    return CustomerDetail(view, history, int(no_shows), value)
