"""Demo data for `reckon dev` / `reckon seed-demo`: a salon in EGP and a cabin rental in USD.

Seeding is idempotent: an existing demo tenant is left as it is.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.catalog import offerings
from app.catalog import service as catalog
from app.catalog.specs import ServiceSpec, StockInput, TierInput, WeeklyInput
from app.cli.demo_history import DemoCatalog, Offer, seed_history
from app.db import create_engine, session_factory
from app.gateways.webpush import VapidKeys, generate_vapid_keys
from app.settings import Settings
from app.tenancy import service as tenancy
from app.tenancy.demo import DEMO_TENANTS, DemoTenant

DEMO_PASSWORD = "reckon-demo-2026"


@dataclass(frozen=True)
class Credential:
    business: str
    slug: str
    role: str
    email: str
    password: str


def _email(role: str, tenant: DemoTenant) -> str:
    return f"{role}@{tenant.slug}.demo"


def _commit_without_waiting_for_disk(dbapi_connection: Any, _: Any) -> None:
    # Thousands of small history transactions: demo data is not worth an fsync each (a crash
    # while seeding loses the last few, and the next `reckon dev` starts from a fresh tenant).
    cursor = dbapi_connection.cursor()
    cursor.execute("SET synchronous_commit = off")
    cursor.close()
    dbapi_connection.commit()


async def seed_demo(settings: Settings) -> list[Credential]:
    engine = create_engine(settings.runtime_database_url, pool_size=2, max_overflow=0)
    event.listen(engine.sync_engine, "connect", _commit_without_waiting_for_disk)
    sessions = session_factory(engine)
    try:
        # The businesses share nothing: seeded side by side.
        await asyncio.gather(*(_seed_tenant(sessions, tenant) for tenant in DEMO_TENANTS))
    finally:
        await engine.dispose()
    return [
        Credential(tenant.name, tenant.slug, role, _email(role, tenant), DEMO_PASSWORD)
        for tenant in DEMO_TENANTS
        for role in ("owner", "admin", "staff")
    ]


async def _seed_tenant(factory: async_sessionmaker[AsyncSession], tenant: DemoTenant) -> None:
    async with factory() as session:
        if await tenancy.find_tenant_by_slug(session, tenant.slug) is not None:
            return
    async with factory() as session:
        owner = await tenancy.sign_up(
            session,
            business_name=tenant.name,
            slug=tenant.slug,
            email=_email("owner", tenant),
            password=DEMO_PASSWORD,
            currency=tenant.currency,
            timezone=tenant.timezone,
        )
    for role in ("admin", "staff"):
        async with factory() as session:
            await tenancy.create_user(
                session, owner, email=_email(role, tenant), password=DEMO_PASSWORD, role=role
            )
    catalog = await seed_catalog(factory, owner, tenant)
    await seed_history(factory, owner, catalog, datetime.now(UTC))


async def seed_catalog(
    sessions: async_sessionmaker[AsyncSession], owner: tenancy.Principal, tenant: DemoTenant
) -> DemoCatalog:
    """A branch, resources with working hours, services and a product for each demo tenant;
    what the history books (demo_history.py)."""
    if tenant.currency == "EGP":
        return await _seed_salon(sessions, owner)
    return await _seed_cabins(sessions, owner)


async def _resource(
    sessions: async_sessionmaker[AsyncSession],
    owner: tenancy.Principal,
    branch_id: uuid.UUID,
    name: str,
    kind: str,
    capacity: int,
    hours: tuple[str, str],
    days: range,
    commission_bps: int | None = None,
) -> uuid.UUID:
    async with sessions() as session:
        resource = await catalog.create_resource(
            session,
            owner,
            name=name,
            kind=kind,
            capacity=capacity,
            branch_ids=[branch_id],
            commission_bps=commission_bps,
        )
    weekly = [WeeklyInput(day, hours[0], hours[1], branch_id) for day in days]
    async with sessions() as session:
        await catalog.set_schedule(session, owner, resource.id, weekly=weekly, overrides=[])
    return resource.id


async def _branch(
    sessions: async_sessionmaker[AsyncSession],
    owner: tenancy.Principal,
    name: str,
    timezone: str,
    address: str,
) -> uuid.UUID:
    async with sessions() as session:
        created = await catalog.create_branch(
            session, owner, name=name, timezone=timezone, address=address
        )
        return created.id


async def _service(
    sessions: async_sessionmaker[AsyncSession], owner: tenancy.Principal, spec: ServiceSpec
) -> uuid.UUID:
    async with sessions() as session:
        created = await offerings.create_service(session, owner, spec)
    return created.id


async def _seed_salon(
    sessions: async_sessionmaker[AsyncSession], owner: tenancy.Principal
) -> DemoCatalog:
    branch = await _branch(
        sessions, owner, "Zamalek", "Africa/Cairo", "12 Shagaret El Dorr St, Zamalek, Cairo"
    )
    mona = await _resource(
        sessions,
        owner,
        branch,
        "Mona (stylist)",
        "staff",
        1,
        ("10:00", "20:00"),
        range(0, 6),
        commission_bps=3000,
    )
    omar = await _resource(
        sessions,
        owner,
        branch,
        "Omar (barber)",
        "staff",
        1,
        ("10:00", "20:00"),
        range(1, 7),
        commission_bps=2500,
    )
    studio = await _resource(
        sessions, owner, branch, "Yoga studio", "room", 12, ("07:00", "21:00"), range(0, 7)
    )
    tiers = (TierInput(24, 10_000), TierInput(2, 5_000))
    haircut = await _service(
        sessions,
        owner,
        ServiceSpec(
            name="Haircut & blow-dry",
            policy="time_slot",
            price_minor=35_000,
            currency="EGP",
            pricing="fixed",
            resource_ids=(mona, omar),
            duration_minutes=45,
            slot_step_minutes=15,
            buffer_after_minutes=10,
            min_notice_minutes=60,
            tiers=tiers,
            no_show_fee_bps=5_000,
        ),
    )
    beard = await _service(
        sessions,
        owner,
        ServiceSpec(
            name="Beard trim",
            policy="time_slot",
            price_minor=15_000,
            currency="EGP",
            pricing="fixed",
            resource_ids=(omar,),
            duration_minutes=20,
            slot_step_minutes=20,
        ),
    )
    yoga = await _service(
        sessions,
        owner,
        ServiceSpec(
            name="Morning yoga class",
            policy="time_slot",
            price_minor=20_000,
            currency="EGP",
            pricing="fixed",
            resource_ids=(studio,),
            duration_minutes=60,
            slot_step_minutes=60,
        ),
    )
    async with sessions() as session:
        await offerings.create_product(
            session,
            owner,
            name="Argan oil shampoo",
            price_minor=45_000,
            currency="EGP",
            stock=[StockInput(branch, 20)],
        )
    offers = (
        Offer(haircut, mona, 11, 0, weekdays=frozenset(range(0, 6))),
        Offer(haircut, mona, 16, 0, weekdays=frozenset(range(0, 6)), every=3),
        Offer(haircut, omar, 14, 0, weekdays=frozenset(range(1, 7)), every=2),
        Offer(beard, omar, 17, 0, weekdays=frozenset(range(1, 7)), every=3),
        Offer(yoga, studio, 8, 0, every=4),
    )
    return DemoCatalog(owner.tenant_id, branch, ZoneInfo("Africa/Cairo"), offers, "EGP")


async def _seed_cabins(
    sessions: async_sessionmaker[AsyncSession], owner: tenancy.Principal
) -> DemoCatalog:
    branch = await _branch(
        sessions, owner, "Pine Ridge", "America/Denver", "4410 County Road 43, Estes Park, CO"
    )
    cabins = [
        await _resource(sessions, owner, branch, name, "unit", 1, ("00:00", "23:59"), range(0, 7))
        for name in ("Cabin Aspen", "Cabin Spruce")
    ]
    kayaks = await _resource(
        sessions, owner, branch, "Kayak fleet", "equipment", 4, ("08:00", "18:00"), range(0, 7)
    )
    stay = await _service(
        sessions,
        owner,
        ServiceSpec(
            name="Cabin stay",
            policy="nightly",
            price_minor=18_500,
            currency="USD",
            pricing="nightly",
            resource_ids=tuple(cabins),
            check_in_time="15:00",
            check_out_time="11:00",
            min_nights=2,
            max_nights=14,
            tiers=(TierInput(168, 10_000), TierInput(48, 5_000)),
        ),
    )
    kayak = await _service(
        sessions,
        owner,
        ServiceSpec(
            name="Kayak rental",
            policy="interval",
            price_minor=2_500,
            currency="USD",
            pricing="hourly",
            resource_ids=(kayaks,),
            slot_step_minutes=30,
            min_minutes=60,
            max_minutes=480,
        ),
    )
    offers = (
        Offer(stay, cabins[0], 12, 0, nights=2, every=4),
        Offer(stay, cabins[1], 12, 0, nights=3, every=5),
        Offer(kayak, kayaks, 10, 120, every=3),
    )
    return DemoCatalog(owner.tenant_id, branch, ZoneInfo("America/Denver"), offers, "USD")


def dev_vapid_keys(data_dir: Path) -> VapidKeys:
    """Web Push keys for development: made once and kept in the data directory (readable by
    this user only), so a browser's subscription survives restarts. Production sets
    VAPID_PUBLIC_KEY / VAPID_PRIVATE_KEY itself."""
    path = data_dir / "vapid.json"
    if path.exists():
        stored = json.loads(path.read_text(encoding="utf-8"))
        return VapidKeys(stored["public_key"], stored["private_key"])
    keys = generate_vapid_keys()
    data_dir.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump({"public_key": keys.public_key, "private_key": keys.private_key}, handle)
    return keys


def print_credentials(credentials: list[Credential]) -> None:
    rows = [("Business", "Slug", "Role", "Email", "Password")]
    rows += [(c.business, c.slug, c.role, c.email, c.password) for c in credentials]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    line = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    print("\nDemo accounts (POST /api/v1/auth/token with email + password):")
    print(line)
    for index, row in enumerate(rows):
        print("| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) + " |")
        if index == 0:
            print(line)
    print(line)
