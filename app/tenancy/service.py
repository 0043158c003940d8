"""Tenancy use cases: sign up a business, authenticate, manage users."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app import audit
from app.db import new_id, set_tenant
from app.errors import Conflict, InvalidCredentials, NotFound
from app.money import check_currency
from app.tenancy.models import Tenant, User
from app.tenancy.passwords import burn_verification, hash_password, verify_password
from app.validation import (
    check_email,
    check_password,
    check_slug,
    check_text,
    check_timezone,
    field_error,
)


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller, as the JWT states it."""

    user_id: uuid.UUID
    tenant_id: uuid.UUID
    role: str
    email: str


class SlugTaken(Conflict):
    slug = "slug_taken"
    title = "This business slug is already taken"


class EmailTaken(Conflict):
    slug = "email_taken"
    title = "A user with this email already exists in this business"


async def sign_up(
    session: AsyncSession,
    *,
    business_name: str,
    slug: str,
    email: str,
    password: str,
    currency: str,
    timezone: str,
) -> Principal:
    """Create a tenant and its owner in one transaction."""
    name = check_text(business_name, "business_name")
    slug = check_slug(slug)
    email = check_email(email)
    check_password(password)
    try:
        check_currency(currency)
    except Exception:
        raise field_error("currency", f"unsupported currency {currency!r}") from None
    check_timezone(timezone)
    password_hash = await asyncio.to_thread(hash_password, password)
    tenant_id, user_id = new_id(), new_id()
    try:
        async with session.begin():
            await set_tenant(session, tenant_id)
            session.add(
                Tenant(id=tenant_id, slug=slug, name=name, currency=currency, timezone=timezone)
            )
            await session.flush()
            session.add(
                User(
                    tenant_id=tenant_id,
                    id=user_id,
                    email=email,
                    password_hash=password_hash,
                    role="owner",
                )
            )
            audit.record(
                session,
                tenant_id,
                audit.Actor.user(user_id),
                "tenant.created",
                "tenant",
                tenant_id,
                after={"slug": slug, "name": name},
            )
    except IntegrityError as exc:
        if "uq_tenants_slug" in str(exc.orig):
            raise SlugTaken(slug=slug) from None
        raise
    return Principal(user_id=user_id, tenant_id=tenant_id, role="owner", email=email)


async def authenticate(
    session: AsyncSession, *, email: str, password: str, tenant_slug: str | None = None
) -> Principal:
    """Find the user by email (optionally within one business) and check the password.

    Every failure is the same InvalidCredentials after the same amount of hashing work,
    so the response never tells whether an email exists.
    """
    async with session.begin():
        rows = (
            await session.execute(
                text("SELECT * FROM auth_login_candidates(:email)"), {"email": email.strip()}
            )
        ).all()
    if tenant_slug:
        rows = [row for row in rows if row.slug == tenant_slug]
    for row in rows:
        if await asyncio.to_thread(verify_password, row.password_hash, password):
            return Principal(
                user_id=row.user_id, tenant_id=row.tenant_id, role=row.role, email=row.email
            )
    if not rows:
        await asyncio.to_thread(burn_verification, password)
    raise InvalidCredentials()


async def create_user(
    session: AsyncSession,
    actor: Principal,
    *,
    email: str,
    password: str,
    role: str,
    resource_id: uuid.UUID | None = None,
) -> Principal:
    email = check_email(email)
    check_password(password)
    if role not in ("admin", "staff"):
        raise field_error("role", "must be admin or staff")
    password_hash = await asyncio.to_thread(hash_password, password)
    user_id = new_id()
    try:
        async with session.begin():
            await set_tenant(session, actor.tenant_id)
            session.add(
                User(
                    tenant_id=actor.tenant_id,
                    id=user_id,
                    email=email,
                    password_hash=password_hash,
                    role=role,
                    resource_id=resource_id,
                )
            )
            audit.record(
                session,
                actor.tenant_id,
                audit.Actor.user(actor.user_id),
                "user.created",
                "user",
                user_id,
                after={"email": email, "role": role},
            )
    except IntegrityError as exc:
        if "uq_users_tenant_email" in str(exc.orig):
            raise EmailTaken(email=email) from None
        raise
    return Principal(user_id=user_id, tenant_id=actor.tenant_id, role=role, email=email)


async def get_user(session: AsyncSession, tenant_id: uuid.UUID, user_id: uuid.UUID) -> User:
    async with session.begin():
        await set_tenant(session, tenant_id)
        user = await session.get(User, (tenant_id, user_id))
    if user is None:
        raise NotFound("User not found", entity="user", id=str(user_id))
    return user


async def list_users(session: AsyncSession, tenant_id: uuid.UUID) -> list[User]:
    async with session.begin():
        await set_tenant(session, tenant_id)
        return list((await session.scalars(select(User).order_by(User.created_at))).all())


async def get_tenant(session: AsyncSession, tenant_id: uuid.UUID) -> Tenant:
    async with session.begin():
        await set_tenant(session, tenant_id)
        tenant = await session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound("Tenant not found", entity="tenant")
    return tenant


async def find_tenant_by_slug(session: AsyncSession, slug: str) -> Tenant | None:
    async with session.begin():
        row = (
            await session.execute(text("SELECT * FROM tenant_by_slug(:slug)"), {"slug": slug})
        ).first()
    if row is None:
        return None
    return Tenant(
        id=row.id, slug=row.slug, name=row.name, currency=row.currency, timezone=row.timezone
    )
