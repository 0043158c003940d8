"""Catalog edit use cases: partial changes to branches, resources, services and products,
and archiving (never deleting) what bookings, invoices or the ledger may refer to.

Each owns its transaction: set tenant -> lock the row (app.db.lock_all) and read it fresh ->
check the result exactly as a create would -> write -> one audit row with before/after.
Existing bookings keep their own snapshot (price, times, resource), so no edit here alters
one.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import fields, is_dataclass, replace
from datetime import datetime, time
from typing import Any, TypeVar

from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import trail as audit
from app.catalog.checks import MAX_CAPACITY, Problems, check_address, clock_text
from app.catalog.errors import CapacityBelowBookings
from app.catalog.models import (
    RESOURCE_KINDS,
    Branch,
    Product,
    Resource,
    ResourceBranch,
    ResourceHours,
    Service,
    ServiceBranchPrice,
    ServiceResource,
)
from app.catalog.offerings import check_links, service_columns
from app.catalog.patches import UNSET, BranchPatch, ProductPatch, ResourcePatch, ServicePatch
from app.catalog.queries import (
    branch_states,
    branch_view,
    load_product,
    load_resource,
    load_service,
    tenant_currency,
)
from app.catalog.specs import BranchPriceInput, ServiceSpec, TierInput, check_service
from app.catalog.views import BranchView, ProductView, ResourceView, ServiceView
from app.db import TenantScoped, lock_all, retry_on_contention, set_tenant_and_lock_timeout
from app.errors import NotFound
from app.money import Money
from app.tenancy.service import Principal
from app.validation import field_error

LOCK_TIMEOUT_MS = 3000
M = TypeVar("M", bound=TenantScoped)

# The most seats active bookings of a resource hold at once from `now` on: a resource may
# not shrink below what it has already promised.
_PEAK_FROM_NOW = text(
    """
    WITH b AS (
        SELECT blocked, party_size FROM bookings
         WHERE tenant_id = :tenant_id AND resource_id = :resource_id
           AND status IN ('pending_payment', 'confirmed', 'checked_in')
           AND upper(blocked) > :now
    ), p AS (SELECT greatest(lower(blocked), :now) AS at FROM b)
    SELECT coalesce(max((SELECT sum(party_size) FROM b WHERE blocked @> p.at)), 0) FROM p
    """
)


async def _lock(
    session: AsyncSession, model: type[M], tenant_id: uuid.UUID, item_id: uuid.UUID, entity: str
) -> M:
    """The row, locked and read fresh; NotFound when it is not this tenant's."""
    rows = await lock_all(
        session, select(model).where(model.tenant_id == tenant_id, model.id == item_id)
    )
    if not rows:
        raise NotFound(f"{entity.capitalize()} not found", entity=entity, id=str(item_id))
    return rows[0]


def _plain(value: Any) -> Any:
    """A view as JSON for the audit row."""
    if isinstance(value, Money):
        return {"amount_minor": value.amount_minor, "currency": value.currency}
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, time):
        return clock_text(value)
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    return value


def _record(
    session: AsyncSession,
    actor: Principal,
    entity: str,
    entity_id: uuid.UUID,
    before: Any,
    after: Any,
) -> None:
    """One audit row per edit: the fields that changed, before and after."""
    old, new = _plain(before), _plain(after)
    changed = [key for key in new if new[key] != old.get(key)]
    action = "updated"
    if old.get("active") and not new.get("active"):
        action = "archived"
    elif new.get("active") and not old.get("active"):
        action = "restored"
    audit.record(
        session,
        actor.tenant_id,
        audit.Actor.user(actor.user_id),
        f"{entity}.{action}",
        entity,
        entity_id,
        before={key: old.get(key) for key in changed},
        after={key: new[key] for key in changed},
    )


@retry_on_contention()
async def update_branch(
    session: AsyncSession, actor: Principal, branch_id: uuid.UUID, patch: BranchPatch
) -> BranchView:
    problems = Problems()
    name = patch.name if patch.name is UNSET else problems.text(patch.name, "name")
    if patch.timezone is not UNSET:
        problems.timezone(patch.timezone, "timezone")
    address = patch.address if patch.address is UNSET else check_address(problems, patch.address)
    problems.raise_if_any()
    async with session.begin():
        await set_tenant_and_lock_timeout(session, actor.tenant_id, LOCK_TIMEOUT_MS)
        row = await _lock(session, Branch, actor.tenant_id, branch_id, "branch")
        before = branch_view(row)
        if name is not UNSET:
            row.name = name
        if patch.timezone is not UNSET:
            row.timezone = patch.timezone
        if address is not UNSET:
            row.address = address
        if patch.archived is not UNSET:
            row.active = not patch.archived
        await session.flush()
        after = branch_view(row)
        _record(session, actor, "branch", branch_id, before, after)
    return after


