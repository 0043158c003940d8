"""Signing in and out of the dashboard: the API's authenticate use case behind the same rate
limits as POST /api/v1/auth/token; the session is that same access token in a cookie."""

from __future__ import annotations

from typing import Any

from litestar import Response, get, post
from litestar.response import Redirect
from sqlalchemy.ext.asyncio import AsyncSession

from app.edge import ratelimit
from app.edge.web.dashboard.session import (
    PRESESSION,
    PRESESSION_COOKIE,
    SESSION_COOKIE,
    expired_cookie,
    new_nonce,
    presession_cookie,
    presession_token,
    session_principal,
    start_session,
)
from app.edge.web.rendering import AnyRequest, render
from app.errors import InvalidCredentials, RateLimited
from app.presentation.i18n import N_
from app.tenancy import service

HOME = "/dashboard/calendar"


def safe_next(target: str | None) -> str:
    """Only a dashboard path of this site (never `//host` or a scheme)."""
    if not target or not target.startswith("/dashboard/") or target.startswith("//"):
        return HOME
    if "\\" in target or any(ord(c) < 32 for c in target):
        return HOME
    return target


def _form(
    request: AnyRequest, *, email: str = "", error: str | None = None, status: int = 200
) -> Response[Any]:
    nonce = new_nonce()
    response = render(
        request,
        "dashboard/sign_in.html",
        status=status,
        email=email,
        error=error,
        next=safe_next(request.query_params.get("next")),
        csrf=presession_token(request, nonce),
    )
    response.cookies.append(presession_cookie(request, nonce))
    response.headers["Cache-Control"] = "no-store"
    return response


@get("/sign-in", include_in_schema=False)
async def sign_in_form(request: AnyRequest) -> Response[Any]:
    if await session_principal(request) is not None:
        return Redirect(safe_next(request.query_params.get("next")), status_code=303)
    return _form(request)


@post("/sign-in", include_in_schema=False, opt={PRESESSION: True})
async def sign_in(request: AnyRequest, session: AsyncSession) -> Response[Any]:
    form = await request.form()
    email = str(form.get("email") or "").strip()[:320]
    password = str(form.get("password") or "")[:1024]
    business = str(form.get("business") or "").strip()[:100] or None
    if not email or not password:
        return _form(request, email=email, error=N_("Enter your email and password."), status=422)
    address = ratelimit.client_address(request)
    try:
        async with ratelimit.counting_login(request.app.state, address, email, InvalidCredentials):
            user = await service.authenticate(
                session, email=email, password=password, tenant_slug=business
            )
    except InvalidCredentials:
        return _form(
            request, email=email, error=N_("That email and password do not match."), status=401
        )
    except RateLimited as limited:
        response = _form(
            request,
            email=email,
            error=N_("Too many attempts. Wait a few minutes and try again."),
            status=429,
        )
        response.headers["Retry-After"] = str(limited.retry_after)
        return response
    redirect = Redirect(safe_next(str(form.get("next") or "")), status_code=303)
    redirect.cookies.append(start_session(request, user))
    redirect.cookies.append(expired_cookie(request, PRESESSION_COOKIE))
    return redirect


@post("/sign-out", include_in_schema=False)
async def sign_out(request: AnyRequest) -> Response[Any]:
    redirect = Redirect("/dashboard/sign-in", status_code=303)
    redirect.cookies.append(expired_cookie(request, SESSION_COOKIE))
    return redirect


@get("/", include_in_schema=False)
async def home() -> Redirect:
    return Redirect(HOME, status_code=303)
