"""Posting to the ledger: `post()` and `reverse()` run inside the CALLER's transaction.

Every domain records money movements through `post()`, with lines built by the chart of
accounts (app/ledger/chart.py); `Line` itself lives in app/ledger/lines.py. Accounts are
created on first use.
Amounts follow the ledger's sign convention: debit > 0, credit < 0 (see app/ledger/models.py).
The same idempotency key posted twice returns the first entry and writes nothing, also when
two transactions race (the unique key makes the loser wait for the winner's commit).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, bindparam, func, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import Batch, new_id, set_tenant
from app.ledger.chart import PAYABLE_ROOT, reversal
from app.ledger.errors import (
    AccountTypeMismatch,
    EntryAlreadyReversed,
    EntryNotFound,
    LedgerKeyReused,
    LedgerUsageError,
    PayableOverdrawn,
    UnbalancedEntry,
)
from app.ledger.lines import Line
from app.ledger.models import ACCOUNT_TYPES, JournalEntry, LedgerAccount, PostingRow
from app.money import Money

# Core tables, not ORM entities: post() runs on every money movement, and Core statements
# skip the ORM's bulk-persistence and identity-map work (several times faster here).
_ENTRIES = cast(Table, JournalEntry.__table__)
_POSTINGS = cast(Table, PostingRow.__table__)
_ACCOUNTS = cast(Table, LedgerAccount.__table__)

# Built once: on the checkout's hot path a statement object rebuilt per call costs more CPU
# than its round trip; these compile once and are served from SQLAlchemy's statement cache.
_INSERT_ENTRY = (
    insert(_ENTRIES)
    .on_conflict_do_nothing(index_elements=["tenant_id", "idempotency_key"])
    .returning(_ENTRIES.c.occurred_at, _ENTRIES.c.created_at)
)
_INSERT_POSTINGS = insert(_POSTINGS)
_SELECT_ACCOUNTS = select(
    _ACCOUNTS.c.code, _ACCOUNTS.c.currency, _ACCOUNTS.c.id, _ACCOUNTS.c.type
).where(
    _ACCOUNTS.c.tenant_id == bindparam("tenant_id"),
    tuple_(_ACCOUNTS.c.code, _ACCOUNTS.c.currency).in_(bindparam("keys", expanding=True)),
)


@dataclass(frozen=True, slots=True)
class Posting:
    account_code: str
    account_type: str
    amount: Money


@dataclass(frozen=True, slots=True)
class Entry:
    id: uuid.UUID
    tenant_id: uuid.UUID
    idempotency_key: str
    reason: str
    occurred_at: datetime
    booking_id: uuid.UUID | None
    payment_id: uuid.UUID | None
    reverses_entry_id: uuid.UUID | None
    dimensions: dict[str, Any]
    postings: tuple[Posting, ...]
    created_at: datetime
    created: bool = field(default=True, compare=False)
    """False when the idempotency key had already been posted and nothing was written."""


async def post(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    idempotency_key: str,
    reason: str,
    lines: Sequence[Line],
    occurred_at: datetime,
    booking_id: uuid.UUID | None = None,
    payment_id: uuid.UUID | None = None,
    dimensions: dict[str, Any] | None = None,
) -> Entry:
    """Write one balanced entry in the caller's transaction (tenant already set).

    Zero-amount lines are dropped. Raises UnbalancedEntry, AccountTypeMismatch,
    LedgerKeyReused (same key, different postings) or PayableOverdrawn.
    """
    return await _post(
        session,
        tenant_id,
        idempotency_key=idempotency_key,
        reason=reason,
        lines=lines,
        occurred_at=occurred_at,
        booking_id=booking_id,
        payment_id=payment_id,
        dimensions=dimensions,
        reverses_entry_id=None,
    )


async def reverse(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    entry_id: uuid.UUID,
    idempotency_key: str,
    reason: str,
    *,
    occurred_at: datetime | None = None,
) -> Entry:
    """Post the mirror image of an entry (same references and dimensions), at most once.

    `occurred_at` defaults to the transaction's timestamp.
    """
    _require_transaction(session)
    original = await get_entry(session, tenant_id, entry_id)
    lines = reversal(original.postings)
    return await _post(
        session,
        tenant_id,
        idempotency_key=idempotency_key,
        reason=reason,
        lines=lines,
        occurred_at=occurred_at,
        booking_id=original.booking_id,
        payment_id=original.payment_id,
        dimensions=original.dimensions,
        reverses_entry_id=entry_id,
    )


async def get_entry(session: AsyncSession, tenant_id: uuid.UUID, entry_id: uuid.UUID) -> Entry:
    """One entry with its postings, in the caller's transaction; raises EntryNotFound."""
    entries = await _load_entries(session, tenant_id, _ENTRIES.c.id == entry_id)
    if not entries:
        raise EntryNotFound(entry_id=entry_id)
    return entries[0]