def _check_resource(patch: ResourcePatch, problems: Problems) -> None:
    if patch.kind is not UNSET and patch.kind not in RESOURCE_KINDS:
        problems.add("kind", f"must be one of {', '.join(RESOURCE_KINDS)}")
    if patch.capacity is not UNSET:
        problems.int_range(patch.capacity, "capacity", 1, MAX_CAPACITY)
    if patch.commission_bps is not UNSET:
        problems.bps(patch.commission_bps, "commission_bps")
    if patch.branch_ids is not UNSET:
        if not patch.branch_ids:
            problems.add("branch_ids", "must name at least one branch")
        problems.unique(patch.branch_ids, "branch_ids")


@retry_on_contention()
async def update_resource(
    session: AsyncSession,
    actor: Principal,
    resource_id: uuid.UUID,
    patch: ResourcePatch,
    now: datetime,
) -> ResourceView:
    """Rename, re-kind, resize, move between branches, archive or restore a resource.

    The row lock serialises this with capacity-N bookers (they lock the resource too).
    Leaving a branch drops the resource's weekly hours there: they no longer apply."""
    problems = Problems()
    name = patch.name if patch.name is UNSET else problems.text(patch.name, "name")
    _check_resource(patch, problems)
    problems.raise_if_any()
    tenant_id = actor.tenant_id
    async with session.begin():
        await set_tenant_and_lock_timeout(session, tenant_id, LOCK_TIMEOUT_MS)
        row = await _lock(session, Resource, tenant_id, resource_id, "resource")
        before = await load_resource(session, tenant_id, resource_id)
        if patch.branch_ids is not UNSET:
            states = await branch_states(session, tenant_id, patch.branch_ids)
            problems.usable(
                patch.branch_ids, states, "branch_ids", "branch", linked=before.branch_ids
            )
        problems.raise_if_any()
        if patch.capacity is not UNSET and patch.capacity < before.capacity:
            params = {"tenant_id": tenant_id, "resource_id": resource_id, "now": now}
            booked = int((await session.execute(_PEAK_FROM_NOW, params)).scalar_one())
            if booked > patch.capacity:
                raise CapacityBelowBookings(capacity=patch.capacity, booked=booked)
        if name is not UNSET:
            row.name = name
        if patch.kind is not UNSET:
            row.kind = patch.kind
        if patch.capacity is not UNSET:
            row.capacity = patch.capacity
        if patch.commission_bps is not UNSET:
            row.commission_bps = patch.commission_bps
        if patch.archived is not UNSET:
            row.active = not patch.archived
        if patch.branch_ids is not UNSET:
            await _move(session, tenant_id, resource_id, before.branch_ids, patch.branch_ids)
        await session.flush()
        after = await load_resource(session, tenant_id, resource_id)
        _record(session, actor, "resource", resource_id, before, after)
    return after


async def _move(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    resource_id: uuid.UUID,
    current: Sequence[uuid.UUID],
    wanted: Sequence[uuid.UUID],
) -> None:
    left = sorted(set(current) - set(wanted))
    if left:
        for model in (ResourceHours, ResourceBranch):
            await session.execute(
                delete(model).where(
                    model.tenant_id == tenant_id,
                    model.resource_id == resource_id,
                    model.branch_id.in_(left),
                )
            )
    session.add_all(
        [
            ResourceBranch(tenant_id=tenant_id, resource_id=resource_id, branch_id=branch_id)
            for branch_id in sorted(set(wanted) - set(current))
        ]
    )


def _spec_of(view: ServiceView) -> ServiceSpec:
    policy = view.cancellation_policy
    return ServiceSpec(
        name=view.name,
        policy=view.policy,
        price_minor=view.price.amount_minor,
        currency=view.price.currency,
        pricing=view.pricing,
        resource_ids=view.resource_ids,
        duration_minutes=view.duration_minutes,
        slot_step_minutes=view.slot_step_minutes,
        buffer_before_minutes=view.buffer_before_minutes,
        buffer_after_minutes=view.buffer_after_minutes,
        min_notice_minutes=view.min_notice_minutes,
        max_advance_days=view.max_advance_days,
        min_nights=view.min_nights,
        max_nights=view.max_nights,
        check_in_time=clock_text(view.check_in_time),
        check_out_time=clock_text(view.check_out_time),
        min_minutes=view.min_minutes,
        max_minutes=view.max_minutes,
        branch_prices=tuple(
            BranchPriceInput(p.branch_id, p.amount_minor, p.pricing) for p in view.branch_prices
        ),
        commission_bps=view.commission_bps,
        commission_fixed_minor=view.commission_fixed_minor,
        tiers=tuple(TierInput(t.hours_before, t.refund_bps) for t in policy.tiers),
        no_show_fee_bps=policy.no_show_fee_bps,
    )


