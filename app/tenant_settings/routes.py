"""GET/PUT /api/v1/settings/providers (owner/admin)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from litestar import Request, Router, get, put
from sqlalchemy.ext.asyncio import AsyncSession

from app.http import manager_only, principal
from app.tenant_settings import service
from app.tenant_settings.schemas import ProviderOut, ProviderSettingsIn, ProviderSettingsOut
from app.tenant_settings.sealing import Sealer


def _out(view: service.ProviderSettingsView) -> ProviderSettingsOut:
    return ProviderSettingsOut(
        enabled=view.enabled,
        providers=[
            ProviderOut(provider=p.provider, enabled=p.enabled, fields_set=list(p.fields_set))
            for p in view.providers
        ],
    )


def secret_box(request: Request[Any, Any, Any]) -> Sealer:
    """The box asgi.create_app built from the application secret."""
    box: Sealer = request.app.state.secret_box
    return box


@get("/settings/providers", guards=[manager_only])
async def get_provider_settings(
    request: Request[Any, Any, Any], session: AsyncSession
) -> ProviderSettingsOut:
    caller = principal(request)
    return _out(await service.get_provider_settings(session, caller.tenant_id))


@put("/settings/providers", guards=[manager_only])
async def put_provider_settings(
    request: Request[Any, Any, Any], data: ProviderSettingsIn, session: AsyncSession
) -> ProviderSettingsOut:
    view = await service.update_provider_settings(
        session,
        principal(request),
        secret_box(request),
        datetime.now(UTC),
        enabled=data.enabled,
        credentials={str(name): values for name, values in data.credentials.items()},
    )
    return _out(view)


def router() -> Router:
    return Router(
        path="/api/v1",
        route_handlers=[get_provider_settings, put_provider_settings],
        tags=["settings"],
    )