async def find_entry_by_key(
    session: AsyncSession, tenant_id: uuid.UUID, idempotency_key: str
) -> Entry | None:
    entries = await _load_entries(session, tenant_id, _ENTRIES.c.idempotency_key == idempotency_key)
    return entries[0] if entries else None


async def list_entries(
    session: AsyncSession, tenant_id: uuid.UUID, *, start: datetime, end: datetime, limit: int = 500
) -> list[Entry]:
    """Entries with start <= occurred_at < end, oldest first (own read transaction)."""
    async with session.begin():
        await set_tenant(session, tenant_id)
        condition = (_ENTRIES.c.occurred_at >= start) & (_ENTRIES.c.occurred_at < end)
        return await _load_entries(session, tenant_id, condition, limit=limit)


async def _post(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    idempotency_key: str,
    reason: str,
    lines: Sequence[Line],
    occurred_at: datetime | None,
    booking_id: uuid.UUID | None,
    payment_id: uuid.UUID | None,
    dimensions: dict[str, Any] | None,
    reverses_entry_id: uuid.UUID | None,
) -> Entry:
    _require_transaction(session)
    checked = _checked_lines(lines)
    entry_id = new_id()
    values: dict[str, Any] = {
        "tenant_id": tenant_id,
        "id": entry_id,
        "idempotency_key": idempotency_key,
        "reason": reason,
        "occurred_at": occurred_at,
        "booking_id": booking_id,
        "payment_id": payment_id,
        "reverses_entry_id": reverses_entry_id,
        "dimensions": _jsonable(dimensions or {}),
    }
    if occurred_at is None:
        values["occurred_at"] = await session.scalar(select(func.now()))
    try:
        inserted = (await session.execute(_INSERT_ENTRY, values)).one_or_none()
    except IntegrityError as error:
        if _constraint(error) == "uq_journal_entries_reverses":
            raise EntryAlreadyReversed(entry_id=reverses_entry_id) from None
        raise
    if inserted is None:
        return await _existing(session, tenant_id, idempotency_key, checked)
    accounts = await _ensure_accounts(session, tenant_id, checked)
    rows = [
        {
            "tenant_id": tenant_id,
            "id": new_id(),
            "entry_id": entry_id,
            "account_id": accounts[(line.code, line.amount.currency)],
            "amount_minor": line.amount.amount_minor,
            "currency": line.amount.currency,
        }
        for line in checked
    ]
    # Account order is the balance-row lock order (see migration 0004); credits first.
    rows.sort(key=lambda row: (str(row["account_id"]), row["amount_minor"]))
    try:
        await session.execute(_INSERT_POSTINGS, rows)
    except IntegrityError as error:
        if _constraint(error) == "ck_balances_payable_not_negative":
            raise PayableOverdrawn(idempotency_key=idempotency_key) from None
        raise
    postings = tuple(Posting(line.code, line.type, line.amount) for line in checked)
    return Entry(
        entry_id,
        tenant_id,
        idempotency_key,
        reason,
        inserted.occurred_at,
        booking_id,
        payment_id,
        reverses_entry_id,
        values["dimensions"],
        postings,
        inserted.created_at,
    )


