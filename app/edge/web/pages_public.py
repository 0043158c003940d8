"""The front door: `/` (nothing private; demo businesses in development), the sign-in
placeholder and a business's page at `/b/{slug}`."""

from __future__ import annotations

from typing import Any

from litestar import get
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from app.edge.web.config import web_config
from app.edge.web.queries import find_business, get_shop
from app.edge.web.rendering import AnyRequest, now, render


@get("/", include_in_schema=False)
async def home(request: AnyRequest) -> Template:
    config = web_config(request.app.state)
    demos = config.demo_businesses if config.development else ()
    return render(request, "home.html", demos=demos)


@get("/sign-in", include_in_schema=False)
async def sign_in() -> Redirect:
    """The start page's sign-in link leads to the owners' and staff's dashboard."""
    return Redirect("/dashboard/sign-in", status_code=303)


@get("/b/{slug:str}", include_in_schema=False)
async def business(request: AnyRequest, slug: str, session: AsyncSession) -> Template:
    shop = await get_shop(session, await find_business(session, slug), now())
    services: list[dict[str, Any]] = []
    for service in shop.services:
        branches = shop.branches_for(service)
        if not branches:
            continue
        services.append({"service": service, "branches": branches})
    return render(request, "business.html", shop=shop, services=services)
