"""Idempotency keys: one stored response per (tenant, key); another body with the same key
is refused.

A key is first recorded in its own short committed transaction (so a concurrent duplicate
can find it). The request then runs in ONE transaction that holds the key's row lock from
start to end: the work, and the response stored with it, commit together or not at all.
A duplicate that cannot take the lock at once (NOWAIT) is told the key is in progress; a
holder that died leaves no lock behind (PostgreSQL ends its transaction with its
connection), so the next retry takes the key over at once and runs it - its work never
committed. No lease, so a request however long can never run twice.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, NoResultFound
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db import driver, new_id, set_tenant_sql
from app.errors import (
    IdempotencyKeyInProgress,
    IdempotencyKeyReused,
    IdempotencyOutcomeUnknown,
    ValidationFailed,
)

MAX_KEY_LENGTH = 255
LOCK_NOT_AVAILABLE = "55P03"


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status: int
    body: bytes
    content_type: str


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.encode(), b"\0", path.encode(), b"\0", body):
        digest.update(part)
    return digest.hexdigest()


def check_key(key: str) -> str:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise ValidationFailed(
            "Idempotency-Key must be 1-255 printable characters",
            errors=[{"field": "Idempotency-Key", "message": "invalid"}],
        )
    return key


# The key's statements run on the pooled connection's psycopg connection in pipeline mode
# (app.db.driver): each phase below is one round trip however many statements it sends, and
# none pays SQLAlchemy's per-statement Python (they run on every keyed POST: 12 round trips
# through SQLAlchemy before, 3 now). The transaction stays SQLAlchemy's: it begins, commits and
# rolls back the same connection, and the request's session joins it (app.edge.http).
_RECORD = (
    # Only when the key is not already there: an INSERT ... ON CONFLICT meeting a row its
    # holder has updated would wait for the holder's whole transaction; NOT EXISTS reads the
    # committed row from the snapshot and inserts nothing, without waiting.
    "INSERT INTO idempotency_keys (tenant_id, id, key, request_hash, locked_at) "
    "SELECT %(tenant_id)s, %(id)s, CAST(%(key)s AS text), CAST(%(hash)s AS text), %(now)s "
    "WHERE NOT EXISTS (SELECT 1 FROM idempotency_keys "
    "WHERE tenant_id = %(tenant_id)s AND key = CAST(%(key)s AS text)) "
    "ON CONFLICT (tenant_id, key) DO NOTHING"
)
_LOCK = (
    "SELECT request_hash, status, response_status, response_body, response_content_type, "
    "locked_at FROM idempotency_keys WHERE tenant_id = %(tenant_id)s AND key = %(key)s "
    "FOR UPDATE NOWAIT"
)
_TOUCH = (
    "UPDATE idempotency_keys SET locked_at = %(now)s WHERE tenant_id = %(tenant_id)s "
    "AND key = %(key)s"
)
_STORE = (
    "UPDATE idempotency_keys SET status = 'completed', locked_at = NULL, "
    "response_status = %(status)s, response_body = %(body)s, "
    "response_content_type = %(content_type)s WHERE tenant_id = %(tenant_id)s AND key = %(key)s"
)


# A key met for the first time, and an answer decided before any work (a refusal) for when
# the caller's condition holds: the key is recorded completed with that answer, else started
# as by _RECORD, in ONE statement with the condition's read - no round trip of its own.
# Nothing when the key is already there. MATERIALIZED: `holds` is named five times, and an
# inlined CTE would evaluate the condition's subqueries at each (5.3 ms of database time per
# request in a rush for one slot, against 2.4 ms evaluated once).
_RECORD_OR_ANSWER = (
    "WITH answer AS MATERIALIZED (SELECT coalesce(({condition}), false) AS holds), recorded AS ("
    "INSERT INTO idempotency_keys (tenant_id, id, key, request_hash, locked_at, status, "
    "response_status, response_body, response_content_type) "
    "SELECT %(k_tenant_id)s, %(k_id)s, CAST(%(k_key)s AS text), CAST(%(k_hash)s AS text), "
    "CASE WHEN holds THEN NULL ELSE CAST(%(k_now)s AS timestamptz) END, "
    "CASE WHEN holds THEN 'completed' ELSE 'started' END, "
    "CASE WHEN holds THEN CAST(%(k_status)s AS integer) END, "
    "CASE WHEN holds THEN CAST(%(k_body)s AS bytea) END, "
    "CASE WHEN holds THEN CAST(%(k_content_type)s AS text) END FROM answer "
    "WHERE NOT EXISTS (SELECT 1 FROM idempotency_keys "
    "WHERE tenant_id = %(k_tenant_id)s AND key = CAST(%(k_key)s AS text)) "
    "ON CONFLICT (tenant_id, key) DO NOTHING RETURNING status) "
    "SELECT EXISTS (SELECT 1 FROM recorded WHERE status = 'completed')"
)


@dataclass(frozen=True, slots=True)
class EarlyAnswer:
    """`response`, stored as if the request had run and answered it, when `condition` holds:
    a SELECT of one boolean (no row is false) with its own %(name)s `params`, none starting
    with k_."""

    response: StoredResponse
    condition: str
    params: dict[str, Any]


async def record_key(
    connection: AsyncConnection,
    tenant_id: uuid.UUID,
    key: str,
    fingerprint: str,
    now: datetime,
    answer: EarlyAnswer | None = None,
) -> bool:
    """Insert the key if it is new, in its own committed transaction (one round trip): a
    duplicate then finds the row (and its lock) instead of waiting on an uncommitted insert.
    With `answer`, a new key whose condition holds is recorded completed with its response
    instead, in the same round trip (True: answer that, run nothing); a known key is left to
    the ordinary path, which replays it, refuses a reuse or reports it in progress."""
    values: dict[str, Any]
    if answer is None:
        sql = _RECORD
        values = {
            "tenant_id": tenant_id,
            "id": new_id(),
            "key": key,
            "hash": fingerprint,
            "now": now,
        }
    else:
        sql = _RECORD_OR_ANSWER.format(condition=answer.condition)
        values = {
            **answer.params,
            "k_tenant_id": tenant_id,
            "k_id": new_id(),
            "k_key": key,
            "k_hash": fingerprint,
            "k_now": now,
            "k_status": answer.response.status,
            "k_body": answer.response.body,
            "k_content_type": answer.response.content_type,
        }
    # SQLAlchemy's transaction, its COMMIT sent in the pipeline with the INSERT.
    async with connection.begin(), driver(connection, sql) as raw:
        await raw.execute(set_tenant_sql(tenant_id))
        cursor = await raw.execute(sql, values)
        await raw.commit()
        row = await cursor.fetchone() if answer is not None else None
    return bool(row and row[0])


async def lock_key(
    connection: AsyncConnection, tenant_id: uuid.UUID, key: str, fingerprint: str, now: datetime
) -> StoredResponse | None:
    """Inside the request's transaction (begun on `connection`): lock the key's row for the
    rest of it. None: run the operation. A response: replay it."""
    params = {"tenant_id": tenant_id, "key": key, "now": now}
    try:
        async with driver(connection, _LOCK) as raw:
            await raw.execute(set_tenant_sql(tenant_id))
            row = await (await raw.execute(_LOCK, params)).fetchone()
    except DBAPIError as error:
        if getattr(error.orig, "sqlstate", None) == LOCK_NOT_AVAILABLE:
            raise IdempotencyKeyInProgress(key=key) from None
        raise
    if row is None:
        raise NoResultFound("the idempotency key's row is gone")
    request_hash, status, response_status, response_body, content_type, locked_at = row
    if request_hash != fingerprint:
        raise IdempotencyKeyReused(key=key)
    if status == "completed":
        return StoredResponse(response_status, bytes(response_body), content_type)
    if status == "executed":
        # Only keys marked by releases before 0016, which stored the response in a later
        # transaction: the work committed, its response was lost; running it again could do
        # it twice.
        raise IdempotencyOutcomeUnknown(key=key)
    # 'started' and unlocked: new, or its holder died before committing (nothing of its work
    # survived). Record when this attempt began (record_key just did, for a key it inserted).
    if locked_at != now:
        async with driver(connection, _TOUCH) as raw:
            await raw.execute(_TOUCH, params)
    return None


async def store_response(
    connection: AsyncConnection,
    tenant_id: uuid.UUID,
    key: str,
    response: StoredResponse,
    *,
    commit: bool = False,
) -> None:
    """Inside the request's transaction, after the work: the response commits with it. With
    `commit`, the COMMIT goes in the same round trip (the caller's transaction.commit() then
    finds nothing left to do)."""
    params = {
        "tenant_id": tenant_id,
        "key": key,
        "status": response.status,
        "body": response.body,
        "content_type": response.content_type,
    }
    async with driver(connection, _STORE) as raw:
        await raw.execute(set_tenant_sql(tenant_id))
        await raw.execute(_STORE, params)
        if commit:
            await raw.commit()


async def replace_body(
    connection: AsyncConnection, tenant_id: uuid.UUID, key: str, body: bytes
) -> None:
    """After commit: store the body completed with what only the commit could bring (a
    checkout URL the relay opened), so a replay matches what was sent."""
    async with connection.begin():
        await connection.execute(text(set_tenant_sql(tenant_id)))
        await connection.execute(
            text(
                "UPDATE idempotency_keys SET response_body = :body "
                "WHERE tenant_id = :tenant_id AND key = :key AND status = 'completed'"
            ),
            {"tenant_id": tenant_id, "key": key, "body": body},
        )
