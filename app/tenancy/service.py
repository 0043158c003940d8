"""Tenancy use cases: sign up a business, authenticate, manage users."""

from __future__ import annotations

import asyncio
import enum
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import or_, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from app.audit import trail as audit
from app.db import lock_all, new_id, retry_on_contention, set_tenant, set_tenant_and_lock_timeout
from app.errors import Conflict, Forbidden, InvalidCredentials, NotFound
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
    """The authenticated caller: ids from the JWT, role and email as the user row has them
    now. `token_version` is the version a token issued for them carries."""

    user_id: uuid.UUID
    tenant_id: uuid.UUID
    role: str
    email: str
    token_version: int = 0


class SlugTaken(Conflict):
    slug = "slug_taken"
    title = "This business slug is already taken"


class EmailTaken(Conflict):
    slug = "email_taken"
    title = "A user with this email already exists in this business"


class CannotDeactivateSelf(Conflict):
    slug = "cannot_deactivate_self"
    title = "You cannot deactivate your own account"


class LastOwner(Conflict):
    slug = "last_owner"
    title = "The business must keep at least one active owner"


class Unset(enum.Enum):
    UNSET = "unset"


UNSET: Literal[Unset.UNSET] = Unset.UNSET


@dataclass(frozen=True, slots=True)
class UserPatch:
    """A partial change to a user: UNSET keeps the value; resource_id None unlinks."""

    email: str | Literal[Unset.UNSET] = UNSET
    role: str | Literal[Unset.UNSET] = UNSET
    resource_id: uuid.UUID | Literal[Unset.UNSET] | None = UNSET
    active: bool | Literal[Unset.UNSET] = UNSET


# The sign-in directory (migration 0032): every user's email, kept in step in the transaction
# that writes the user. On Citus a reference table, so sign-in finds the business without
# asking every shard.
_LIST_EMAIL = text(
    "INSERT INTO login_emails (tenant_id, user_id, email) VALUES (:tenant_id, :user_id, :email)"
)
_MOVE_EMAIL = text(
    "UPDATE login_emails SET email = :email WHERE tenant_id = :tenant_id AND user_id = :user_id"
)


async def _list_email(session: AsyncSession, user: User, *, moved: bool = False) -> None:
    """The user's row in the directory: added (a new user, flushed first: it must exist), or
    moved to the user's new email."""
    await session.flush()
    await session.execute(
        _MOVE_EMAIL if moved else _LIST_EMAIL,
        {"tenant_id": user.tenant_id, "user_id": user.id, "email": user.email.lower()},
    )


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
            owner = User(
                tenant_id=tenant_id,
                id=user_id,
                email=email,
                password_hash=password_hash,
                role="owner",
            )
            session.add(owner)
            await _list_email(session, owner)
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
    so the response never tells whether an email exists. Deactivated users are not
    candidates at all.
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
                user_id=row.user_id,
                tenant_id=row.tenant_id,
                role=row.role,
                email=row.email,
                token_version=row.token_version,
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
            user = User(
                tenant_id=actor.tenant_id,
                id=user_id,
                email=email,
                password_hash=password_hash,
                role=role,
                resource_id=resource_id,
            )
            session.add(user)
            await _list_email(session, user)
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


_USER_STATE = text("SELECT * FROM auth_user_state(:tenant_id, :user_id)")


async def find_principal(
    connection: AsyncConnection, tenant_id: uuid.UUID, user_id: uuid.UUID, token_version: int
) -> Principal | None:
    """The caller a token names, if the token still stands: the user exists, is active and the
    token carries their current version (deactivation bumps it). Role and email come from the
    row, so a role change applies to the next request. One statement, one round trip: it runs
    on every authenticated request, so on a connection in autocommit (a single read needs no
    transaction)."""
    row = (
        await connection.execute(_USER_STATE, {"tenant_id": tenant_id, "user_id": user_id})
    ).first()
    if row is None or not row.active or row.token_version != token_version:
        return None
    return Principal(user_id, tenant_id, row.role, row.email, row.token_version)


