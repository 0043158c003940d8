"""Outbox admin API (owner/admin): list rows by status, retry a dead row: every channel it
still owes, or the one named in an optional body `{"channel": ...}`."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from litestar import Request, Response, Router, get, post
from sqlalchemy.ext.asyncio import AsyncSession

from app.edge.http import idempotent, manager_only, principal
from app.outbox import service
from app.outbox.schemas import OutboxEntryOut, RetryOutboxIn


@get("/outbox", guards=[manager_only])
async def list_outbox(
    request: Request[Any, Any, Any], session: AsyncSession, status: str = "dead", limit: int = 100
) -> list[OutboxEntryOut]:
    caller = principal(request)
    entries = await service.list_entries(session, caller.tenant_id, status, limit=limit)
    return [OutboxEntryOut.of(entry) for entry in entries]


@post("/outbox/{entry_id:uuid}/retry", guards=[manager_only])
async def retry_outbox(
    request: Request[Any, Any, Any],
    session: AsyncSession,
    entry_id: uuid.UUID,
    data: RetryOutboxIn | None = None,
) -> Response[bytes]:
    caller = principal(request)
    # In the body, not the query string, so an Idempotency-Key's fingerprint covers it.
    channel = data.channel if data is not None else None

    async def run() -> tuple[int, Any]:
        entry = await service.retry_entry(
            session, caller.tenant_id, entry_id, datetime.now(UTC), channel=channel
        )
        return 200, OutboxEntryOut.of(entry)

    return await idempotent(request, caller.tenant_id, run)


def router() -> Router:
    return Router(path="/api/v1", route_handlers=[list_outbox, retry_outbox], tags=["outbox"])
