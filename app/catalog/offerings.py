"""Catalog use cases for what a business sells: services and products."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import trail as audit
from app.catalog.checks import Problems
from app.catalog.models import Product, Service, ServiceBranchPrice, ServiceResource
from app.catalog.queries import (
    branch_states,
    load_branches,
    load_product,
    load_products,
    load_resources,
    load_service,
    load_services,
    tenant_currency,
)
from app.catalog.specs import CheckedService, ServiceSpec, StockInput, check_service
from app.catalog.stock import open_stock
from app.catalog.views import CancellationPolicy, ProductView, ServiceView
from app.db import new_id, set_tenant
from app.errors import NotFound
from app.tenancy.service import Principal, find_tenant_by_slug


async def create_service(session: AsyncSession, actor: Principal, spec: ServiceSpec) -> ServiceView:
    problems = Problems()
    checked = check_service(spec, problems)
    problems.raise_if_any()
    tenant_id = actor.tenant_id
    service_id = new_id()
    async with session.begin():
        await set_tenant(session, tenant_id)
        currency = await tenant_currency(session, tenant_id)
        if spec.currency != currency:
            problems.add("price.currency", f"must be the business currency {currency}")
        await check_links(session, tenant_id, spec, problems)
        problems.raise_if_any()
        await _insert_service(session, tenant_id, service_id, checked, currency)
        audit.record(
            session,
            tenant_id,
            audit.Actor.user(actor.user_id),
            "service.created",
            "service",
            service_id,
            after={
                "name": checked.name,
                "policy": spec.policy,
                "price_minor": spec.price_minor,
                "currency": currency,
            },
        )
        return await load_service(session, tenant_id, service_id)


async def check_links(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    spec: ServiceSpec,
    problems: Problems,
    *,
    current: ServiceView | None = None,
) -> None:
    """The resources and price branches a service names are this tenant's and active; those
    `current` already links may stay even if archived since."""
    found = await load_resources(session, tenant_id, spec.resource_ids)
    problems.usable(
        spec.resource_ids,
        {r.id: r.active for r in found},
        "resource_ids",
        "resource",
        linked=current.resource_ids if current else (),
    )
    price_branches = [p.branch_id for p in spec.branch_prices]
    problems.usable(
        price_branches,
        await branch_states(session, tenant_id, price_branches),
        "branch_prices",
        "branch",
        linked=[p.branch_id for p in current.branch_prices] if current else (),
    )


def service_columns(checked: CheckedService) -> dict[str, Any]:
    """The services row's values a checked spec sets (on create and on edit)."""
    spec = checked.spec
    return {
        "name": checked.name,
        "policy": spec.policy,
        "duration_minutes": spec.duration_minutes,
        "slot_step_minutes": spec.slot_step_minutes,
        "buffer_before_minutes": spec.buffer_before_minutes,
        "buffer_after_minutes": spec.buffer_after_minutes,
        "min_notice_minutes": spec.min_notice_minutes,
        "max_advance_days": spec.max_advance_days,
        "min_nights": spec.min_nights,
        "max_nights": spec.max_nights,
        "check_in_time": checked.check_in,
        "check_out_time": checked.check_out,
        "min_minutes": spec.min_minutes,
        "max_minutes": spec.max_minutes,
        "price_minor": spec.price_minor,
        "pricing": spec.pricing,
        "commission_bps": spec.commission_bps,
        "commission_fixed_minor": spec.commission_fixed_minor,
        "cancellation_policy": _policy_json(checked.cancellation),
    }


async def _insert_service(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    service_id: uuid.UUID,
    checked: CheckedService,
    currency: str,
) -> None:
    spec = checked.spec
    session.add(
        Service(
            tenant_id=tenant_id,
            id=service_id,
            currency=currency,
            active=True,
            **service_columns(checked),
        )
    )
    await session.flush()
    session.add_all(
        [
            ServiceResource(tenant_id=tenant_id, service_id=service_id, resource_id=r)
            for r in spec.resource_ids
        ]
    )
    session.add_all(
        [
            ServiceBranchPrice(
                tenant_id=tenant_id,
                service_id=service_id,
                branch_id=p.branch_id,
                amount_minor=p.amount_minor,
                pricing=p.pricing,
            )
            for p in spec.branch_prices
        ]
    )
    await session.flush()


def _policy_json(policy: CancellationPolicy) -> dict[str, object]:
    return policy.terms()


async def list_services(
    session: AsyncSession, tenant_id: uuid.UUID, *, archived: bool | None = False
) -> list[ServiceView]:
    """`archived`: False (the default) lists active services, True archived ones, None all."""
    async with session.begin():
        await set_tenant(session, tenant_id)
        return await load_services(session, tenant_id, archived=archived)


async def get_service(
    session: AsyncSession, tenant_id: uuid.UUID, service_id: uuid.UUID
) -> ServiceView:
    async with session.begin():
        await set_tenant(session, tenant_id)
        return await load_service(session, tenant_id, service_id)


async def list_public_services(session: AsyncSession, slug: str) -> list[ServiceView]:
    """The active services of the business with this public slug; NotFound if none. Archived
    resources and branches are left out of what each service names."""
    tenant = await find_tenant_by_slug(session, slug)
    if tenant is None:
        raise NotFound("Business not found", entity="tenant", slug=slug)
    async with session.begin():
        await set_tenant(session, tenant.id)
        services = await load_services(session, tenant.id, archived=False)
        resources = {r.id for r in await load_resources(session, tenant.id, archived=False)}
        branches = {b.id for b in await load_branches(session, tenant.id, archived=False)}
    return [
        replace(
            found,
            resource_ids=tuple(r for r in found.resource_ids if r in resources),
            branch_prices=tuple(p for p in found.branch_prices if p.branch_id in branches),
        )
        for found in services
    ]


async def create_product(
    session: AsyncSession,
    actor: Principal,
    *,
    name: str,
    price_minor: int,
    currency: str,
    stock: Sequence[StockInput],
    now: datetime | None = None,
) -> ProductView:
    """A product and its opening stock per branch (each level an opening movement)."""
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
        expected = await tenant_currency(session, tenant_id)
        if currency != expected:
            problems.add("price.currency", f"must be the business currency {expected}")
        states = await branch_states(session, tenant_id, branch_ids)
        problems.usable(branch_ids, states, "stock", "branch")
        problems.raise_if_any()
        session.add(
            Product(
                tenant_id=tenant_id,
                id=product_id,
                name=name,
                price_minor=price_minor,
                currency=expected,
            )
        )
        await session.flush()
        who = audit.Actor.user(actor.user_id)
        for level in stock:
            await open_stock(
                session,
                tenant_id,
                who,
                product_id=product_id,
                branch_id=level.branch_id,
                quantity=level.quantity,
                now=now,
            )
        audit.record(
            session,
            tenant_id,
            who,
            "product.created",
            "product",
            product_id,
            after={"name": name, "price_minor": price_minor},
        )
        return (await load_products(session, tenant_id, [product_id]))[0]


async def list_products(
    session: AsyncSession, tenant_id: uuid.UUID, *, archived: bool | None = False
) -> list[ProductView]:
    """`archived`: False (the default) lists active products, True archived ones, None all."""
    async with session.begin():
        await set_tenant(session, tenant_id)
        return await load_products(session, tenant_id, archived=archived)


async def get_product(
    session: AsyncSession, tenant_id: uuid.UUID, product_id: uuid.UUID
) -> ProductView:
    async with session.begin():
        await set_tenant(session, tenant_id)
        return await load_product(session, tenant_id, product_id)
