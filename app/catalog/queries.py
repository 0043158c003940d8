"""Catalog read helpers for other domains (bookings, availability, payments).

Every function here runs inside the CALLER's transaction: pass a session on which
`session.begin()` has been entered and `app.db.set_tenant(session, tenant_id)` has been
called. They never begin, commit or set the tenant themselves, so a booking use case can
read the catalog under the same snapshot and locks as its writes. Rows are also filtered
by tenant_id explicitly, so a wrong tenant setting finds nothing rather than another
tenant's rows.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import TypeVar

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.catalog.models import (
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
from app.catalog.views import (
    BranchPrice,
    BranchView,
    CancellationPolicy,
    OverrideView,
    ProductView,
    RefundTier,
    ResourceSchedule,
    ResourceView,
    ServiceView,
    StockLevel,
    TimeOffView,
    WeeklyWindow,
)
from app.errors import NotFound
from app.money import Money
from app.tenancy.models import Tenant

# Local dates differ from UTC dates by at most 14 hours; a day of slack either side keeps
# every override that can touch the requested range.
DATE_SLACK = timedelta(days=1)
T = TypeVar("T")


async def load_branch(
    session: AsyncSession, tenant_id: uuid.UUID, branch_id: uuid.UUID
) -> BranchView:
    """The branch (with its timezone); NotFound if it is not this tenant's."""
    row = await session.get(Branch, (tenant_id, branch_id))
    if row is None:
        raise NotFound("Branch not found", entity="branch", id=str(branch_id))
    return branch_view(row)


def branch_view(row: Branch) -> BranchView:
    return BranchView(row.id, row.name, row.timezone, row.active, row.address)


def archived_filter(
    query: Select[T], active: InstrumentedAttribute[bool], archived: bool | None
) -> Select[T]:
    """`archived`: None for every row, False for active rows only, True for archived only."""
    if archived is None:
        return query
    return query.where(active.is_(not archived))


async def load_branches(
    session: AsyncSession, tenant_id: uuid.UUID, *, archived: bool | None = None
) -> list[BranchView]:
    query = select(Branch).where(Branch.tenant_id == tenant_id)
    query = archived_filter(query, Branch.active, archived)
    rows = await session.scalars(query.order_by(Branch.created_at, Branch.id))
    return [branch_view(row) for row in rows]


async def load_resources(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    resource_ids: Sequence[uuid.UUID] | None = None,
    *,
    archived: bool | None = None,
) -> list[ResourceView]:
    """Resources by id (all when None), in creation order; unknown ids are simply absent."""
    query = select(Resource).where(Resource.tenant_id == tenant_id)
    if resource_ids is not None:
        query = query.where(Resource.id.in_(list(resource_ids)))
    query = archived_filter(query, Resource.active, archived)
    rows = list(await session.scalars(query.order_by(Resource.created_at, Resource.id)))
    links = await session.execute(
        select(ResourceBranch.resource_id, ResourceBranch.branch_id)
        .where(
            ResourceBranch.tenant_id == tenant_id,
            ResourceBranch.resource_id.in_([row.id for row in rows]),
        )
        .order_by(ResourceBranch.branch_id)
    )
    branches: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    for resource_id, branch_id in links:
        branches[resource_id].append(branch_id)
    return [
        ResourceView(
            row.id,
            row.name,
            row.kind,
            row.capacity,
            tuple(branches[row.id]),
            row.commission_bps,
            row.active,
        )
        for row in rows
    ]


async def load_resource(
    session: AsyncSession, tenant_id: uuid.UUID, resource_id: uuid.UUID
) -> ResourceView:
    found = await load_resources(session, tenant_id, [resource_id])
    if not found:
        raise NotFound("Resource not found", entity="resource", id=str(resource_id))
    return found[0]


async def load_service(
    session: AsyncSession, tenant_id: uuid.UUID, service_id: uuid.UUID
) -> ServiceView:
    """One service with its resources, branch prices and cancellation policy; NotFound if absent."""
    found = await load_services(session, tenant_id, [service_id])
    if not found:
        raise NotFound("Service not found", entity="service", id=str(service_id))
    return found[0]


