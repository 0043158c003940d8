"""Availability routes: staff (authenticated) and public (by tenant slug, rate limited)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Annotated, Any, cast

import msgspec
from litestar import MediaType, Request, Response, Router, get
from litestar.params import Parameter
from litestar.serialization import encode_json
from sqlalchemy.ext.asyncio import AsyncSession

from app.availability import service
from app.availability.memo import AvailabilityMemo
from app.edge.deps import ApiDeps
from app.edge.http import principal
from app.edge.ratelimit import public_rate_limit
from app.errors import NotFound
from app.tenancy.service import find_tenant_by_slug

From = Annotated[date, Parameter(query="from")]
To = Annotated[date, Parameter(query="to")]
PartySize = Annotated[int, Parameter(ge=1, le=1000)]


class SlotOut(msgspec.Struct):
    start: datetime
    end: datetime
    resource_id: uuid.UUID
    remaining: int


class StayOut(msgspec.Struct):
    check_in_date: date
    nights: list[int]
    resource_id: uuid.UUID
    start: datetime


class AvailabilityOut(msgspec.Struct):
    timezone: str
    policy: str
    slots: list[SlotOut]
    stays: list[StayOut]


async def _availability(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    service_id: uuid.UUID,
    branch_id: uuid.UUID,
    dates: tuple[date, date],
    resource_id: uuid.UUID | None,
    party_size: int,
    memo: AvailabilityMemo,
) -> Response[AvailabilityOut]:
    """The answer as JSON; an answer served unchanged from the memo reuses its rendering."""
    answer = await service.get_availability(
        session,
        tenant_id,
        service_id=service_id,
        branch_id=branch_id,
        first=dates[0],
        last=dates[1],
        now=datetime.now(UTC),
        resource_id=resource_id,
        party_size=party_size,
        memo=memo,
    )
    remembered = answer.remembered
    body = remembered.rendered if remembered is not None else None
    if body is None:
        body = encode_json(_out(answer.found))
        if remembered is not None:
            remembered.rendered = body
    return cast("Response[AvailabilityOut]", Response(body, media_type=MediaType.JSON))


def _out(found: service.Availability) -> AvailabilityOut:
    return AvailabilityOut(
        timezone=found.timezone,
        policy=found.policy,
        slots=[SlotOut(s.start, s.end, s.resource_id, s.remaining) for s in found.slots],
        stays=[StayOut(s.check_in_date, s.nights, s.resource_id, s.start) for s in found.stays],
    )


@get("/availability")
async def availability(
    request: Request[Any, Any, Any],
    session: AsyncSession,
    deps: ApiDeps,
    service_id: uuid.UUID,
    branch_id: uuid.UUID,
    from_: From,
    to: To,
    resource_id: uuid.UUID | None = None,
    party_size: PartySize = 1,
) -> Response[AvailabilityOut]:
    tenant_id = principal(request).tenant_id
    return await _availability(
        session,
        tenant_id,
        service_id,
        branch_id,
        (from_, to),
        resource_id,
        party_size,
        deps.availability_memo,
    )


@get("/{slug:str}/availability", guards=[public_rate_limit])
async def public_availability(
    slug: str,
    session: AsyncSession,
    deps: ApiDeps,
    service_id: uuid.UUID,
    branch_id: uuid.UUID,
    from_: From,
    to: To,
    resource_id: uuid.UUID | None = None,
    party_size: PartySize = 1,
) -> Response[AvailabilityOut]:
    tenant = await find_tenant_by_slug(session, slug)
    if tenant is None:
        raise NotFound("Business not found", entity="tenant", slug=slug)
    return await _availability(
        session,
        tenant.id,
        service_id,
        branch_id,
        (from_, to),
        resource_id,
        party_size,
        deps.availability_memo,
    )


def router() -> Router:
    return Router(path="/api/v1", route_handlers=[availability], tags=["availability"])


def public_router() -> Router:
    return Router(path="/public", route_handlers=[public_availability], tags=["public"])
