"""Idempotency keys: one stored response per (tenant, key); another body with the same key
is refused.

The claim is committed before the operation runs, so a concurrent duplicate sees it and is
turned away instead of executing twice. A claim whose holder died is taken over after a lease.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import new_id, set_tenant
from app.errors import (
    IdempotencyKeyInProgress,
    IdempotencyKeyReused,
    IdempotencyOutcomeUnknown,
    ValidationFailed,
)

LEASE = timedelta(seconds=60)
MAX_KEY_LENGTH = 255


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


async def claim_key(
    session: AsyncSession, tenant_id: uuid.UUID, key: str, fingerprint: str, now: datetime
) -> StoredResponse | None:
    """Claim `key` for this request. None: run the operation. A response: replay it."""
    async with session.begin():
        await set_tenant(session, tenant_id)
        inserted = (
            await session.execute(
                text(
                    "INSERT INTO idempotency_keys (tenant_id, id, key, request_hash, locked_at) "
                    "VALUES (:tenant_id, :id, :key, :hash, :now) "
                    "ON CONFLICT (tenant_id, key) DO NOTHING RETURNING id"
                ),
                {
                    "tenant_id": tenant_id,
                    "id": new_id(),
                    "key": key,
                    "hash": fingerprint,
                    "now": now,
                },
            )
        ).first()
        if inserted is not None:
            return None
        row = (
            await session.execute(
                text(
                    "SELECT request_hash, status, locked_at, response_status, response_body, "
                    "response_content_type FROM idempotency_keys "
                    "WHERE tenant_id = :tenant_id AND key = :key FOR UPDATE"
                ),
                {"tenant_id": tenant_id, "key": key},
            )
        ).one()
        if row.request_hash != fingerprint:
            raise IdempotencyKeyReused(key=key)
        if row.status == "completed":
            return StoredResponse(
                row.response_status, bytes(row.response_body), row.response_content_type
            )
        if row.status == "executed" and (row.locked_at is None or row.locked_at <= now - LEASE):
            # Its transaction committed but the response was never stored (the process died
            # in between): running it again could do it twice.
            raise IdempotencyOutcomeUnknown(key=key)
        if row.locked_at is not None and row.locked_at > now - LEASE:
            raise IdempotencyKeyInProgress(key=key)
        await session.execute(
            text(
                "UPDATE idempotency_keys SET locked_at = :now "
                "WHERE tenant_id = :tenant_id AND key = :key"
            ),
            {"tenant_id": tenant_id, "key": key, "now": now},
        )
        return None


async def complete_key(
    session: AsyncSession, tenant_id: uuid.UUID, key: str, response: StoredResponse
) -> None:
    async with session.begin():
        await set_tenant(session, tenant_id)
        await session.execute(
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


async def release_key(session: AsyncSession, tenant_id: uuid.UUID, key: str) -> None:
    """Forget a claim whose operation failed unexpectedly, so the client may retry."""
    async with session.begin():
        await set_tenant(session, tenant_id)
        await session.execute(
            text(
                "DELETE FROM idempotency_keys WHERE tenant_id = :tenant_id AND key = :key "
                "AND status = 'started'"
            ),
            {"tenant_id": tenant_id, "key": key},
        )


MARK_EXECUTED = text(
    "UPDATE idempotency_keys SET status = 'executed' "
    "WHERE tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid "
    "AND key = :key AND status = 'started'"
)
"""Run inside the request's own transaction just before it commits (see app/http.py): the
claim then says the work is done, atomically with the work."""
