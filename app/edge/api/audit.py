"""`GET /api/v1/audit`: the audit trail, owners and admins only (a v1.1 addition, so its
body is an object with `next`, not a bare array)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, Router, get
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from app import paging
from app.audit import trail as audit
from app.edge.http import manager_only, principal


class AuditEntryOut(msgspec.Struct):
    id: uuid.UUID
    at: datetime
    actor: dict[str, Any]
    action: str
    entity_type: str
    entity_id: uuid.UUID
    before: dict[str, Any] | None
    after: dict[str, Any] | None

    @classmethod
    def of(cls, row: audit.AuditEntry) -> AuditEntryOut:
        return cls(
            id=row.id,
            at=row.at,
            actor={"kind": row.actor_kind, "id": str(row.actor_id) if row.actor_id else None},
            action=row.action,
            entity_type=row.entity_type,
            entity_id=row.entity_id,
            before=row.before,
            after=row.after,
        )


class AuditPageOut(msgspec.Struct):
    items: list[AuditEntryOut]
    next: str | None
    """Pass as `cursor` for the next page; null on the last page."""


@get("/audit")
async def list_audit(
    request: Request[Any, Any, Any],
    session: AsyncSession,
    entity_type: str | None = None,
    entity_id: uuid.UUID | None = None,
    actor_id: uuid.UUID | None = None,
    actor_kind: Annotated[str | None, Parameter(max_length=20)] = None,
    from_: Annotated[str | None, Parameter(query="from")] = None,
    to: str | None = None,
    limit: Annotated[int, Parameter(ge=1)] = paging.DEFAULT_LIMIT,
    cursor: str | None = None,
) -> AuditPageOut:
    """Who changed what, newest first. `actor_kind`: user, public, system or provider.
    `from`/`to` (either may be left out): dates (the business's timezone, `to` included) or
    RFC 3339 instants (`to` excluded). A page holds `limit` rows (default 100, most 500);
    `next` is the cursor of the next page, null on the last."""
    page = await audit.list_entries(
        session,
        principal(request).tenant_id,
        entity_type=entity_type,
        entity_id=entity_id,
        actor_id=actor_id,
        actor_kind=actor_kind,
        start=paging.parse_bound(from_, "from") if from_ else None,
        end=paging.parse_bound(to, "to") if to else None,
        cursor=cursor,
        limit=limit,
    )
    return AuditPageOut([AuditEntryOut.of(row) for row in page.items], page.next)


def router() -> Router:
    return Router(
        path="/api/v1", guards=[manager_only], tags=["audit"], route_handlers=[list_audit]
    )