def _merged(view: ServiceView, patch: ServicePatch) -> ServiceSpec:
    """The service as it would be: the patch's given fields over the current ones."""
    given = {
        f.name: getattr(patch, f.name)
        for f in fields(patch)
        if f.name != "archived" and getattr(patch, f.name) is not UNSET
    }
    return replace(_spec_of(view), **given)


@retry_on_contention()
async def update_service(
    session: AsyncSession, actor: Principal, service_id: uuid.UUID, patch: ServicePatch
) -> ServiceView:
    """Change what a service is and costs from now on, or archive/restore it. Bookings already
    made keep their price snapshot. The policy never changes: that is a new service."""
    tenant_id = actor.tenant_id
    async with session.begin():
        await set_tenant_and_lock_timeout(session, tenant_id, LOCK_TIMEOUT_MS)
        row = await _lock(session, Service, tenant_id, service_id, "service")
        before = await load_service(session, tenant_id, service_id)
        spec = _merged(before, patch)
        if spec.policy != before.policy:
            raise field_error("policy", "cannot change; create a new service and archive this one")
        problems = Problems()
        checked = check_service(spec, problems)
        if patch.currency is not UNSET:
            currency = await tenant_currency(session, tenant_id)
            if spec.currency != currency:
                problems.add("price.currency", f"must be the business currency {currency}")
        await check_links(session, tenant_id, spec, problems, current=before)
        problems.raise_if_any()
        for key, value in service_columns(checked).items():
            setattr(row, key, value)
        if patch.archived is not UNSET:
            row.active = not patch.archived
        await _relink(session, tenant_id, service_id, before, spec)
        await session.flush()
        after = await load_service(session, tenant_id, service_id)
        _record(session, actor, "service", service_id, before, after)
        return after


async def _relink(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    service_id: uuid.UUID,
    before: ServiceView,
    spec: ServiceSpec,
) -> None:
    """Bring service_resources and service_branch_prices to the spec, row by row (the rows
    load_service read are in the session; deleting and re-adding one key would clash)."""
    for resource_id in set(before.resource_ids) - set(spec.resource_ids):
        link = await session.get(ServiceResource, (tenant_id, service_id, resource_id))
        if link is not None:
            await session.delete(link)
    session.add_all(
        [
            ServiceResource(tenant_id=tenant_id, service_id=service_id, resource_id=resource_id)
            for resource_id in sorted(set(spec.resource_ids) - set(before.resource_ids))
        ]
    )
    wanted = {p.branch_id: p for p in spec.branch_prices}
    for old in before.branch_prices:
        price = await session.get(ServiceBranchPrice, (tenant_id, service_id, old.branch_id))
        if price is None:
            continue
        new = wanted.pop(old.branch_id, None)
        if new is None:
            await session.delete(price)
        else:
            price.amount_minor, price.pricing = new.amount_minor, new.pricing
    session.add_all(
        [
            ServiceBranchPrice(
                tenant_id=tenant_id,
                service_id=service_id,
                branch_id=p.branch_id,
                amount_minor=p.amount_minor,
                pricing=p.pricing,
            )
            for p in wanted.values()
        ]
    )


@retry_on_contention()
async def update_product(
    session: AsyncSession, actor: Principal, product_id: uuid.UUID, patch: ProductPatch
) -> ProductView:
    """Rename, reprice, archive or restore a product. Its stock changes only by movements
    (app.catalog.stock); bookings keep the unit price they were sold at."""
    problems = Problems()
    name = patch.name if patch.name is UNSET else problems.text(patch.name, "name")
    if patch.price_minor is not UNSET:
        problems.minor(patch.price_minor, "price.amount_minor")
    problems.raise_if_any()
    tenant_id = actor.tenant_id
    async with session.begin():
        await set_tenant_and_lock_timeout(session, tenant_id, LOCK_TIMEOUT_MS)
        row = await _lock(session, Product, tenant_id, product_id, "product")
        before = await load_product(session, tenant_id, product_id)
        if patch.currency is not UNSET:
            currency = await tenant_currency(session, tenant_id)
            if patch.currency != currency:
                problems.add("price.currency", f"must be the business currency {currency}")
        problems.raise_if_any()
        if name is not UNSET:
            row.name = name
        if patch.price_minor is not UNSET:
            row.price_minor = patch.price_minor
        if patch.archived is not UNSET:
            row.active = not patch.archived
        await session.flush()
        after = await load_product(session, tenant_id, product_id)
        _record(session, actor, "product", product_id, before, after)
    return after
