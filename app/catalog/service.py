"""Catalog use cases: branches, resources and their schedules, services, products.

Write use cases own their transaction. Read helpers for other domains (load_service,
load_schedules, price_for, ...) are re-exported from app.catalog.queries and app.catalog.views;
those run inside the caller's already-begun, tenant-scoped transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import audit
from app.catalog.checks import MAX_CAPACITY, Problems
from app.catalog.models import (
    RESOURCE_KINDS,
    Branch,
    Product,
    ProductStock,
    Resource,
    ResourceBranch,
    ResourceHours,
    ScheduleOverride,
    Service,
    ServiceBranchPrice,
    ServiceResource,
    TimeOff,
)
from app.catalog.queries import (
    load_branch,
    load_branches,
    load_full_schedule,
    load_products,
    load_resource,
    load_resources,
    load_schedules,
    load_service,
    load_services,
)
from app.catalog.specs import (
    OverrideInput,
    ServiceSpec,
    WeeklyInput,
    check_overrides,
    check_service,
    check_time_off,
    check_weekly,
)
from app.catalog.views import (
    BranchView,
    CancellationPolicy,
    Price,
    ProductView,
    ResourceDetail,
    ResourceView,
    ServiceView,
    TimeOffView,
    price_for,
)
from app.db import new_id, set_lock_timeout, set_tenant
from app.errors import NotFound
from app.tenancy.models import Tenant
from app.tenancy.service import Principal, find_tenant_by_slug

__all__ = [
    "Price",
    "ServiceView",
    "add_time_off",
    "create_branch",
    "create_product",
    "create_resource",
    "create_service",
    "get_resource",
    "get_service",
    "list_branches",
    "list_products",
    "list_public_services",
    "list_resources",
    "list_services",
    "load_branch",
    "load_resource",
    "load_resources",
    "load_schedules",
    "load_service",
    "load_services",
    "price_for",
    "set_schedule",
]


@dataclass(frozen=True, slots=True)
class StockInput:
    branch_id: uuid.UUID
    quantity: int


def _actor(principal: Principal) -> audit.Actor:
    return audit.Actor.user(principal.user_id)


async def _known_branches(session: AsyncSession, tenant_id: uuid.UUID,
                          branch_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    rows = await session.scalars(
        select(Branch.id).where(Branch.tenant_id == tenant_id, Branch.id.in_(list(branch_ids)))
    )
    return set(rows)


async def _tenant_currency(session: AsyncSession, tenant_id: uuid.UUID) -> str:
    tenant = await session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound("Tenant not found", entity="tenant")
    return tenant.currency.strip()


async def create_branch(session: AsyncSession, actor: Principal, *, name: str,
                        timezone: str) -> BranchView:
    problems = Problems()
    name = problems.text(name, "name")
    problems.timezone(timezone, "timezone")
    problems.raise_if_any()
    branch_id = new_id()
    async with session.begin():
        await set_tenant(session, actor.tenant_id)
        session.add(Branch(tenant_id=actor.tenant_id, id=branch_id, name=name,
                           timezone=timezone))
        audit.record(session, actor.tenant_id, _actor(actor), "branch.created", "branch",
                     branch_id, after={"name": name, "timezone": timezone})
    return BranchView(branch_id, name, timezone)


async def list_branches(session: AsyncSession, tenant_id: uuid.UUID) -> list[BranchView]:
    async with session.begin():
        await set_tenant(session, tenant_id)
        return await load_branches(session, tenant_id)


async def create_resource(session: AsyncSession, actor: Principal, *, name: str, kind: str,
                          capacity: int, branch_ids: Sequence[uuid.UUID],
                          commission_bps: int | None = None) -> ResourceView:
    problems = Problems()
    name = problems.text(name, "name")
    if kind not in RESOURCE_KINDS:
        problems.add("kind", f"must be one of {', '.join(RESOURCE_KINDS)}")
    problems.int_range(capacity, "capacity", 1, MAX_CAPACITY)
    problems.bps(commission_bps, "commission_bps")
    if not branch_ids:
        problems.add("branch_ids", "must name at least one branch")
    problems.unique(branch_ids, "branch_ids")
    problems.raise_if_any()
    resource_id = new_id()
    async with session.begin():
        await set_tenant(session, actor.tenant_id)
        known = await _known_branches(session, actor.tenant_id, branch_ids)
        problems.known(branch_ids, known, "branch_ids", "branch")
        problems.raise_if_any()
        session.add(Resource(tenant_id=actor.tenant_id, id=resource_id, name=name, kind=kind,
                             capacity=capacity, commission_bps=commission_bps, active=True))
        await session.flush()
        session.add_all([ResourceBranch(tenant_id=actor.tenant_id, resource_id=resource_id,
                                        branch_id=branch_id) for branch_id in branch_ids])
        audit.record(session, actor.tenant_id, _actor(actor), "resource.created", "resource",
                     resource_id, after={"name": name, "kind": kind, "capacity": capacity,
                                         "branch_ids": [str(b) for b in branch_ids]})
    return ResourceView(resource_id, name, kind, capacity, tuple(sorted(branch_ids)),
                        commission_bps, True)


async def list_resources(session: AsyncSession, tenant_id: uuid.UUID) -> list[ResourceView]:
    async with session.begin():
        await set_tenant(session, tenant_id)
        return await load_resources(session, tenant_id)


async def get_resource(session: AsyncSession, tenant_id: uuid.UUID,
                       resource_id: uuid.UUID) -> ResourceDetail:
    async with session.begin():
        await set_tenant(session, tenant_id)
        resource = await load_resource(session, tenant_id, resource_id)
        return ResourceDetail(resource, await load_full_schedule(session, tenant_id, resource))


async def _lock_resource(session: AsyncSession, tenant_id: uuid.UUID,
                         resource_id: uuid.UUID) -> ResourceView:
    """Row-lock the resource: schedule edits serialise with bookings that lock it too."""
    await set_lock_timeout(session)
    locked = await session.scalar(
        select(Resource.id)
        .where(Resource.tenant_id == tenant_id, Resource.id == resource_id)
        .with_for_update()
    )
    if locked is None:
        raise NotFound("Resource not found", entity="resource", id=str(resource_id))
    return await load_resource(session, tenant_id, resource_id)


async def set_schedule(session: AsyncSession, actor: Principal, resource_id: uuid.UUID, *,
                       weekly: Sequence[WeeklyInput],
                       overrides: Sequence[OverrideInput]) -> ResourceDetail:
    """Replace the resource's weekly hours and date overrides together, or change nothing."""
    problems = Problems()
    hours = check_weekly(list(weekly), problems)
    dated = check_overrides(list(overrides), problems)
    tenant_id = actor.tenant_id
    async with session.begin():
        await set_tenant(session, tenant_id)
        resource = await _lock_resource(session, tenant_id, resource_id)
        for index, window in enumerate(weekly):
            if window.branch_id not in resource.branch_ids:
                problems.add(f"weekly[{index}].branch_id",
                             f"resource is not in branch {window.branch_id}")
        problems.raise_if_any()
        for model in (ResourceHours, ScheduleOverride):
            await session.execute(delete(model).where(model.tenant_id == tenant_id,
                                                      model.resource_id == resource_id))
        session.add_all([
            ResourceHours(tenant_id=tenant_id, id=new_id(), resource_id=resource_id,
                          branch_id=h.branch_id, weekday=h.weekday, start_time=h.start,
                          end_time=h.end) for h in hours
        ])
        session.add_all([
            ScheduleOverride(tenant_id=tenant_id, id=new_id(), resource_id=resource_id,
                             on_date=o.on_date, closed=o.closed, start_time=o.start,
                             end_time=o.end) for o in dated
        ])
        await session.flush()
        audit.record(session, tenant_id, _actor(actor), "resource.schedule_set", "resource",
                     resource_id, after={"weekly": len(hours), "overrides": len(dated)})
        return ResourceDetail(resource, await load_full_schedule(session, tenant_id, resource))