async def load_services(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    service_ids: Sequence[uuid.UUID] | None = None,
    *,
    archived: bool | None = None,
) -> list[ServiceView]:
    query = select(Service).where(Service.tenant_id == tenant_id)
    if service_ids is not None:
        query = query.where(Service.id.in_(list(service_ids)))
    query = archived_filter(query, Service.active, archived)
    rows = list(await session.scalars(query.order_by(Service.created_at, Service.id)))
    ids = [row.id for row in rows]
    resources: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    for link in await session.scalars(
        select(ServiceResource)
        .where(ServiceResource.tenant_id == tenant_id, ServiceResource.service_id.in_(ids))
        .order_by(ServiceResource.resource_id)
    ):
        resources[link.service_id].append(link.resource_id)
    prices: dict[uuid.UUID, list[BranchPrice]] = defaultdict(list)
    for price in await session.scalars(
        select(ServiceBranchPrice)
        .where(ServiceBranchPrice.tenant_id == tenant_id, ServiceBranchPrice.service_id.in_(ids))
        .order_by(ServiceBranchPrice.branch_id)
    ):
        prices[price.service_id].append(
            BranchPrice(price.branch_id, price.amount_minor, price.pricing)
        )
    return [service_view(row, resources[row.id], prices[row.id]) for row in rows]


def service_view(
    row: Service, resource_ids: Sequence[uuid.UUID], prices: Sequence[BranchPrice]
) -> ServiceView:
    policy = row.cancellation_policy or {}
    tiers = tuple(
        RefundTier(int(tier["hours_before"]), int(tier["refund_bps"]))
        for tier in policy.get("tiers", [])
    )
    no_show = policy.get("no_show_fee_bps")
    return ServiceView(
        id=row.id,
        name=row.name,
        policy=row.policy,
        duration_minutes=row.duration_minutes,
        slot_step_minutes=row.slot_step_minutes,
        buffer_before_minutes=row.buffer_before_minutes,
        buffer_after_minutes=row.buffer_after_minutes,
        min_notice_minutes=row.min_notice_minutes,
        max_advance_days=row.max_advance_days,
        min_nights=row.min_nights,
        max_nights=row.max_nights,
        check_in_time=row.check_in_time,
        check_out_time=row.check_out_time,
        min_minutes=row.min_minutes,
        max_minutes=row.max_minutes,
        price=Money(row.price_minor, row.currency.strip()),
        pricing=row.pricing,
        branch_prices=tuple(prices),
        resource_ids=tuple(resource_ids),
        commission_bps=row.commission_bps,
        commission_fixed_minor=row.commission_fixed_minor,
        cancellation_policy=CancellationPolicy(tiers, None if no_show is None else int(no_show)),
        active=row.active,
    )


def _utc_bounds(first: date, last: date) -> tuple[datetime, datetime]:
    start = first if isinstance(first, datetime) else datetime.combine(first, time(), UTC)
    if isinstance(last, datetime):
        end = last
    else:
        end = datetime.combine(last, time(), UTC) + timedelta(days=1)
    return start, end


async def load_schedules(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    resource_ids: Sequence[uuid.UUID],
    first_day_utc: date,
    last_day_utc: date,
    *,
    branch_id: uuid.UUID | None = None,
) -> dict[uuid.UUID, ResourceSchedule]:
    """Weekly hours, date overrides and time off per resource, for a range.

    The range is [first_day_utc, last_day_utc]: aware datetimes are used as given (end
    exclusive); plain dates mean whole UTC days, last day included. Overrides are returned
    for every date within a day of the range (local dates may differ from UTC dates); time
    off is every period overlapping it. With `branch_id`, only weekly hours at that branch
    are returned. Unknown resource ids are absent from the result.
    """
    start, end = _utc_bounds(first_day_utc, last_day_utc)
    ids = list(resource_ids)
    resources = await session.execute(
        select(Resource.id, Resource.capacity).where(
            Resource.tenant_id == tenant_id, Resource.id.in_(ids)
        )
    )
    capacity = dict(resources.tuples().all())
    weekly: dict[uuid.UUID, list[WeeklyWindow]] = defaultdict(list)
    hours_query = select(ResourceHours).where(
        ResourceHours.tenant_id == tenant_id, ResourceHours.resource_id.in_(ids)
    )
    if branch_id is not None:
        hours_query = hours_query.where(ResourceHours.branch_id == branch_id)
    for hours in await session.scalars(
        hours_query.order_by(ResourceHours.weekday, ResourceHours.start_time)
    ):
        weekly[hours.resource_id].append(
            WeeklyWindow(hours.weekday, hours.start_time, hours.end_time, hours.branch_id)
        )
    overrides: dict[uuid.UUID, list[OverrideView]] = defaultdict(list)
    for override in await session.scalars(
        select(ScheduleOverride)
        .where(
            ScheduleOverride.tenant_id == tenant_id,
            ScheduleOverride.resource_id.in_(ids),
            ScheduleOverride.on_date >= (start - DATE_SLACK).date(),
            ScheduleOverride.on_date <= (end + DATE_SLACK).date(),
        )
        .order_by(ScheduleOverride.on_date, ScheduleOverride.start_time)
    ):
        overrides[override.resource_id].append(
            OverrideView(override.on_date, override.closed, override.start_time, override.end_time)
        )
    time_off = await _time_off(session, tenant_id, ids, start, end)
    return {
        resource_id: ResourceSchedule(
            resource_id,
            cap,
            tuple(weekly[resource_id]),
            tuple(overrides[resource_id]),
            tuple(time_off[resource_id]),
        )
        for resource_id, cap in capacity.items()
    }


