"""Providers' captures of payments, applied in two round trips (the webhook applier's hot
path): the same effect as checkout.apply_payment_succeeded followed by issue_invoice, for the
common case, with every statement sent through psycopg in pipeline mode (app.db.driver).
Several captures of one business go in one transaction (apply_captures, a group the applier
formed): one commit, the invoice counter taken once, for all of them.

1. lock the inbox rows and find each payment's business; with them, for the business the
   events name (a third round trip for a single event that names none), set the tenant, lock
   the bookings (sorted) and then the payments (sorted: app/bookings/locks.py's order), and
   read what each capture needs: the ledger accounts, and what the invoice states. Under
   row-level security a wrong name reads and locks nothing, and the event goes the general way;
2. per capture: capture the payment and confirm its bookings, post the entry (opening a
   missing account first), insert the invoice (numbered at commit, migration 0021); then
   stage the outbox rows and the audit rows of all of them, mark the inbox rows done, and
   commit.

Only a capture whose locked rows say it is plain - the payment open, for this amount and
currency and this provider; every booking it pays for still waiting for it and paid by no
other payment of the group; no payable account and no invoice there yet - is written. Any
other is left (None) for the general way (checkout.py decides, and refunds a booking no
longer held, rejects a wrong amount, finds it already captured, ...): a single event in the
same transaction, an event of a group in a transaction of its own after the group's. A
write refused by a constraint raises CaptureDeclined: the caller rolls back and applies each
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

# The inbox rows, in id order, each with the business of the payment its event names.
_LOCK_INBOX = (
    "SELECT i.id, i.status, payment_tenant(x.p) AS tenant_id FROM unnest(CAST(%(ids)s AS "
    "uuid[]), CAST(%(ps)s AS uuid[])) AS x(id, p) JOIN inbox i ON i.id = x.id "
    "ORDER BY i.id FOR UPDATE OF i"
)
# lock_for_payment for several payments in one statement: every booking each payment pays for
# (its series unless paid at the venue), all sorted by id, then the payments sorted by id.
_LOCK_BOOKINGS = (
    "WITH pay AS (SELECT p.id AS payment_id, p.booking_id, p.provider, a.series_id "
    "FROM payments p JOIN bookings a ON a.tenant_id = p.tenant_id AND a.id = p.booking_id "
    "WHERE p.tenant_id = %(t)s AND p.id = ANY(%(ps)s)) "
    "SELECT pay.payment_id, b.id, b.status, b.version, b.starts_at, b.ends_at, b.resource_id, "
    "b.service_id, b.branch_id, b.party_size, b.total_minor, b.currency FROM bookings b "
    "JOIN pay ON b.id = pay.booking_id OR (b.series_id = pay.series_id "
    "AND pay.provider <> ALL(%(venue)s)) "
    "WHERE b.tenant_id = %(t)s ORDER BY b.id FOR UPDATE OF b"
)
_LOCK_PAYMENTS = (
    "SELECT id, booking_id, provider, status, amount_minor, currency FROM payments "
    "WHERE tenant_id = %(t)s AND id = ANY(%(ps)s) ORDER BY id FOR UPDATE"
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
# payment_events._finish for captures processed.
_FINISH = (
    "UPDATE inbox SET status = 'done', processed_at = statement_timestamp(), "
    "outcome = 'processed', owner_tenant_id = %(t)s, locked_until = NULL, last_error = NULL "
    "WHERE id = ANY(%(ids)s)"
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


def _columns(row: Any) -> dict[str, Any]:
    """A locked booking's columns, without the payment the batch read it for."""
    columns: dict[str, Any] = row._asdict()
    columns.pop("payment_id", None)
    return columns


def fits(event: events.ProviderEvent, bound: uuid.UUID | None) -> bool:
    """Events this path may take: a capture naming our payment, at the platform's endpoint."""
    return event.action == events.SUCCEEDED and event.payment_id is not None and bound is None