async def add_time_off(session: AsyncSession, actor: Principal, resource_id: uuid.UUID, *,
                       start: datetime, end: datetime, reason: str | None = None) -> TimeOffView:
    problems = Problems()
    check_time_off(start, end, reason, problems)
    problems.raise_if_any()
    if reason is not None:
        reason = reason.strip() or None
    time_off_id = new_id()
    async with session.begin():
        await set_tenant(session, actor.tenant_id)
        await _lock_resource(session, actor.tenant_id, resource_id)
        session.add(TimeOff(tenant_id=actor.tenant_id, id=time_off_id, resource_id=resource_id,
                            starts_at=start, ends_at=end, reason=reason))
        audit.record(session, actor.tenant_id, _actor(actor), "resource.time_off_added",
                     "resource", resource_id, after={"id": str(time_off_id),
                                                     "start": start.isoformat(),
                                                     "end": end.isoformat()})
    return TimeOffView(time_off_id, resource_id, start, end, reason)


async def create_service(session: AsyncSession, actor: Principal,
                         spec: ServiceSpec) -> ServiceView:
    problems = Problems()
    checked = check_service(spec, problems)
    problems.raise_if_any()
    tenant_id = actor.tenant_id
    service_id = new_id()
    async with session.begin():
        await set_tenant(session, tenant_id)
        currency = await _tenant_currency(session, tenant_id)
        if spec.currency != currency:
            problems.add("price.currency", f"must be the business currency {currency}")
        found = await load_resources(session, tenant_id, spec.resource_ids)
        problems.known(spec.resource_ids, {r.id for r in found}, "resource_ids", "resource")
        price_branches = [p.branch_id for p in spec.branch_prices]
        known = await _known_branches(session, tenant_id, price_branches)
        problems.known(price_branches, known, "branch_prices", "branch")
        problems.raise_if_any()
        session.add(Service(
            tenant_id=tenant_id, id=service_id, name=checked.name, policy=spec.policy,
            duration_minutes=spec.duration_minutes, slot_step_minutes=spec.slot_step_minutes,
            buffer_before_minutes=spec.buffer_before_minutes,
            buffer_after_minutes=spec.buffer_after_minutes,
            min_notice_minutes=spec.min_notice_minutes, max_advance_days=spec.max_advance_days,
            min_nights=spec.min_nights, max_nights=spec.max_nights,
            check_in_time=checked.check_in, check_out_time=checked.check_out,
            min_minutes=spec.min_minutes, max_minutes=spec.max_minutes,
            price_minor=spec.price_minor, currency=currency, pricing=spec.pricing,
            commission_bps=spec.commission_bps,
            commission_fixed_minor=spec.commission_fixed_minor,
            cancellation_policy=_policy_json(checked.cancellation), active=True,
        ))
        await session.flush()
        session.add_all([ServiceResource(tenant_id=tenant_id, service_id=service_id,
                                         resource_id=r) for r in spec.resource_ids])
        session.add_all([ServiceBranchPrice(tenant_id=tenant_id, service_id=service_id,
                                            branch_id=p.branch_id, amount_minor=p.amount_minor,
                                            pricing=p.pricing) for p in spec.branch_prices])
        await session.flush()
        audit.record(session, tenant_id, _actor(actor), "service.created", "service",
                     service_id, after={"name": checked.name, "policy": spec.policy,
                                        "price_minor": spec.price_minor, "currency": currency})
        return await load_service(session, tenant_id, service_id)