# The same entry as post() writes, as one statement for a caller that sends its statements
# through psycopg in pipeline mode (app.db.driver). No ON CONFLICT: a key already posted is a
# unique violation, and the caller runs its transaction again through post().
ACCOUNTS_SQL = (
    "SELECT code, currency, id, type FROM ledger_accounts WHERE tenant_id = %(t)s "
    "AND (code, currency) IN (SELECT * FROM unnest(CAST(%(codes)s AS text[]), "
    "CAST(%(currencies)s AS text[])))"
)
_ENTRY_SQL = (
    "WITH e AS (INSERT INTO journal_entries (tenant_id, id, idempotency_key, reason, "
    "occurred_at, booking_id, payment_id) VALUES (%(t)s, %(entry)s, %(key)s, %(reason)s, "
    "%(at)s, %(booking)s, %(payment)s) RETURNING id) "
    "INSERT INTO postings (tenant_id, id, entry_id, account_id, amount_minor, currency) "
    "SELECT %(t)s, p.id, e.id, p.account_id, p.amount_minor, p.currency FROM e, "
    "unnest(CAST(%(ids)s AS uuid[]), CAST(%(accounts)s AS uuid[]), "
    "CAST(%(amounts)s AS bigint[]), CAST(%(currencies)s AS text[])) "
    "WITH ORDINALITY AS p(id, account_id, amount_minor, currency, n) ORDER BY p.n"
)

AccountRows = dict[tuple[str, str], tuple[uuid.UUID, str]]


def account_params(tenant_id: uuid.UUID, lines: Sequence[Line]) -> dict[str, Any]:
    """Parameters of ACCOUNTS_SQL: the accounts `lines` post to."""
    keys = sorted({(line.code, line.amount.currency) for line in lines})
    return {"t": tenant_id, "codes": [k[0] for k in keys], "currencies": [k[1] for k in keys]}


@dataclass(frozen=True, slots=True)
class EntryStatement:
    """One entry as post() would write it: `sql` with `params`."""

    sql: str
    params: dict[str, Any]


def entry_statement(
    tenant_id: uuid.UUID,
    accounts: AccountRows,
    *,
    idempotency_key: str,
    reason: str,
    lines: Sequence[Line],
    occurred_at: datetime,
    booking_id: uuid.UUID | None = None,
    payment_id: uuid.UUID | None = None,
) -> EntryStatement | None:
    """post() as one statement, for accounts read with ACCOUNTS_SQL in the caller's
    transaction. None when an account does not exist yet (post() creates it) or is a payable
    (its balance row may refuse an overdraft, which post() turns into PayableOverdrawn).
    Raises what post() raises for the lines and the accounts' types. The statement fails with
    a unique violation when the key was posted already."""
    checked = _checked_lines(lines)
    rows: list[tuple[str, uuid.UUID, int, str]] = []
    for line in checked:
        found = accounts.get((line.code, line.amount.currency))
        if found is None or line.code.split(":", 1)[0] == PAYABLE_ROOT:
            return None
        account_id, account_type = found
        if account_type != line.type:
            raise AccountTypeMismatch(code=line.code, type=line.type, existing=account_type)
        rows.append((str(account_id), account_id, line.amount.amount_minor, line.amount.currency))
    # The order post() inserts in (the balance-row lock order).
    rows.sort(key=lambda row: (row[0], row[2]))
    params = {
        "t": tenant_id,
        "entry": new_id(),
        "key": idempotency_key,
        "reason": reason,
        "at": occurred_at,
        "booking": booking_id,
        "payment": payment_id,
        "ids": [new_id() for _ in rows],
        "accounts": [row[1] for row in rows],
        "amounts": [row[2] for row in rows],
        "currencies": [row[3] for row in rows],
    }
    return EntryStatement(_ENTRY_SQL, params)


