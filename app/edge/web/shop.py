"""What a customer may see of one business: branches with opening hours, services with the
price at each branch, products as add-ons, and the payment providers it switched on.

Read models only: no commission terms, no staff emails, no other business. The loader runs
inside a caller's tenant-scoped transaction (see app/edge/web/queries.py, which owns them).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, time
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.models import ResourceHours
from app.catalog.queries import (
    load_branches,
    load_products,
    load_resources,
    load_services,
)
from app.catalog.views import Price, ServiceView, price_for
from app.errors import NotFound
from app.money import Money
from app.tenancy.models import Tenant
from app.tenant_settings.models import DEFAULT_ENABLED, TenantProviderSetting

PAYMENT_PROVIDERS = ("stripe", "kashier", "sandbox", "cash")


@dataclass(frozen=True, slots=True)
class Hours:
    weekday: int  # 0 = Monday
    opens: time
    closes: time


@dataclass(frozen=True, slots=True)
class BranchInfo:
    id: uuid.UUID
    name: str
    timezone: str
    hours: tuple[Hours, ...]
    address: str | None = None

    @property
    def map_url(self) -> str | None:
        """A plain link to the address on OpenStreetMap (nothing is loaded from it)."""
        if not self.address:
            return None
        return "https://www.openstreetmap.org/search?" + urlencode({"query": self.address})

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True, slots=True)
class ResourceInfo:
    id: uuid.UUID
    name: str
    kind: str
    capacity: int
    branch_ids: tuple[uuid.UUID, ...]


@dataclass(frozen=True, slots=True)
class ServiceInfo:
    view: ServiceView
    resources: tuple[ResourceInfo, ...]

    @property
    def id(self) -> uuid.UUID:
        return self.view.id

    @property
    def name(self) -> str:
        return self.view.name

    @property
    def policy(self) -> str:
        return self.view.policy

    def price_at(self, branch_id: uuid.UUID) -> Price:
        return price_for(self.view, branch_id)

    def resources_at(self, branch_id: uuid.UUID) -> tuple[ResourceInfo, ...]:
        return tuple(r for r in self.resources if branch_id in r.branch_ids)

    def offered_at(self, branch_id: uuid.UUID) -> bool:
        return bool(self.resources_at(branch_id))

    def capacity_at(self, branch_id: uuid.UUID) -> int:
        return max((r.capacity for r in self.resources_at(branch_id)), default=0)


@dataclass(frozen=True, slots=True)
class ProductInfo:
    id: uuid.UUID
    name: str
    price: Money
    stock: dict[uuid.UUID, int]

    def in_stock_at(self, branch_id: uuid.UUID) -> int:
        return self.stock.get(branch_id, 0)


@dataclass(frozen=True, slots=True)
class Shop:
    tenant_id: uuid.UUID
    slug: str
    name: str
    currency: str
    timezone: str
    branches: tuple[BranchInfo, ...]
    services: tuple[ServiceInfo, ...]
    products: tuple[ProductInfo, ...]
    providers: tuple[str, ...]

    def branch(self, branch_id: uuid.UUID) -> BranchInfo:
        for branch in self.branches:
            if branch.id == branch_id:
                return branch
        raise NotFound("Branch not found", entity="branch", id=str(branch_id))

    def service(self, service_id: uuid.UUID) -> ServiceInfo:
        for service in self.services:
            if service.id == service_id:
                return service
        raise NotFound("Service not found", entity="service", id=str(service_id))

    def branches_for(self, service: ServiceInfo) -> tuple[BranchInfo, ...]:
        return tuple(b for b in self.branches if service.offered_at(b.id))

    def products_at(self, branch_id: uuid.UUID) -> tuple[ProductInfo, ...]:
        return tuple(p for p in self.products if p.in_stock_at(branch_id) > 0)


# The weekly hours of the given resources at every branch: all opening hours need (one round
# trip, where the catalog's full schedule loader also reads overrides and time off).
_WEEKLY = select(
    ResourceHours.branch_id, ResourceHours.weekday, ResourceHours.start_time, ResourceHours.end_time
).where(
    ResourceHours.tenant_id == bindparam("tenant_id"),
    ResourceHours.resource_id.in_(bindparam("resource_ids", expanding=True)),
)

# Every provider's switch in one round trip; a provider with no row keeps its default, as in
# app.tenant_settings.service.provider_enabled.
_SWITCHES = select(TenantProviderSetting.provider, TenantProviderSetting.enabled).where(
    TenantProviderSetting.tenant_id == bindparam("tenant_id")
)


async def enabled_providers(session: AsyncSession, tenant_id: uuid.UUID) -> tuple[str, ...]:
    switches = dict((await session.execute(_SWITCHES, {"tenant_id": tenant_id})).tuples().all())
    return tuple(
        p
        for p in PAYMENT_PROVIDERS
        if (p in DEFAULT_ENABLED if switches.get(p) is None else bool(switches[p]))
    )


def opening_hours(weekly: list[tuple[int, time, time]]) -> tuple[Hours, ...]:
    """Per weekday, from the earliest start to the latest end of anyone working there."""
    days: dict[int, tuple[time, time]] = {}
    for weekday, start, end in weekly:
        opens, closes = days.get(weekday, (start, end))
        days[weekday] = (min(opens, start), max(closes, end))
    return tuple(Hours(day, *days[day]) for day in sorted(days))


async def load_shop(
    session: AsyncSession, tenant: Tenant, now: datetime, *, complete: bool = True
) -> Shop:
    """Inside the caller's transaction, tenant already set. Archived rows are left out.

    With `complete=False` (the booking step's month and day, which show none of them) the
    opening hours, the products and the payment providers are left empty: three round trips
    fewer on the page customers reload most.
    """
    branches = await load_branches(session, tenant.id, archived=False)
    resources = await load_resources(session, tenant.id, archived=False)
    services = await load_services(session, tenant.id, archived=False)
    products = await load_products(session, tenant.id, archived=False) if complete else []
    weekly: dict[uuid.UUID, list[tuple[int, time, time]]] = defaultdict(list)
    if resources and complete:
        hours = await session.execute(
            _WEEKLY, {"tenant_id": tenant.id, "resource_ids": [r.id for r in resources]}
        )
        for branch_id, weekday, start, end in hours.tuples():
            weekly[branch_id].append((weekday, start, end))
    live_branches = {b.id for b in branches}
    infos = {
        r.id: ResourceInfo(
            r.id, r.name, r.kind, r.capacity, tuple(b for b in r.branch_ids if b in live_branches)
        )
        for r in resources
    }
    providers = await enabled_providers(session, tenant.id) if complete else ()
    return Shop(
        tenant_id=tenant.id,
        slug=tenant.slug,
        name=tenant.name,
        currency=tenant.currency.strip(),
        timezone=tenant.timezone,
        branches=tuple(
            BranchInfo(b.id, b.name, b.timezone, opening_hours(weekly[b.id]), b.address)
            for b in branches
        ),
        services=tuple(
            ServiceInfo(s, tuple(infos[r] for r in s.resource_ids if r in infos)) for s in services
        ),
        products=tuple(
            ProductInfo(
                p.id,
                p.name,
                p.price,
                {level.branch_id: level.quantity for level in p.stock},
            )
            for p in products
        ),
        providers=providers,
    )
