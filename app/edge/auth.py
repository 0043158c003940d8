"""JWT authentication: tokens carry the user, tenant and a token version; each request checks
them against the user row (one statement, app.tenancy.service.find_principal), so a
deactivated user's tokens stop at once and a role change applies to the next request."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import structlog
from litestar.connection import ASGIConnection
from litestar.security.jwt import JWTAuth, Token
from sqlalchemy.ext.asyncio import AsyncEngine

from app.tenancy.models import ROLES
from app.tenancy.service import Principal, find_principal

PUBLIC_PATHS = [
    "^/schema",
    "^/health",
    "^/metrics",
    "^/public/",
    "^/webhooks/",
    "^/sandbox/",
    "^/pay/",
    "^/api/v1/signup$",
    "^/api/v1/auth/token$",
    "^/favicon.ico$",
]


async def principal_from_token(
    token: Token, connection: ASGIConnection[Any, Any, Any, Any]
) -> Principal | None:
    extras = token.extras
    try:
        user_id = uuid.UUID(token.sub)
        tenant_id = uuid.UUID(str(extras["tenant_id"]))
        # Tokens issued before versions existed carry none: version 0, the starting one.
        version = int(extras.get("tv", 0))
    except (KeyError, ValueError, TypeError):
        return None
    # A connection of the request pool in autocommit, no ORM session: this runs on every
    # authenticated request.
    engine: AsyncEngine = connection.app.state.engine
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        principal = await find_principal(conn, tenant_id, user_id, version)
    if principal is None or principal.role not in ROLES:
        return None
    structlog.contextvars.bind_contextvars(
        tenant_id=str(principal.tenant_id), user_id=str(principal.user_id)
    )
    return principal


def build_jwt_auth(secret: str, ttl_seconds: int) -> JWTAuth[Principal, Token]:
    return JWTAuth[Principal, Token](
        retrieve_user_handler=principal_from_token,
        token_secret=secret,
        exclude=PUBLIC_PATHS,
        default_token_expiration=timedelta(seconds=ttl_seconds),
        algorithm="HS256",
    )


def issue_token(jwt_auth: JWTAuth[Principal, Token], principal: Principal) -> str:
    return jwt_auth.create_token(
        identifier=str(principal.user_id),
        token_extras={
            "tenant_id": str(principal.tenant_id),
            "role": principal.role,
            "email": principal.email,
            "tv": principal.token_version,
        },
    )