def entry_statements(
    tenant_id: uuid.UUID,
    accounts: AccountRows,
    *,
    idempotency_key: str,
    reason: str,
    lines: Sequence[Line],
    occurred_at: datetime,
    booking_id: uuid.UUID | None = None,
    payment_id: uuid.UUID | None = None,
) -> list[tuple[str, dict[str, Any]]] | None:
    """entry_statement's one statement when every account exists; else, when none is a
    payable, post_in's two, which open the missing accounts first (a business's first entry
    of its kind, and others racing it, wait for one another on ON CONFLICT instead of
    leaving the work to post()). None: post() must write it (a payable's balance row)."""
    entry = entry_statement(
        tenant_id,
        accounts,
        idempotency_key=idempotency_key,
        reason=reason,
        lines=lines,
        occurred_at=occurred_at,
        booking_id=booking_id,
        payment_id=payment_id,
    )
    if entry is not None:
        return [(entry.sql, entry.params)]
    if any(line.code.split(":", 1)[0] == PAYABLE_ROOT for line in lines):
        return None
    batch = Batch()
    post_in(
        batch,
        tenant_id,
        idempotency_key=idempotency_key,
        reason=reason,
        lines=lines,
        occurred_at=occurred_at,
        booking_id=booking_id,
        payment_id=payment_id,
    )
    return batch.statements


# post_in's two statements. Missing accounts first (as _ensure_accounts, sorted; a concurrent
# first use is waited for by ON CONFLICT and seen by the next statement's snapshot), then the
# entry and its postings in one statement: the postings find their accounts by (code,
# currency, type) and go in account order, the balance-row lock order. An account of another
# type leaves account_id NULL: the NOT NULL constraint refuses the entry.
_ENSURE_ACCOUNTS = (
    "INSERT INTO ledger_accounts (tenant_id, id, code, currency, type, name, parent_code) "
    "SELECT %(tenant_id)s, gen_random_uuid(), v.code, v.currency, v.type, v.name, v.parent "
    "FROM unnest(CAST(%(codes)s AS text[]), CAST(%(currencies)s AS text[]), "
    "CAST(%(types)s AS text[]), CAST(%(names)s AS text[]), CAST(%(parents)s AS text[])) "
    "AS v(code, currency, type, name, parent) "
    "WHERE NOT EXISTS (SELECT 1 FROM ledger_accounts a WHERE a.tenant_id = %(tenant_id)s "
    "AND a.code = v.code AND a.currency = v.currency) "
    "ORDER BY v.code, v.currency "
    "ON CONFLICT (tenant_id, code, currency) DO NOTHING"
)
_INSERT_ENTRY_AND_POSTINGS = (
    "WITH entry AS (INSERT INTO journal_entries (tenant_id, id, idempotency_key, reason, "
    "occurred_at, booking_id, payment_id, dimensions) VALUES (%(tenant_id)s, %(entry_id)s, "
    "%(key)s, %(reason)s, %(occurred_at)s, %(booking_id)s, %(payment_id)s, "
    "CAST(%(dimensions)s AS jsonb)) RETURNING tenant_id, id) "
    "INSERT INTO postings (tenant_id, id, entry_id, account_id, amount_minor, currency) "
    "SELECT entry.tenant_id, gen_random_uuid(), entry.id, a.id, v.amount, v.currency "
    "FROM entry CROSS JOIN unnest(CAST(%(codes)s AS text[]), CAST(%(currencies)s AS text[]), "
    "CAST(%(types)s AS text[]), CAST(%(amounts)s AS bigint[])) AS v(code, currency, type, amount) "
    "LEFT JOIN ledger_accounts a ON a.tenant_id = entry.tenant_id AND a.code = v.code "
    "AND a.currency = v.currency AND a.type = v.type "
    "ORDER BY a.id, v.amount"
)