def _policy_json(policy: CancellationPolicy) -> dict[str, object]:
    body: dict[str, object] = {
        "tiers": [{"hours_before": t.hours_before, "refund_bps": t.refund_bps}
                  for t in policy.tiers]
    }
    if policy.no_show_fee_bps is not None:
        body["no_show_fee_bps"] = policy.no_show_fee_bps
    return body


async def list_services(session: AsyncSession, tenant_id: uuid.UUID) -> list[ServiceView]:
    async with session.begin():
        await set_tenant(session, tenant_id)
        return await load_services(session, tenant_id)


async def get_service(session: AsyncSession, tenant_id: uuid.UUID,
                      service_id: uuid.UUID) -> ServiceView:
    async with session.begin():
        await set_tenant(session, tenant_id)
        return await load_service(session, tenant_id, service_id)


async def list_public_services(session: AsyncSession, slug: str) -> list[ServiceView]:
    """The active services of the business with this public slug; NotFound if none."""
    tenant = await find_tenant_by_slug(session, slug)
    if tenant is None:
        raise NotFound("Business not found", entity="tenant", slug=slug)
    async with session.begin():
        await set_tenant(session, tenant.id)
        return await load_services(session, tenant.id, active_only=True)


async def create_product(session: AsyncSession, actor: Principal, *, name: str,
                         price_minor: int, currency: str,
                         stock: Sequence[StockInput]) -> ProductView:
    problems = Problems()
    name = problems.text(name, "name")
    problems.minor(price_minor, "price.amount_minor")
    branch_ids = [level.branch_id for level in stock]
    problems.unique(branch_ids, "stock")
    for index, level in enumerate(stock):
        problems.int_range(level.quantity, f"stock[{index}].quantity", 0, 10**9)
    problems.raise_if_any()
    tenant_id = actor.tenant_id
    product_id = new_id()
    async with session.begin():
        await set_tenant(session, tenant_id)
        expected = await _tenant_currency(session, tenant_id)
        if currency != expected:
            problems.add("price.currency", f"must be the business currency {expected}")
        known = await _known_branches(session, tenant_id, branch_ids)
        problems.known(branch_ids, known, "stock", "branch")
        problems.raise_if_any()
        session.add(Product(tenant_id=tenant_id, id=product_id, name=name,
                            price_minor=price_minor, currency=expected))
        await session.flush()
        session.add_all([ProductStock(tenant_id=tenant_id, product_id=product_id,
                                      branch_id=level.branch_id, quantity=level.quantity)
                         for level in stock])
        await session.flush()
        audit.record(session, tenant_id, _actor(actor), "product.created", "product",
                     product_id, after={"name": name, "price_minor": price_minor})
        return (await load_products(session, tenant_id, [product_id]))[0]


async def list_products(session: AsyncSession, tenant_id: uuid.UUID) -> list[ProductView]:
    async with session.begin():
        await set_tenant(session, tenant_id)
        return await load_products(session, tenant_id)
