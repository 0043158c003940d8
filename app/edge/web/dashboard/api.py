"""The dashboard's fetches, authenticated by the session cookie and the CSRF header (the
access token never reaches JavaScript): the calendar's drag calls the reschedule use case as
POST /api/v1/bookings/{id}/reschedule does, and its live view reads the tenant's event
stream through the same generator as GET /api/v1/events/stream."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from litestar import Request, get, post
from litestar.response import ServerSentEvent
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import trail as audit
from app.bookings import service
from app.bookings.schemas import BookingOut, RescheduleIn
from app.edge.api.events import RECONNECT_MS, parse_last_event_id, tenant_events
from app.edge.http import principal


@post("/bookings/{booking_id:uuid}/reschedule", status_code=200, include_in_schema=False)
async def reschedule(
    request: Request[Any, Any, Any],
    booking_id: uuid.UUID,
    data: RescheduleIn,
    session: AsyncSession,
) -> BookingOut:
    user = principal(request)
    view = await service.reschedule_booking(
        session,
        user.tenant_id,
        audit.Actor.user(user.user_id),
        booking_id,
        start=data.start,
        end=data.end,
        resource_id=data.resource_id,
        now=datetime.now(UTC),
    )
    return BookingOut.of(view)


@get("/events", include_in_schema=False)
async def events(request: Request[Any, Any, Any]) -> ServerSentEvent:
    caller = principal(request)
    last_seq = parse_last_event_id(request.headers.get("last-event-id"))
    state = request.app.state
    stream = tenant_events(
        state.redis, state.sessions, state.settings.redis_namespace, caller.tenant_id, last_seq
    )
    response = ServerSentEvent(stream, retry_duration=RECONNECT_MS)
    response.headers["Cache-Control"] = "no-store"
    return response
