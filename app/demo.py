"""Demo data for `reckon dev` / `reckon seed-demo`: a salon in EGP and a cabin rental in USD.

Seeding is idempotent: an existing demo tenant is left as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.db import create_engine, session_factory
from app.settings import Settings
from app.tenancy import service as tenancy

DEMO_PASSWORD = "reckon-demo-2026"


@dataclass(frozen=True)
class DemoTenant:
    name: str
    slug: str
    currency: str
    timezone: str


@dataclass(frozen=True)
class Credential:
    business: str
    slug: str
    role: str
    email: str
    password: str


DEMO_TENANTS = [
    DemoTenant("Nile Hair & Beauty", "nile-salon", "EGP", "Africa/Cairo"),
    DemoTenant("Pine Ridge Cabins", "pine-cabins", "USD", "America/Denver"),
]


def _email(role: str, tenant: DemoTenant) -> str:
    return f"{role}@{tenant.slug}.demo"


async def seed_demo(settings: Settings) -> list[Credential]:
    engine = create_engine(settings.runtime_database_url, pool_size=2, max_overflow=0)
    sessions = session_factory(engine)
    credentials: list[Credential] = []
    try:
        for tenant in DEMO_TENANTS:
            await _seed_tenant(sessions, tenant)
            credentials.extend(
                Credential(tenant.name, tenant.slug, role, _email(role, tenant), DEMO_PASSWORD)
                for role in ("owner", "admin", "staff")
            )
    finally:
        await engine.dispose()
    return credentials


async def _seed_tenant(sessions: object, tenant: DemoTenant) -> None:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    assert isinstance(sessions, async_sessionmaker)
    factory: async_sessionmaker[AsyncSession] = sessions
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
    async with factory() as session:
        await seed_catalog(session, owner, tenant)


async def seed_catalog(session: object, owner: tenancy.Principal, tenant: DemoTenant) -> None:
    """Branches, resources and services for the demo; filled in once the catalog exists."""
    return None


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