@dataclass(frozen=True, slots=True)
class Capture:
    """One stored capture event to apply: its inbox row, the event, and the outbox events the
    capture stages after the bookings' own."""

    inbox_id: uuid.UUID
    event: events.ProviderEvent
    staged_after: list[Staged]

    @property
    def payment_id(self) -> uuid.UUID:
        assert self.event.payment_id is not None
        return self.event.payment_id

    @property
    def amount(self) -> Money:
        return Money(self.event.amount_minor or 0, self.event.currency or "")

    @property
    def lines(self) -> list[Any]:
        return chart.captured(self.event.provider, self.amount)


@dataclass(slots=True)
class _Planned:
    """One capture's own statements, and what it adds to the shared outbox and audit rows."""

    statements: list[tuple[str, dict[str, Any]]]
    published: list[Staged]
    records: list[audit.Record]


async def apply_capture(session: AsyncSession, capture: Capture, now: datetime) -> str | None:
    """In the caller's transaction (nothing run in it yet): "processed" once applied and
    committed, "duplicate" when the inbox row was already done, None when the event is to be
    applied the general way (nothing written; the inbox row locked). An event that names its
    business takes two round trips (apply_captures); one that names none, three."""
    hint = capture.event.tenant_id
    if hint is not None:
        return (await apply_captures(session, hint, [capture], now))[capture.inbox_id]
    connection = await session.connection()
    async with driver(connection, _LOCK_INBOX) as raw:
        row = await (await _send_inbox_lock(raw, [capture])).fetchone()
    if row is None or row.status != "pending":
        return "duplicate"
    if row.tenant_id is None:
        return None
    return (await _capture_locked(session, row.tenant_id, [capture], now))[capture.inbox_id]


async def apply_captures(
    session: AsyncSession, tenant_id: uuid.UUID, captures: list[Capture], now: datetime
) -> dict[uuid.UUID, str | None]:
    """Several captures whose events name the business `tenant_id` (at most one per payment),
    in one transaction of the caller's (nothing run in it yet), committed here: by inbox id,
    "processed" (applied), "duplicate" (the row was done already) or None (not plain, or its
    payment is not that business's: nothing written for it; apply it the general way, in a
    transaction of its own, after this one). Every inbox row is locked first, in id order, then
    every booking the payments pay for, in id order, then the payments, in id order: the locks
    one capture takes (app/bookings/locks.py's order), for all of them at once. A write refused
    by a constraint raises CaptureDeclined: everything is rolled back."""
    return await _capture_locked(session, tenant_id, captures, now, lock_inbox=True)


async def _capture_locked(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    captures: list[Capture],
    now: datetime,
    *,
    lock_inbox: bool = False,
) -> dict[uuid.UUID, str | None]:
    connection = await session.connection()
    outcomes: dict[uuid.UUID, str | None] = {c.inbox_id: None for c in captures}
    async with driver(connection, _LOCK_BOOKINGS) as raw:
        inbox_rows = await _send_inbox_lock(raw, captures) if lock_inbox else None
        reads = await _send_reads(raw, tenant_id, captures)
        candidates = captures
        if inbox_rows is not None:
            locked = {row.id: row for row in await inbox_rows.fetchall()}
            candidates = []
            for capture in captures:
                row = locked.get(capture.inbox_id)
                if row is None or row.status != "pending":
                    outcomes[capture.inbox_id] = "duplicate"
                elif row.tenant_id == tenant_id:
                    candidates.append(capture)
        rows = {name: await cursor.fetchall() for name, cursor in reads.items()}
    planned: list[tuple[Capture, _Planned]] = []
    for capture in candidates:
        try:
            plan = _plan(tenant_id, capture, _rows_of(capture.payment_id, rows), now)
        except DomainError:
            plan = None  # the general way raises it where it turns it into a rejection
        if plan is not None:
            planned.append((capture, plan))
    if not planned:
        return outcomes  # nothing written, nothing committed: the caller's transaction goes on
    try:
        async with driver(connection, _CAPTURE) as raw:
            cursor = raw.cursor()
            for sql, params in _statements(tenant_id, planned):
                await cursor.execute(sql, params)
            await raw.commit()
    except IntegrityError as error:
        raise CaptureDeclined(str(error.orig)) from error
    outcomes.update({capture.inbox_id: "processed" for capture, _ in planned})
    return outcomes


