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

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db import new_id, set_tenant_sql
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


async def record_key(
    connection: AsyncConnection, tenant_id: uuid.UUID, key: str, fingerprint: str, now: datetime
) -> None:
    """Insert the key if it is new, in its own committed transaction: a duplicate then finds
    the row (and its lock) instead of waiting on an uncommitted insert."""
    async with connection.begin():
        await connection.execute(text(set_tenant_sql(tenant_id)))
        # Look first: an INSERT ... ON CONFLICT meeting a row its holder has updated waits for
        # the holder's whole transaction.
        known = await connection.execute(
            text("SELECT 1 FROM idempotency_keys WHERE tenant_id = :tenant_id AND key = :key"),
            {"tenant_id": tenant_id, "key": key},
        )
        if known.first() is not None:
            return
        await connection.execute(
            text(
                "INSERT INTO idempotency_keys (tenant_id, id, key, request_hash, locked_at) "
                "VALUES (:tenant_id, :id, :key, :hash, :now) "
                "ON CONFLICT (tenant_id, key) DO NOTHING"
            ),
            {"tenant_id": tenant_id, "id": new_id(), "key": key, "hash": fingerprint, "now": now},
        )


async def lock_key(
    connection: AsyncConnection, tenant_id: uuid.UUID, key: str, fingerprint: str, now: datetime
) -> StoredResponse | None:
    """Inside the request's transaction: lock the key's row for the rest of it. None: run the
    operation. A response: replay it."""
    await connection.execute(text(set_tenant_sql(tenant_id)))
    try:
        row = (
            await connection.execute(
                text(
                    "SELECT request_hash, status, response_status, response_body, "
                    "response_content_type FROM idempotency_keys "
                    "WHERE tenant_id = :tenant_id AND key = :key FOR UPDATE NOWAIT"
                ),
                {"tenant_id": tenant_id, "key": key},
            )
        ).one()
    except DBAPIError as error:
        if getattr(error.orig, "sqlstate", None) == LOCK_NOT_AVAILABLE:
            raise IdempotencyKeyInProgress(key=key) from None
        raise
    if row.request_hash != fingerprint:
        raise IdempotencyKeyReused(key=key)
    if row.status == "completed":
        return StoredResponse(
            row.response_status, bytes(row.response_body), row.response_content_type
        )
    if row.status == "executed":
        # Only keys marked by releases before 0016, which stored the response in a later
        # transaction: the work committed, its response was lost; running it again could do
        # it twice.
        raise IdempotencyOutcomeUnknown(key=key)
    # 'started' and unlocked: new, or its holder died before committing (nothing of its work
    # survived). Record when this attempt began.
    await connection.execute(
        text(
            "UPDATE idempotency_keys SET locked_at = :now "
            "WHERE tenant_id = :tenant_id AND key = :key"
        ),
        {"tenant_id": tenant_id, "key": key, "now": now},
    )
    return None


async def store_response(
    connection: AsyncConnection, tenant_id: uuid.UUID, key: str, response: StoredResponse
) -> None:
    """Inside the request's transaction, after the work: the response commits with it."""
    await connection.execute(text(set_tenant_sql(tenant_id)))
    await connection.execute(
        text(
            "UPDATE idempotency_keys SET status = 'completed', locked_at = NULL, "
            "response_status = :status, response_body = :body, "
            "response_content_type = :content_type "
            "WHERE tenant_id = :tenant_id AND key = :key"
        ),
        {
            "tenant_id": tenant_id,
            "key": key,
            "status": response.status,
            "body": response.body,
            "content_type": response.content_type,
        },
    )


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
