"""Sign up, tokens, the current user and user management.

Sign-up and login are rate limited per client address and per account (app/edge/ratelimit.py)
before any password is hashed; login counts only failed attempts against the account.
"""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Request, Response, Router, get, patch, post
from sqlalchemy.ext.asyncio import AsyncSession

from app.edge import ratelimit
from app.edge.auth import issue_token
from app.edge.http import idempotent, manager_only, principal
from app.errors import InvalidCredentials, ValidationFailed
from app.tenancy import service
from app.tenancy.models import User
from app.tenancy.schemas import (
    MeOut,
    SignUpIn,
    SignUpOut,
    TokenIn,
    TokenOut,
    UserIn,
    UserOut,
    UserPatchIn,
)


@post("/signup", status_code=201)
async def sign_up(
    request: Request[Any, Any, Any], data: SignUpIn, session: AsyncSession
) -> SignUpOut:
    address = ratelimit.client_address(request)
    async with ratelimit.counting_signup(request.app.state, address, data.email, ValidationFailed):
        owner = await service.sign_up(
            session,
            business_name=data.business_name,
            slug=data.slug,
            email=data.email,
            password=data.password,
            currency=data.currency,
            timezone=data.timezone,
        )
    token = issue_token(request.app.state.jwt_auth, owner)
    return SignUpOut(tenant_id=owner.tenant_id, slug=data.slug, access_token=token)


@post("/auth/token", status_code=200)
async def create_token(
    request: Request[Any, Any, Any], data: TokenIn, session: AsyncSession
) -> TokenOut:
    address = ratelimit.client_address(request)
    async with ratelimit.counting_login(request.app.state, address, data.email, InvalidCredentials):
        user = await service.authenticate(
            session, email=data.email, password=data.password, tenant_slug=data.tenant
        )
    jwt_auth = request.app.state.jwt_auth
    return TokenOut(
        access_token=issue_token(jwt_auth, user),
        expires_in=int(jwt_auth.default_token_expiration.total_seconds()),
    )


@get("/me")
async def me(request: Request[Any, Any, Any]) -> MeOut:
    user = principal(request)
    return MeOut(user_id=user.user_id, tenant_id=user.tenant_id, role=user.role, email=user.email)


@post("/users", guards=[manager_only])
async def create_user(
    request: Request[Any, Any, Any], data: UserIn, session: AsyncSession
) -> Response[bytes]:
    actor = principal(request)

    async def run() -> tuple[int, Any]:
        user = await service.create_user(
            session,
            actor,
            email=data.email,
            password=data.password,
            role=data.role,
            resource_id=data.resource_id,
        )
        return 201, UserOut(
            id=user.user_id, email=user.email, role=user.role, resource_id=data.resource_id
        )

    return await idempotent(request, actor.tenant_id, run)


def _user_out(user: User) -> UserOut:
    return UserOut(
        id=user.id,
        email=user.email,
        role=user.role,
        resource_id=user.resource_id,
        active=user.active,
    )


@get("/users", guards=[manager_only])
async def list_users(request: Request[Any, Any, Any], session: AsyncSession) -> list[UserOut]:
    actor = principal(request)
    users = await service.list_users(session, actor.tenant_id)
    return [_user_out(u) for u in users]


@patch("/users/{user_id:uuid}", guards=[manager_only])
async def update_user(
    request: Request[Any, Any, Any], user_id: uuid.UUID, data: UserPatchIn, session: AsyncSession
) -> UserOut:
    user = await service.update_user(session, principal(request), user_id, data.patch())
    return _user_out(user)


def router() -> Router:
    return Router(
        path="/api/v1",
        route_handlers=[sign_up, create_token, me, create_user, list_users, update_user],
        tags=["tenancy"],
    )
