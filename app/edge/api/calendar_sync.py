"""POST /api/v1/resources/{id}/calendar (owner/admin)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from litestar import Request, Response, Router, post
from sqlalchemy.ext.asyncio import AsyncSession

from app.calendar_sync import service
from app.calendar_sync.schemas import CalendarConnectIn, CalendarConnectionOut
from app.edge.deps import ApiDeps
from app.edge.http import idempotent, manager_only, principal


@post("/resources/{resource_id:uuid}/calendar", guards=[manager_only])
async def connect_calendar(
    request: Request[Any, Any, Any],
    resource_id: uuid.UUID,
    data: CalendarConnectIn,
    session: AsyncSession,
    deps: ApiDeps,
) -> Response[bytes]:
    actor = principal(request)

    async def run() -> tuple[int, Any]:
        view = await service.connect_calendar(
            session,
            actor,
            deps.secret_box,
            resource_id,
            datetime.now(UTC),
            calendar_id=data.calendar_id,
            refresh_token=data.refresh_token,
        )
        return 201, CalendarConnectionOut(
            resource_id=view.resource_id,
            calendar_id=view.calendar_id,
            connected_at=view.connected_at,
        )

    return await idempotent(request, actor.tenant_id, run)


def router() -> Router:
    return Router(path="/api/v1", route_handlers=[connect_calendar], tags=["calendar"])
