"""Catalog use cases: branches, resources and their schedules (here); services and products
(app.catalog.offerings), edits and archiving (app.catalog.editing) and stock movements
(app.catalog.stock), re-exported. This module is the catalog's public surface.

Write use cases own their transaction. The read helpers for other domains (load_service,
load_schedules, load_branch, price_for, ...) are re-exported from app.catalog.queries and
app.catalog.views; they run inside the CALLER's already-begun, tenant-scoped transaction
(session.begin() entered and app.db.set_tenant called) and never begin or commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import trail as audit
from app.catalog.checks import MAX_CAPACITY, Problems, check_address
from app.catalog.editing import update_branch, update_product, update_resource, update_service
from app.catalog.models import (
    RESOURCE_KINDS,
    Branch,
    Resource,
    ResourceBranch,
    ResourceHours,
    ScheduleOverride,
    TimeOff,
)
from app.catalog.offerings import (
    create_product,
    create_service,
    get_product,
    get_service,
    list_products,
    list_public_services,
    list_services,
)
from app.catalog.patches import UNSET, BranchPatch, ProductPatch, ResourcePatch, ServicePatch
from app.catalog.queries import (
    branch_states,
    load_branch,
    load_branches,
    load_full_schedule,
    load_resource,
    load_resources,
    load_schedules,
    load_service,
    load_services,
)
from app.catalog.specs import (
    OverrideInput,
    ServiceSpec,
    StockInput,
    WeeklyInput,
    check_overrides,
    check_time_off,
    check_weekly,
)
from app.catalog.stock import list_stock_movements, record_stock_movement
from app.catalog.views import (
    BranchView,
    Price,
    ResourceDetail,
    ResourceView,
    ServiceView,
    TimeOffView,
    price_for,
)
from app.db import new_id, set_lock_timeout, set_tenant
from app.errors import NotFound
from app.tenancy.service import Principal

__all__ = [
    "UNSET",
    "BranchPatch",
    "Price",
    "ProductPatch",
    "ResourcePatch",
    "ServicePatch",
    "ServiceSpec",
    "ServiceView",
    "StockInput",
    "add_time_off",
    "create_branch",
    "create_product",
    "create_resource",
    "create_service",
    "get_branch",
    "get_product",
    "get_resource",
    "get_service",
    "list_branches",
    "list_products",
    "list_public_services",
    "list_resources",
    "list_services",
    "list_stock_movements",
    "load_branch",
    "load_resource",
    "load_resources",
    "load_schedules",
    "load_service",
    "load_services",
    "price_for",
    "record_stock_movement",
    "set_schedule",
    "update_branch",
    "update_product",
    "update_resource",
    "update_service",
]


def _actor(principal: Principal) -> audit.Actor:
    return audit.Actor.user(principal.user_id)


async def create_branch(
    session: AsyncSession,
    actor: Principal,
    *,
    name: str,
    timezone: str,
    address: str | None = None,
) -> BranchView:
    problems = Problems()
    name = problems.text(name, "name")
    problems.timezone(timezone, "timezone")
    address = check_address(problems, address)
    problems.raise_if_any()
    branch_id = new_id()
    async with session.begin():
        await set_tenant(session, actor.tenant_id)
        session.add(
            Branch(
                tenant_id=actor.tenant_id,
                id=branch_id,
                name=name,
                timezone=timezone,
                address=address,
            )
        )
        audit.record(
            session,
            actor.tenant_id,
            _actor(actor),
            "branch.created",
            "branch",
            branch_id,
            after={"name": name, "timezone": timezone},
        )
    return BranchView(branch_id, name, timezone, address=address)


async def list_branches(
    session: AsyncSession, tenant_id: uuid.UUID, *, archived: bool | None = False
) -> list[BranchView]:
    """`archived`: False (the default) lists active branches, True archived ones, None all."""
    async with session.begin():
        await set_tenant(session, tenant_id)
        return await load_branches(session, tenant_id, archived=archived)


async def get_branch(
    session: AsyncSession, tenant_id: uuid.UUID, branch_id: uuid.UUID
) -> BranchView:
    async with session.begin():
        await set_tenant(session, tenant_id)
        return await load_branch(session, tenant_id, branch_id)


async def create_resource(
    session: AsyncSession,
    actor: Principal,
    *,
    name: str,
    kind: str,
    capacity: int,
    branch_ids: Sequence[uuid.UUID],
    commission_bps: int | None = None,
) -> ResourceView:
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
        states = await branch_states(session, actor.tenant_id, branch_ids)
        problems.usable(branch_ids, states, "branch_ids", "branch")
        problems.raise_if_any()
        session.add(
            Resource(
                tenant_id=actor.tenant_id,
                id=resource_id,
                name=name,
                kind=kind,
                capacity=capacity,
                commission_bps=commission_bps,
                active=True,
            )
        )
        await session.flush()
        session.add_all(
            [
                ResourceBranch(
                    tenant_id=actor.tenant_id, resource_id=resource_id, branch_id=branch_id
                )
                for branch_id in branch_ids
            ]
        )
        audit.record(
            session,
            actor.tenant_id,
            _actor(actor),
            "resource.created",
            "resource",
            resource_id,
            after={
                "name": name,
                "kind": kind,
                "capacity": capacity,
                "branch_ids": [str(b) for b in branch_ids],
            },
        )
    return ResourceView(
        resource_id, name, kind, capacity, tuple(sorted(branch_ids)), commission_bps, True
    )


async def read_catalog(
    session: AsyncSession, tenant_id: uuid.UUID
) -> tuple[list[BranchView], list[ResourceView], list[ServiceView]]:
    """The active branches, resources and services, read in one transaction (pages that show
    all three, like the dashboard's calendar)."""
    async with session.begin():
        await set_tenant(session, tenant_id)
        return (
            await load_branches(session, tenant_id, archived=False),
            await load_resources(session, tenant_id, archived=False),
            await load_services(session, tenant_id, archived=False),
        )


async def list_resources(
    session: AsyncSession, tenant_id: uuid.UUID, *, archived: bool | None = False
) -> list[ResourceView]:
    """`archived`: False (the default) lists active resources, True archived ones, None all."""
    async with session.begin():
        await set_tenant(session, tenant_id)
        return await load_resources(session, tenant_id, archived=archived)


async def get_resource(
    session: AsyncSession, tenant_id: uuid.UUID, resource_id: uuid.UUID
) -> ResourceDetail:
    async with session.begin():
        await set_tenant(session, tenant_id)
        resource = await load_resource(session, tenant_id, resource_id)
        return ResourceDetail(resource, await load_full_schedule(session, tenant_id, resource))


async def _lock_resource(
    session: AsyncSession, tenant_id: uuid.UUID, resource_id: uuid.UUID
) -> ResourceView:
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


async def set_schedule(
    session: AsyncSession,
    actor: Principal,
    resource_id: uuid.UUID,
    *,
    weekly: Sequence[WeeklyInput],
    overrides: Sequence[OverrideInput],
) -> ResourceDetail:
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
                problems.add(
                    f"weekly[{index}].branch_id", f"resource is not in branch {window.branch_id}"
                )
        problems.raise_if_any()
        for model in (ResourceHours, ScheduleOverride):
            await session.execute(
                delete(model).where(model.tenant_id == tenant_id, model.resource_id == resource_id)
            )
        session.add_all(
            [
                ResourceHours(
                    tenant_id=tenant_id,
                    id=new_id(),
                    resource_id=resource_id,
                    branch_id=h.branch_id,
                    weekday=h.weekday,
                    start_time=h.start,
                    end_time=h.end,
                )
                for h in hours
            ]
        )
        session.add_all(
            [
                ScheduleOverride(
                    tenant_id=tenant_id,
                    id=new_id(),
                    resource_id=resource_id,
                    on_date=o.on_date,
                    closed=o.closed,
                    start_time=o.start,
                    end_time=o.end,
                )
                for o in dated
            ]
        )
        await session.flush()
        audit.record(
            session,
            tenant_id,
            _actor(actor),
            "resource.schedule_set",
            "resource",
            resource_id,
            after={"weekly": len(hours), "overrides": len(dated)},
        )
        return ResourceDetail(resource, await load_full_schedule(session, tenant_id, resource))


async def add_time_off(
    session: AsyncSession,
    actor: Principal,
    resource_id: uuid.UUID,
    *,
    start: datetime,
    end: datetime,
    reason: str | None = None,
) -> TimeOffView:
    problems = Problems()
    check_time_off(start, end, reason, problems)
    problems.raise_if_any()
    if reason is not None:
        reason = reason.strip() or None
    time_off_id = new_id()
    async with session.begin():
        await set_tenant(session, actor.tenant_id)
        await _lock_resource(session, actor.tenant_id, resource_id)
        session.add(
            TimeOff(
                tenant_id=actor.tenant_id,
                id=time_off_id,
                resource_id=resource_id,
                starts_at=start,
                ends_at=end,
                reason=reason,
            )
        )
        audit.record(
            session,
            actor.tenant_id,
            _actor(actor),
            "resource.time_off_added",
            "resource",
            resource_id,
            after={"id": str(time_off_id), "start": start.isoformat(), "end": end.isoformat()},
        )
    return TimeOffView(time_off_id, resource_id, start, end, reason)
