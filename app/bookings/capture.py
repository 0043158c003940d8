"""A provider's capture of a payment, applied in two round trips (the webhook applier's hot
path): the same effect as checkout.apply_payment_succeeded followed by issue_invoice, for the
common case, with every statement sent through psycopg in pipeline mode (app.db.driver).

1. lock the inbox row and find the payment's business; with them, for the business the event
   names (a third round trip when it names none), set the tenant, lock the bookings (sorted)
   and then the payment (app/bookings/locks.py's order), and read what the capture needs: the
   ledger accounts, and what the invoice states. Under row-level security a wrong name reads
   and locks nothing, and the event goes the general way;
2. capture the payment, post the entry, confirm the bookings, stage their events, insert the
   invoice (numbered at commit, migration 0021) and the audit rows, mark the inbox row done,
   and commit.

Only when every locked row says the capture is plain - the payment open, for this amount and
currency and this provider; every booking it pays for still waiting for it; the accounts and no
invoice there yet - does it write anything. Otherwise it returns None before writing, and the
caller applies the event the general way in the same transaction (checkout.py decides, and
refunds a booking no longer held, rejects a wrong amount, finds it already captured, ...).
A write refused by a constraint raises CaptureDeclined: the caller rolls back and applies the
event the general way.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.rows import namedtuple_row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import trail as audit
from app.bookings import events as booking_events
from app.bookings.checkout import LOCK_TIMEOUT_MS, PROVIDER
from app.bookings.models import CONFIRMED, PENDING_PAYMENT, snapshot_of
from app.bookings.payment_effects import event_payload
from app.db import driver, set_tenant_sql
from app.errors import DomainError
from app.invoices import issuing
from app.ledger import chart
from app.ledger import service as ledger
from app.money import Money
from app.outbox.service import stage_statement
from app.payments import provider_events as events
from app.payments.models import CAPTURED, SUCCEEDED
from app.payments.provider_names import PAY_AT_VENUE

_LOCK_INBOX = (
    "SELECT status, payment_tenant(%(p)s) AS tenant_id FROM inbox WHERE id = %(id)s FOR UPDATE"
)
# lock_for_payment in one statement: every booking the payment pays for (its series unless
# paid at the venue), sorted, then the payment.
_LOCK_BOOKINGS = (
    "WITH pay AS (SELECT p.booking_id, p.provider, a.series_id FROM payments p JOIN bookings a "
    "ON a.tenant_id = p.tenant_id AND a.id = p.booking_id WHERE p.tenant_id = %(t)s "
    "AND p.id = %(p)s) "
    "SELECT b.id, b.status, b.version, b.starts_at, b.ends_at, b.resource_id, b.service_id, "
    "b.branch_id, b.party_size, b.total_minor, b.currency FROM bookings b "
    "WHERE b.tenant_id = %(t)s AND (b.id = (SELECT booking_id FROM pay) "
    "OR b.series_id = (SELECT series_id FROM pay WHERE provider <> ALL(%(venue)s))) "
    "ORDER BY b.id FOR UPDATE OF b"
)
_LOCK_PAYMENT = (
    "SELECT id, booking_id, provider, status, amount_minor, currency FROM payments "
    "WHERE tenant_id = %(t)s AND id = %(p)s FOR UPDATE"
)
# The payment captured and its bookings confirmed, in one statement.
_CAPTURE = (
    "WITH captured AS (UPDATE payments SET status = %(status)s, captured_minor = %(amount)s, "
    "fee_minor = 0, provider_ref = coalesce(%(ref)s, provider_ref), "
    "provider_charge_ref = coalesce(%(charge)s, provider_charge_ref), updated_at = %(now)s "
    "WHERE tenant_id = %(t)s AND id = %(p)s RETURNING id) "
    "UPDATE bookings SET status = %(confirmed)s, updated_at = %(now)s, version = version + 1 "
    "WHERE tenant_id = %(t)s AND id = ANY(%(ids)s)"
)
# payment_events._finish for a capture processed.
_FINISH = (
    "UPDATE inbox SET status = 'done', processed_at = statement_timestamp(), "
    "outcome = 'processed', owner_tenant_id = %(t)s, locked_until = NULL, last_error = NULL "
    "WHERE id = %(id)s"
)


Staged = tuple[str, str, uuid.UUID, dict[str, Any]]
"""An outbox event: topic, aggregate type, aggregate id, payload."""


class CaptureDeclined(Exception):
    """A write of the capture was refused (rolled back): apply the event the general way."""


@dataclass(frozen=True, slots=True)
class _Confirmed:
    """A booking as the confirmation leaves it: what its event and audit row state."""

    id: uuid.UUID
    status: str
    version: int
    starts_at: datetime
    ends_at: datetime
    resource_id: uuid.UUID
    service_id: uuid.UUID
    branch_id: uuid.UUID
    party_size: int
    total_minor: int
    currency: str

    @property
    def start(self) -> datetime:
        return self.starts_at

    @property
    def end(self) -> datetime:
        return self.ends_at


def fits(event: events.ProviderEvent, bound: uuid.UUID | None) -> bool:
    """Events this path may take: a capture naming our payment, at the platform's endpoint."""
    return event.action == events.SUCCEEDED and event.payment_id is not None and bound is None