def post_in(
    batch: Batch,
    tenant_id: uuid.UUID,
    *,
    idempotency_key: str,
    reason: str,
    lines: Sequence[Line],
    occurred_at: datetime,
    booking_id: uuid.UUID | None = None,
    payment_id: uuid.UUID | None = None,
    dimensions: dict[str, Any] | None = None,
) -> uuid.UUID:
    """post(), queued in `batch` (app.db.Batch): two statements, no round trip of its own.
    For a key naming rows this transaction creates (a new booking's): a key already posted
    is an error here (unique violation), not the first entry handed back. Returns the
    entry's id."""
    checked = _checked_lines(lines)
    types: dict[tuple[str, str], str] = {}
    for line in checked:
        key = (line.code, line.amount.currency)
        if types.setdefault(key, line.type) != line.type:
            raise AccountTypeMismatch(code=line.code, type=line.type)
    entry_id = new_id()
    codes = [line.code for line in checked]
    currencies = [line.amount.currency for line in checked]
    kinds = [line.type for line in checked]
    batch.add(
        _ENSURE_ACCOUNTS,
        {
            "tenant_id": tenant_id,
            "codes": codes,
            "currencies": currencies,
            "types": kinds,
            "names": [line.name or line.code for line in checked],
            "parents": [
                line.code.rsplit(":", 1)[0] if ":" in line.code else None for line in checked
            ],
        },
    )
    batch.add(
        _INSERT_ENTRY_AND_POSTINGS,
        {
            "tenant_id": tenant_id,
            "entry_id": entry_id,
            "key": idempotency_key,
            "reason": reason,
            "occurred_at": occurred_at,
            "booking_id": booking_id,
            "payment_id": payment_id,
            "dimensions": json.dumps(_jsonable(dimensions or {})),
            "codes": codes,
            "currencies": currencies,
            "types": kinds,
            "amounts": [line.amount.amount_minor for line in checked],
        },
    )
    return entry_id


def _require_transaction(session: AsyncSession) -> None:
    if not session.in_transaction():
        raise LedgerUsageError("ledger.post() must run inside the caller's transaction")


def _checked_lines(lines: Sequence[Line]) -> list[Line]:
    checked = [line for line in lines if line.amount.amount_minor != 0]
    for line in checked:
        if not 1 <= len(line.code) <= 200 or line.code != line.code.strip():
            raise UnbalancedEntry(f"invalid account code {line.code!r}", code=line.code)
        if line.type not in ACCOUNT_TYPES:
            raise UnbalancedEntry(f"invalid account type {line.type!r}", code=line.code)
    if len(checked) < 2:
        raise UnbalancedEntry("an entry needs at least two non-zero lines")
    totals: dict[str, int] = {}
    for line in checked:
        currency = line.amount.currency
        totals[currency] = totals.get(currency, 0) + line.amount.amount_minor
    unbalanced = {currency: total for currency, total in totals.items() if total != 0}
    if unbalanced:
        raise UnbalancedEntry(f"lines do not sum to zero: {unbalanced}", totals=unbalanced)
    return checked


async def _ensure_accounts(
    session: AsyncSession, tenant_id: uuid.UUID, lines: list[Line]
) -> dict[tuple[str, str], uuid.UUID]:
    """Account ids by (code, currency), inserting missing accounts in sorted order."""
    wanted: dict[tuple[str, str], Line] = {}
    for line in lines:
        key = (line.code, line.amount.currency)
        if key in wanted and wanted[key].type != line.type:
            raise AccountTypeMismatch(code=line.code, type=line.type)
        wanted.setdefault(key, line)
    found = await _select_accounts(session, tenant_id, list(wanted))
    missing = sorted(key for key in wanted if key not in found)
    if missing:
        rows = [
            {
                "tenant_id": tenant_id,
                "id": new_id(),
                "code": code,
                "currency": currency,
                "type": wanted[(code, currency)].type,
                "name": wanted[(code, currency)].name or code,
                "parent_code": code.rsplit(":", 1)[0] if ":" in code else None,
            }
            for code, currency in missing
        ]
        await session.execute(
            insert(_ACCOUNTS)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["tenant_id", "code", "currency"])
        )
        found.update(await _select_accounts(session, tenant_id, missing))
    ids: dict[tuple[str, str], uuid.UUID] = {}
    for key, line in wanted.items():
        account_id, account_type = found[key]
        if account_type != line.type:
            raise AccountTypeMismatch(code=line.code, type=line.type, existing=account_type)
        ids[key] = account_id
    return ids