async def _time_off(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    ids: list[uuid.UUID],
    start: datetime | None,
    end: datetime | None,
) -> dict[uuid.UUID, list[TimeOffView]]:
    query = select(TimeOff).where(TimeOff.tenant_id == tenant_id, TimeOff.resource_id.in_(ids))
    if start is not None and end is not None:
        query = query.where(TimeOff.starts_at < end, TimeOff.ends_at > start)
    found: dict[uuid.UUID, list[TimeOffView]] = defaultdict(list)
    for row in await session.scalars(query.order_by(TimeOff.starts_at)):
        found[row.resource_id].append(
            TimeOffView(row.id, row.resource_id, row.starts_at, row.ends_at, row.reason)
        )
    return found


async def load_full_schedule(
    session: AsyncSession, tenant_id: uuid.UUID, resource: ResourceView
) -> ResourceSchedule:
    """Everything on a resource's calendar, unbounded: for showing and editing it."""
    hours = await session.scalars(
        select(ResourceHours)
        .where(ResourceHours.tenant_id == tenant_id, ResourceHours.resource_id == resource.id)
        .order_by(ResourceHours.weekday, ResourceHours.start_time)
    )
    weekly = tuple(WeeklyWindow(h.weekday, h.start_time, h.end_time, h.branch_id) for h in hours)
    overrides = await session.scalars(
        select(ScheduleOverride)
        .where(ScheduleOverride.tenant_id == tenant_id, ScheduleOverride.resource_id == resource.id)
        .order_by(ScheduleOverride.on_date, ScheduleOverride.start_time)
    )
    dated = tuple(OverrideView(o.on_date, o.closed, o.start_time, o.end_time) for o in overrides)
    time_off = await _time_off(session, tenant_id, [resource.id], None, None)
    return ResourceSchedule(
        resource.id, resource.capacity, weekly, dated, tuple(time_off[resource.id])
    )


async def load_products(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    product_ids: Sequence[uuid.UUID] | None = None,
    *,
    archived: bool | None = None,
) -> list[ProductView]:
    query = select(Product).where(Product.tenant_id == tenant_id)
    if product_ids is not None:
        query = query.where(Product.id.in_(list(product_ids)))
    query = archived_filter(query, Product.active, archived)
    rows = list(await session.scalars(query.order_by(Product.created_at, Product.id)))
    stock: dict[uuid.UUID, list[StockLevel]] = defaultdict(list)
    for level in await session.scalars(
        select(ProductStock)
        .where(
            ProductStock.tenant_id == tenant_id,
            ProductStock.product_id.in_([row.id for row in rows]),
        )
        .order_by(ProductStock.branch_id)
    ):
        stock[level.product_id].append(StockLevel(level.branch_id, level.quantity))
    return [
        ProductView(
            row.id,
            row.name,
            Money(row.price_minor, row.currency.strip()),
            tuple(stock[row.id]),
            row.active,
        )
        for row in rows
    ]


async def load_product(
    session: AsyncSession, tenant_id: uuid.UUID, product_id: uuid.UUID
) -> ProductView:
    found = await load_products(session, tenant_id, [product_id])
    if not found:
        raise NotFound("Product not found", entity="product", id=str(product_id))
    return found[0]


async def branch_states(
    session: AsyncSession, tenant_id: uuid.UUID, branch_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, bool]:
    """Which of these ids are branches of this tenant, each with whether it is active."""
    rows = await session.execute(
        select(Branch.id, Branch.active).where(
            Branch.tenant_id == tenant_id, Branch.id.in_(list(branch_ids))
        )
    )
    return dict(rows.tuples().all())


async def tenant_currency(session: AsyncSession, tenant_id: uuid.UUID) -> str:
    """The business currency: every price in the catalog is in it."""
    tenant = await session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound("Tenant not found", entity="tenant")
    return tenant.currency.strip()