async def apply_capture(
    session: AsyncSession,
    inbox_id: uuid.UUID,
    event: events.ProviderEvent,
    now: datetime,
    *,
    staged_after: list[Staged],
) -> str | None:
    """In the caller's transaction (nothing run in it yet): "processed" once applied and
    committed, "duplicate" when the inbox row was already done, None when the event is to be
    applied the general way (nothing written; the inbox row locked). `staged_after`: outbox
    events the capture stages after the bookings' own."""
    assert event.payment_id is not None
    connection = await session.connection()
    amount = Money(event.amount_minor or 0, event.currency or "")
    lines = chart.captured(event.provider, amount)
    hint = event.tenant_id  # the business the event names: its reads go with the inbox lock
    async with driver(connection, _LOCK_INBOX) as raw:
        found = raw.cursor()
        await found.execute(_LOCK_INBOX, {"p": event.payment_id, "id": inbox_id})
        cursors = await _send_reads(raw, hint, event.payment_id, lines) if hint else {}
        row = await found.fetchone()
        rows = {name: await cursor.fetchall() for name, cursor in cursors.items()}
    if row is None or row[0] != "pending":
        return "duplicate"
    tenant_id = row[1]
    if tenant_id is None or hint not in (None, tenant_id):
        return None
    if not hint:
        async with driver(connection, _LOCK_BOOKINGS) as raw:
            cursors = await _send_reads(raw, tenant_id, event.payment_id, lines)
            rows = {name: await cursor.fetchall() for name, cursor in cursors.items()}
    try:
        statements = _plan(tenant_id, event, amount, lines, rows, now, staged_after)
    except DomainError:
        statements = None  # the general way raises it where it turns it into a rejection
    if statements is None:
        return None
    statements.append((_FINISH, {"t": tenant_id, "id": inbox_id}))
    try:
        async with driver(connection, _CAPTURE) as raw:
            cursor = raw.cursor()
            for sql, params in statements:
                await cursor.execute(sql, params)
            await raw.commit()
    except IntegrityError as error:
        raise CaptureDeclined(str(error.orig)) from error
    return "processed"


async def _send_reads(
    raw: Any, tenant_id: uuid.UUID, payment_id: uuid.UUID, lines: list[Any]
) -> dict[str, Any]:
    """Set the tenant, lock the bookings and the payment, read what the capture needs: sent
    in the pipeline, the cursors returned to fetch from."""
    # Its text names the tenant: never worth a prepared statement of its own.
    await raw.execute(set_tenant_sql(tenant_id), prepare=False)
    await raw.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_MS}ms'")
    keys = {"t": tenant_id, "p": payment_id}
    reads = {
        "bookings": (_LOCK_BOOKINGS, {**keys, "venue": list(PAY_AT_VENUE)}),
        "payment": (_LOCK_PAYMENT, keys),
        "accounts": (ledger.ACCOUNTS_SQL, ledger.account_params(tenant_id, lines)),
        **{name: (sql, keys) for name, sql in issuing.READS.items()},
    }
    cursors = {}
    for name, (sql, params) in reads.items():
        cursors[name] = raw.cursor(row_factory=namedtuple_row)
        await cursors[name].execute(sql, params)
    return cursors


def _plan(
    tenant_id: uuid.UUID,
    event: events.ProviderEvent,
    amount: Money,
    lines: list[Any],
    rows: dict[str, list[Any]],
    now: datetime,
    staged_after: list[Staged],
) -> list[tuple[str, dict[str, Any]]] | None:
    """The capture's statements, or None when it is not plain (see the module's docstring)."""
    payment = rows["payment"][0] if rows["payment"] else None
    bookings = rows["bookings"]
    if (
        payment is None
        or not bookings
        or payment.provider != event.provider
        or payment.status in CAPTURED
        or (payment.amount_minor, payment.currency) != (amount.amount_minor, amount.currency)
        or any(b.status != PENDING_PAYMENT for b in bookings)
    ):
        return None
    accounts = {(r.code, r.currency.strip()): (r.id, r.type) for r in rows["accounts"]}
    entry = ledger.entry_statement(
        tenant_id,
        accounts,
        idempotency_key=f"payment:{payment.id}:captured",
        reason="payment",
        lines=lines,
        occurred_at=now,
        booking_id=payment.booking_id,
        payment_id=payment.id,
    )
    invoice = issuing.plan_invoice(
        tenant_id, payment.id, payment.booking_id, amount.amount_minor, amount.currency, rows, now
    )
    if entry is None or invoice is None:
        return None
    confirmed = [
        _Confirmed(**{**b._asdict(), "status": CONFIRMED, "version": b.version + 1})
        for b in bookings
    ]
    published: list[Staged] = [
        (
            booking_events.BOOKING_CONFIRMED,
            "booking",
            c.id,
            event_payload(c, booking_events.BOOKING_CONFIRMED),
        )
        for c in confirmed
    ]
    published.extend(staged_after)
    records = [
        audit.Record(
            PROVIDER,
            booking_events.BOOKING_CONFIRMED,
            "booking",
            b.id,
            before=snapshot_of(b),
            after=snapshot_of(c),
        )
        for b, c in zip(bookings, confirmed, strict=True)
    ]
    records.append(invoice.audit)
    capture = {
        "t": tenant_id,
        "p": payment.id,
        "status": SUCCEEDED,
        "amount": amount.amount_minor,
        "ref": event.provider_ref,
        "charge": event.charge_ref,
        "now": now,
        "ids": [b.id for b in bookings],
        "confirmed": CONFIRMED,
    }
    return [
        (_CAPTURE, capture),
        (entry.sql, entry.params),
        stage_statement(tenant_id, published),
        *invoice.statements,
        audit.insert_statement(tenant_id, records),
    ]
