"""Catalog HTTP routes: owners and admins write, staff read; public services by slug.

Lists show active items unless `?archived=true|all`; an archived item stays readable by id."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from litestar import Request, Response, Router, get, post, put
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog import service
from app.catalog.edit_schemas import ArchivedFilter, archived_filter
from app.catalog.schemas import (
    BranchIn,
    BranchOut,
    ProductIn,
    ProductOut,
    PublicServiceOut,
    ResourceDetailOut,
    ResourceIn,
    ResourceOut,
    ScheduleIn,
    ServiceIn,
    ServiceOut,
    TimeOffIn,
    TimeOffOut,
)
from app.catalog.specs import (
    BranchPriceInput,
    OverrideInput,
    ServiceSpec,
    TierInput,
    WeeklyInput,
)
from app.edge.api import catalog_edit as edit_routes
from app.edge.http import idempotent, manager_only, principal

AnyRequest = Request[Any, Any, Any]
Archived = Annotated[
    ArchivedFilter,
    Parameter(description="false: active only (the default); true: archived only; all: both"),
]


@post("/branches", guards=[manager_only])
async def create_branch(
    request: AnyRequest, data: BranchIn, session: AsyncSession
) -> Response[bytes]:
    actor = principal(request)

    async def run() -> tuple[int, Any]:
        branch = await service.create_branch(
            session, actor, name=data.name, timezone=data.timezone, address=data.address
        )
        return 201, BranchOut.of(branch)

    return await idempotent(request, actor.tenant_id, run)


@get("/branches")
async def list_branches(
    request: AnyRequest, session: AsyncSession, archived: Archived = "false"
) -> list[BranchOut]:
    branches = await service.list_branches(
        session, principal(request).tenant_id, archived=archived_filter(archived)
    )
    return [BranchOut.of(branch) for branch in branches]


@get("/branches/{branch_id:uuid}")
async def get_branch(request: AnyRequest, branch_id: uuid.UUID, session: AsyncSession) -> BranchOut:
    branch = await service.get_branch(session, principal(request).tenant_id, branch_id)
    return BranchOut.of(branch)


@post("/resources", guards=[manager_only])
async def create_resource(
    request: AnyRequest, data: ResourceIn, session: AsyncSession
) -> Response[bytes]:
    actor = principal(request)

    async def run() -> tuple[int, Any]:
        resource = await service.create_resource(
            session,
            actor,
            name=data.name,
            kind=data.kind,
            capacity=data.capacity,
            branch_ids=data.branch_ids,
            commission_bps=data.commission_bps,
        )
        return 201, ResourceOut.of(resource)

    return await idempotent(request, actor.tenant_id, run)


@get("/resources")
async def list_resources(
    request: AnyRequest, session: AsyncSession, archived: Archived = "false"
) -> list[ResourceOut]:
    resources = await service.list_resources(
        session, principal(request).tenant_id, archived=archived_filter(archived)
    )
    return [ResourceOut.of(resource) for resource in resources]


@get("/resources/{resource_id:uuid}")
async def get_resource(
    request: AnyRequest, resource_id: uuid.UUID, session: AsyncSession
) -> ResourceDetailOut:
    detail = await service.get_resource(session, principal(request).tenant_id, resource_id)
    return ResourceDetailOut.of(detail)


@put("/resources/{resource_id:uuid}/schedule", guards=[manager_only])
async def set_schedule(
    request: AnyRequest, resource_id: uuid.UUID, data: ScheduleIn, session: AsyncSession
) -> ResourceDetailOut:
    detail = await service.set_schedule(
        session,
        principal(request),
        resource_id,
        weekly=[WeeklyInput(w.weekday, w.start, w.end, w.branch_id) for w in data.weekly],
        overrides=[OverrideInput(o.date, o.closed, o.start, o.end) for o in data.overrides],
    )
    return ResourceDetailOut.of(detail)


@post("/resources/{resource_id:uuid}/time-off", guards=[manager_only])
async def add_time_off(
    request: AnyRequest, resource_id: uuid.UUID, data: TimeOffIn, session: AsyncSession
) -> Response[bytes]:
    actor = principal(request)

    async def run() -> tuple[int, Any]:
        time_off = await service.add_time_off(
            session, actor, resource_id, start=data.start, end=data.end, reason=data.reason
        )
        return 201, TimeOffOut.of(time_off)

    return await idempotent(request, actor.tenant_id, run)


def service_spec(data: ServiceIn) -> ServiceSpec:
    policy = data.cancellation_policy
    return ServiceSpec(
        name=data.name,
        policy=data.policy,
        price_minor=data.price.amount_minor,
        currency=data.price.currency,
        pricing=data.pricing,
        resource_ids=tuple(data.resource_ids),
        duration_minutes=data.duration_minutes,
        slot_step_minutes=data.slot_step_minutes,
        buffer_before_minutes=data.buffer_before_minutes,
        buffer_after_minutes=data.buffer_after_minutes,
        min_notice_minutes=data.min_notice_minutes,
        max_advance_days=data.max_advance_days,
        min_nights=data.min_nights,
        max_nights=data.max_nights,
        check_in_time=data.check_in_time,
        check_out_time=data.check_out_time,
        min_minutes=data.min_minutes,
        max_minutes=data.max_minutes,
        branch_prices=tuple(
            BranchPriceInput(p.branch_id, p.amount_minor, p.pricing) for p in data.branch_prices
        ),
        commission_bps=data.commission_bps,
        commission_fixed_minor=data.commission_fixed_minor,
        tiers=tuple(TierInput(t.hours_before, t.refund_bps) for t in policy.tiers)
        if policy
        else (),
        no_show_fee_bps=policy.no_show_fee_bps if policy else None,
    )


@post("/services", guards=[manager_only])
async def create_service(
    request: AnyRequest, data: ServiceIn, session: AsyncSession
) -> Response[bytes]:
    actor = principal(request)

    async def run() -> tuple[int, Any]:
        created = await service.create_service(session, actor, service_spec(data))
        return 201, ServiceOut.of(created)

    return await idempotent(request, actor.tenant_id, run)


@get("/services")
async def list_services(
    request: AnyRequest, session: AsyncSession, archived: Archived = "false"
) -> list[ServiceOut]:
    services = await service.list_services(
        session, principal(request).tenant_id, archived=archived_filter(archived)
    )
    return [ServiceOut.of(found) for found in services]


@get("/services/{service_id:uuid}")
async def get_service(
    request: AnyRequest, service_id: uuid.UUID, session: AsyncSession
) -> ServiceOut:
    found = await service.get_service(session, principal(request).tenant_id, service_id)
    return ServiceOut.of(found)


@post("/products", guards=[manager_only])
async def create_product(
    request: AnyRequest, data: ProductIn, session: AsyncSession
) -> Response[bytes]:
    actor = principal(request)

    async def run() -> tuple[int, Any]:
        product = await service.create_product(
            session,
            actor,
            name=data.name,
            price_minor=data.price.amount_minor,
            currency=data.price.currency,
            stock=[service.StockInput(s.branch_id, s.quantity) for s in data.stock],
            now=datetime.now(UTC),
        )
        return 201, ProductOut.of(product)

    return await idempotent(request, actor.tenant_id, run)


@get("/products")
async def list_products(
    request: AnyRequest, session: AsyncSession, archived: Archived = "false"
) -> list[ProductOut]:
    products = await service.list_products(
        session, principal(request).tenant_id, archived=archived_filter(archived)
    )
    return [ProductOut.of(product) for product in products]


@get("/products/{product_id:uuid}")
async def get_product(
    request: AnyRequest, product_id: uuid.UUID, session: AsyncSession
) -> ProductOut:
    product = await service.get_product(session, principal(request).tenant_id, product_id)
    return ProductOut.of(product)


@get("/{slug:str}/services")
async def public_services(slug: str, session: AsyncSession) -> list[PublicServiceOut]:
    services = await service.list_public_services(session, slug)
    return [PublicServiceOut.of(found) for found in services]


def router() -> Router:
    return Router(
        path="/api/v1",
        route_handlers=[
            create_branch,
            list_branches,
            get_branch,
            create_resource,
            list_resources,
            get_resource,
            set_schedule,
            add_time_off,
            create_service,
            list_services,
            get_service,
            create_product,
            list_products,
            get_product,
            *edit_routes.HANDLERS,
        ],
        tags=["catalog"],
    )


def public_router() -> Router:
    return Router(path="/public", route_handlers=[public_services], tags=["public"])