async def _send_inbox_lock(raw: Any, captures: list[Capture]) -> Any:
    """Send the inbox rows' lock; the cursor returned: each row's status and the business of
    the payment its event names."""
    cursor = raw.cursor(row_factory=namedtuple_row)
    await cursor.execute(
        _LOCK_INBOX,
        {"ids": [c.inbox_id for c in captures], "ps": [c.payment_id for c in captures]},
    )
    return cursor


async def _send_reads(raw: Any, tenant_id: uuid.UUID, captures: list[Capture]) -> dict[str, Any]:
    """Set the tenant, lock the bookings and the payments, read what the captures need: sent
    in the pipeline, the cursors returned to fetch from (issuing's reads keyed by payment)."""
    # Its text names the tenant: never worth a prepared statement of its own.
    await raw.execute(set_tenant_sql(tenant_id), prepare=False)
    await raw.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_MS}ms'")
    payments = [c.payment_id for c in captures]
    keys = {"t": tenant_id, "ps": payments}
    lines = [line for c in captures for line in c.lines]
    reads: dict[str, tuple[str, dict[str, Any]]] = {
        "bookings": (_LOCK_BOOKINGS, {**keys, "venue": list(PAY_AT_VENUE)}),
        "payments": (_LOCK_PAYMENTS, keys),
        "accounts": (ledger.ACCOUNTS_SQL, ledger.account_params(tenant_id, lines)),
    }
    for payment_id in payments:
        for name, sql in issuing.READS.items():
            reads[f"{name}:{payment_id}"] = (sql, {"t": tenant_id, "p": payment_id})
    cursors = {}
    for name, (sql, params) in reads.items():
        cursors[name] = raw.cursor(row_factory=namedtuple_row)
        await cursors[name].execute(sql, params)
    return cursors


def _rows_of(payment_id: uuid.UUID, rows: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """What one capture reads, out of what the batch read. A booking two payments of the batch
    would confirm is left to the general way (no payment rows: not plain)."""
    bookings = [b for b in rows["bookings"] if b.payment_id == payment_id]
    ids = {b.id for b in bookings}
    shared = any(b.id in ids and b.payment_id != payment_id for b in rows["bookings"])
    suffix = f":{payment_id}"
    return {
        "bookings": bookings,
        "payment": [] if shared else [p for p in rows["payments"] if p.id == payment_id],
        "accounts": rows["accounts"],
        **{name: rows[name + suffix] for name in issuing.READS},
    }


def _statements(
    tenant_id: uuid.UUID, planned: list[tuple[Capture, _Planned]]
) -> list[tuple[str, dict[str, Any]]]:
    """Each capture's own statements, then the outbox and audit rows of all of them, then the
    inbox rows marked done."""
    statements = [statement for _, plan in planned for statement in plan.statements]
    published = [event for _, plan in planned for event in plan.published]
    records = [record for _, plan in planned for record in plan.records]
    statements.append(stage_statement(tenant_id, published))
    statements.append(audit.insert_statement(tenant_id, records))
    statements.append((_FINISH, {"t": tenant_id, "ids": [c.inbox_id for c, _ in planned]}))
    return statements


def _plan(
    tenant_id: uuid.UUID,
    capture: Capture,
    rows: dict[str, list[Any]],
    now: datetime,
) -> _Planned | None:
    """One capture's writes, or None when it is not plain (see the module's docstring)."""
    event, amount = capture.event, capture.amount
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
    entry = ledger.entry_statements(
        tenant_id,
        accounts,
        idempotency_key=f"payment:{payment.id}:captured",
        reason="payment",
        lines=capture.lines,
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
        _Confirmed(**{**_columns(b), "status": CONFIRMED, "version": b.version + 1})
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
    published.extend(capture.staged_after)
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
    params = {
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
    statements = [(_CAPTURE, params), *entry, *invoice.statements]
    return _Planned(statements, published, records)