async def _select_accounts(
    session: AsyncSession, tenant_id: uuid.UUID, keys: list[tuple[str, str]]
) -> dict[tuple[str, str], tuple[uuid.UUID, str]]:
    result = await session.execute(_SELECT_ACCOUNTS, {"tenant_id": tenant_id, "keys": keys})
    return {(row.code, row.currency): (row.id, row.type) for row in result}


async def _existing(
    session: AsyncSession, tenant_id: uuid.UUID, idempotency_key: str, lines: list[Line]
) -> Entry:
    """The entry that already holds this key; its postings must be the ones asked for."""
    entry = await find_entry_by_key(session, tenant_id, idempotency_key)
    if entry is None:
        # Only possible under REPEATABLE READ when the winner committed after our snapshot.
        raise LedgerKeyReused(
            "the entry for this key is not visible to this transaction",
            idempotency_key=idempotency_key,
        )
    asked = sorted((line.code, line.amount.currency, line.amount.amount_minor) for line in lines)
    held = sorted(
        (p.account_code, p.amount.currency, p.amount.amount_minor) for p in entry.postings
    )
    if asked != held:
        raise LedgerKeyReused(idempotency_key=idempotency_key)
    return Entry(
        entry.id,
        entry.tenant_id,
        entry.idempotency_key,
        entry.reason,
        entry.occurred_at,
        entry.booking_id,
        entry.payment_id,
        entry.reverses_entry_id,
        entry.dimensions,
        entry.postings,
        entry.created_at,
        created=False,
    )


async def entries_for_booking(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    booking_id: uuid.UUID,
    payment_ids: Sequence[uuid.UUID] = (),
) -> list[Entry]:
    """Every entry of a booking or of its payments, oldest first (caller's transaction)."""
    condition = _ENTRIES.c.booking_id == booking_id
    if payment_ids:
        condition = condition | _ENTRIES.c.payment_id.in_(list(payment_ids))
    return await _load_entries(session, tenant_id, condition)


async def _load_entries(
    session: AsyncSession, tenant_id: uuid.UUID, condition: ColumnElement[bool], *, limit: int = 500
) -> list[Entry]:
    e_ = _ENTRIES.c
    entries = (
        await session.execute(
            select(
                e_.id,
                e_.tenant_id,
                e_.idempotency_key,
                e_.reason,
                e_.occurred_at,
                e_.booking_id,
                e_.payment_id,
                e_.reverses_entry_id,
                e_.dimensions,
                e_.created_at,
            )
            .where(e_.tenant_id == tenant_id, condition)
            .order_by(e_.occurred_at, e_.created_at, e_.id)
            .limit(limit)
        )
    ).all()
    if not entries:
        return []
    postings: dict[uuid.UUID, list[Posting]] = {entry.id: [] for entry in entries}
    p_, a_ = _POSTINGS.c, _ACCOUNTS.c
    rows = await session.execute(
        select(p_.entry_id, p_.amount_minor, p_.currency, a_.code, a_.type)
        .join(_ACCOUNTS, (a_.tenant_id == p_.tenant_id) & (a_.id == p_.account_id))
        .where(p_.tenant_id == tenant_id, p_.entry_id.in_(list(postings)))
        .order_by(p_.entry_id, a_.code, p_.amount_minor)
    )
    for row in rows:
        postings[row.entry_id].append(
            Posting(row.code, row.type, Money(row.amount_minor, row.currency))
        )
    return [
        Entry(
            e.id,
            e.tenant_id,
            e.idempotency_key,
            e.reason,
            e.occurred_at,
            e.booking_id,
            e.payment_id,
            e.reverses_entry_id,
            dict(e.dimensions),
            tuple(postings[e.id]),
            e.created_at,
            created=False,
        )
        for e in entries
    ]


def _jsonable(dimensions: dict[str, Any]) -> dict[str, Any]:
    return {
        key: str(value) if isinstance(value, uuid.UUID) else value
        for key, value in dimensions.items()
    }


def _constraint(error: IntegrityError) -> str | None:
    diag = getattr(error.orig, "diag", None)
    name = getattr(diag, "constraint_name", None)
    return name if isinstance(name, str) else None
