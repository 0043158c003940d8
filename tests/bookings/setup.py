"""Catalog rows for booking tests, written directly as the owner (fast, and independent of the
catalog routes, which have their own tests)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.bookings.rules import BookingRequest, Customer, LineItem, Recurrence

# A fixed clock for use-case tests: bookings are made for days after it.
NOW = datetime(2030, 1, 1, 8, 0, tzinfo=UTC)
CAIRO = ZoneInfo("Africa/Cairo")


@dataclass
class Shop:
    tenant_id: uuid.UUID
    branch_id: uuid.UUID
    service_id: uuid.UUID
    resource_ids: list[uuid.UUID]
    tz: ZoneInfo
    product_ids: list[uuid.UUID] = field(default_factory=list)

    @property
    def resource_id(self) -> uuid.UUID:
        return self.resource_ids[0]

    def at(self, day: date, hour: int, minute: int = 0) -> datetime:
        return datetime.combine(day, time(hour, minute), tzinfo=self.tz)

    def request(self, start: datetime, **overrides: Any) -> BookingRequest:
        values: dict[str, Any] = {
            "service_id": self.service_id,
            "branch_id": self.branch_id,
            "start": start,
            "customer": Customer("Layla Hassan", "layla@example.com", "+20 100 000 0000"),
            "provider": "cash",
            "resource_id": self.resource_id,
        }
        values.update(overrides)
        return BookingRequest(**values)


async def make_tenant(
    owner: AsyncEngine,
    *,
    currency: str = "EGP",
    timezone: str = "Africa/Cairo",
    slug: str | None = None,
) -> uuid.UUID:
    tenant_id = uuid.uuid4()
    async with owner.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO tenants (id, slug, name, currency, timezone) "
                "VALUES (:id, :slug, 'Test', :cur, :tz)"
            ),
            {
                "id": tenant_id,
                "slug": slug or f"t-{tenant_id.hex[:12]}",
                "cur": currency,
                "tz": timezone,
            },
        )

    return tenant_id


async def make_shop(
    owner: AsyncEngine,
    tenant_id: uuid.UUID | None = None,
    *,
    policy: str = "time_slot",
    capacity: int = 1,
    resources: int = 1,
    timezone: str = "Africa/Cairo",
    hours: tuple[time, time] = (time(9), time(17)),
    price_minor: int = 10_000,
    pricing: str | None = None,
    products: int = 0,
    stock: int = 10,
    **service: Any,
) -> Shop:
    tenant_id = tenant_id or await make_tenant(owner, timezone=timezone)
    async with owner.begin() as conn:
        # The online providers a business switches on in its settings.
        await conn.execute(
            text(
                "INSERT INTO tenant_provider_settings (tenant_id, id, provider, enabled) "
                "SELECT :id, gen_random_uuid(), p, true "
                "FROM unnest(ARRAY['stripe', 'kashier', 'sandbox', 'cash']) AS p "
                "ON CONFLICT (tenant_id, provider) DO UPDATE SET enabled = true"
            ),
            {"id": tenant_id},
        )
    branch_id, service_id = uuid.uuid4(), uuid.uuid4()
    resource_ids = sorted(uuid.uuid4() for _ in range(resources))
    fields: dict[str, Any] = {"duration_minutes": 60, "slot_step_minutes": 60}
    if policy == "nightly":
        fields = {
            "check_in_time": time(15),
            "check_out_time": time(11),
            "min_nights": 1,
            "max_nights": 14,
        }
    elif policy == "interval":
        fields = {"slot_step_minutes": 30, "min_minutes": 60, "max_minutes": 480}
    fields.update(service)
    pricing = pricing or {"nightly": "nightly", "interval": "hourly"}.get(policy, "fixed")
    p = {"t": tenant_id, "b": branch_id, "s": service_id}
    async with owner.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO branches (tenant_id, id, name, timezone) VALUES (:t, :b, 'Main', :tz)"
            ),
            {**p, "tz": timezone},
        )
        columns = ", ".join(fields)
        values = ", ".join(f":{k}" for k in fields)
        await conn.execute(
            text(
                "INSERT INTO services (tenant_id, id, name, policy, price_minor, currency, "
                f"pricing, {columns}) "
                f"VALUES (:t, :s, 'Service', :policy, :price, 'EGP', :pricing, {values})"
            ),
            {**p, "policy": policy, "price": price_minor, "pricing": pricing, **fields},
        )
        for rid in resource_ids:
            await conn.execute(
                text(
                    "INSERT INTO resources (tenant_id, id, name, kind, capacity) "
                    "VALUES (:t, :r, 'R', 'room', :cap)"
                ),
                {**p, "r": rid, "cap": capacity},
            )
            await conn.execute(
                text("INSERT INTO resource_branches VALUES (:t, :r, :b)"), {**p, "r": rid}
            )
            await conn.execute(
                text("INSERT INTO service_resources VALUES (:t, :s, :r)"), {**p, "r": rid}
            )
            for weekday in range(7):
                await conn.execute(
                    text(
                        "INSERT INTO resource_hours (tenant_id, id, resource_id, branch_id, "
                        "weekday, start_time, end_time) VALUES (:t, :id, :r, :b, :wd, :st, :en)"
                    ),
                    {
                        **p,
                        "id": uuid.uuid4(),
                        "r": rid,
                        "wd": weekday,
                        "st": hours[0],
                        "en": hours[1],
                    },
                )
        product_ids = []
        for number in range(products):
            pid = uuid.uuid4()
            await conn.execute(
                text(
                    "INSERT INTO products (tenant_id, id, name, price_minor, currency) "
                    "VALUES (:t, :p, :n, 2500, 'EGP')"
                ),
                {**p, "p": pid, "n": f"P{number}"},
            )
            await conn.execute(
                text("INSERT INTO product_stock VALUES (:t, :p, :b, :q)"),
                {**p, "p": pid, "q": stock},
            )
            product_ids.append(pid)
    return Shop(
        tenant_id, branch_id, service_id, resource_ids, ZoneInfo(timezone), sorted(product_ids)
    )


def day(offset: int) -> date:
    """A local date `offset` days after NOW's date."""
    return NOW.date() + timedelta(days=offset)


__all__ = ["NOW", "LineItem", "Recurrence", "Shop", "day", "make_shop", "make_tenant"]