def _user_snapshot(user: User) -> dict[str, Any]:
    return {
        "email": user.email,
        "role": user.role,
        "resource_id": str(user.resource_id) if user.resource_id else None,
        "active": user.active,
    }


@retry_on_contention()
async def update_user(
    session: AsyncSession, actor: Principal, user_id: uuid.UUID, patch: UserPatch
) -> User:
    """Change a user's email, role (admin/staff), linked resource, or deactivate/reactivate
    them. Deactivation ends their tokens at once (token_version) and their logins. Nobody
    deactivates themselves; the last active owner is never deactivated; only an owner
    changes an owner."""
    email = patch.email
    if email is not UNSET:
        email = check_email(check_text(email, "email", max_length=254))
    if patch.role is not UNSET and patch.role not in ("admin", "staff"):
        raise field_error("role", "must be admin or staff")
    tenant_id = actor.tenant_id
    try:
        async with session.begin():
            await set_tenant_and_lock_timeout(session, tenant_id, 3000)
            # The user and every owner, in id order: two owners deactivating each other
            # serialise here, and the second sees the first's change.
            rows = await lock_all(
                session,
                select(User)
                .where(User.tenant_id == tenant_id, or_(User.id == user_id, User.role == "owner"))
                .order_by(User.id),
            )
            user = next((row for row in rows if row.id == user_id), None)
            if user is None:
                raise NotFound("User not found", entity="user", id=str(user_id))
            owners = [row for row in rows if row.role == "owner" and row.active]
            await _check_user_change(session, actor, user, patch, owners)
            before = _user_snapshot(user)
            if email is not UNSET:
                user.email = email
            if patch.role is not UNSET:
                user.role = patch.role
            if patch.resource_id is not UNSET:
                user.resource_id = patch.resource_id
            if patch.active is not UNSET and patch.active != user.active:
                user.active = patch.active
                if not patch.active:
                    user.token_version += 1
            await session.flush()
            after = _user_snapshot(user)
            changed = [key for key in after if after[key] != before[key]]
            if "email" in changed:
                await _list_email(session, user, moved=True)
            action = "user.updated"
            if before["active"] != after["active"]:
                action = "user.reactivated" if after["active"] else "user.deactivated"
            audit.record(
                session,
                tenant_id,
                audit.Actor.user(actor.user_id),
                action,
                "user",
                user_id,
                before={key: before[key] for key in changed},
                after={key: after[key] for key in changed},
            )
    except IntegrityError as exc:
        if "uq_users_tenant_email" in str(exc.orig):
            raise EmailTaken(email=email) from None
        raise
    return user


async def _check_user_change(
    session: AsyncSession, actor: Principal, user: User, patch: UserPatch, owners: list[User]
) -> None:
    if user.role == "owner" and actor.role != "owner":
        raise Forbidden("Only an owner may change an owner")
    if patch.role is not UNSET and user.role == "owner" and patch.role != "owner":
        raise field_error("role", "an owner's role cannot change")
    if patch.resource_id is not UNSET and patch.resource_id is not None:
        found = await session.scalar(
            text("SELECT 1 FROM resources WHERE tenant_id = :t AND id = :id"),
            {"t": user.tenant_id, "id": patch.resource_id},
        )
        if found is None:
            raise field_error("resource_id", f"unknown resource: {patch.resource_id}")
    if patch.active is False and user.active:
        if user.id == actor.user_id:
            raise CannotDeactivateSelf()
        if user.role == "owner" and not [o for o in owners if o.id != user.id]:
            raise LastOwner()


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


async def all_tenants(sessions: async_sessionmaker[AsyncSession]) -> list[uuid.UUID]:
    """Every business (a SECURITY DEFINER function: the crons run for each in turn)."""
    async with sessions() as session, session.begin():
        rows = await session.execute(text("SELECT payouts_tenants()"))
        return list(rows.scalars().all())
