"""GET/PUT /api/v1/settings/providers (owner/admin)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from litestar import Request, Router, get, put
from sqlalchemy.ext.asyncio import AsyncSession

from app.edge.deps import ApiDeps
from app.edge.http import manager_only, principal
from app.gateways.accounts import has_own_account
from app.gateways.stripe_endpoints import webhook_path
from app.tenant_settings import service
from app.tenant_settings.schemas import ProviderOut, ProviderSettingsIn, ProviderSettingsOut


def _out(
    deps: ApiDeps, tenant_id: uuid.UUID, view: service.ProviderSettingsView
) -> ProviderSettingsOut:
    stripe_url = deps.public_base_url.rstrip("/") + webhook_path(tenant_id)
    return ProviderSettingsOut(
        enabled=view.enabled,
        providers=[
            ProviderOut(
                provider=p.provider,
                enabled=p.enabled,
                fields_set=list(p.fields_set),
                webhook_url=stripe_url if _own_stripe(p) else None,
            )
            for p in view.providers
        ],
    )


def _own_stripe(state: service.ProviderState) -> bool:
    """Whether the business saved its own Stripe key (field names only: no secret is read)."""
    return state.provider == "stripe" and has_own_account(
        "stripe", {name: "set" for name in state.fields_set}
    )


@get("/settings/providers", guards=[manager_only])
async def get_provider_settings(
    request: Request[Any, Any, Any], session: AsyncSession, deps: ApiDeps
) -> ProviderSettingsOut:
    caller = principal(request)
    return _out(
        deps, caller.tenant_id, await service.get_provider_settings(session, caller.tenant_id)
    )


@put("/settings/providers", guards=[manager_only])
async def put_provider_settings(
    request: Request[Any, Any, Any], data: ProviderSettingsIn, session: AsyncSession, deps: ApiDeps
) -> ProviderSettingsOut:
    caller = principal(request)
    view = await service.update_provider_settings(
        session,
        caller,
        deps.secret_box,
        datetime.now(UTC),
        enabled=data.enabled,
        credentials={str(name): values for name, values in data.credentials.items()},
    )
    return _out(deps, caller.tenant_id, view)


def router() -> Router:
    return Router(
        path="/api/v1",
        route_handlers=[get_provider_settings, put_provider_settings],
        tags=["settings"],
    )
