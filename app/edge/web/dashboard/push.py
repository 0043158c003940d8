"""This device's Web Push subscription, from the dashboard's "Notify me on this device"
toggle: the application server key to subscribe with, and the browser's PushSubscription
stored (POST) or forgotten (DELETE) for the signed-in user. Session cookie + CSRF header,
problem+json errors, as every dashboard fetch."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, delete, get, post
from sqlalchemy.ext.asyncio import AsyncSession

from app.edge.http import principal
from app.edge.web.config import web_config
from app.notifications import push_service

Text = Annotated[str, msgspec.Meta(max_length=2048)]
Key = Annotated[str, msgspec.Meta(max_length=200)]


class PushKeysIn(msgspec.Struct):
    p256dh: Key
    auth: Key


class PushSubscriptionIn(msgspec.Struct):
    """PushSubscription.toJSON() as the browser gives it (expirationTime is ignored)."""

    endpoint: Text
    keys: PushKeysIn


class PushEndpointIn(msgspec.Struct):
    endpoint: Text


class PushKeyOut(msgspec.Struct):
    public_key: str | None


class PushSubscribedOut(msgspec.Struct):
    id: str


@get("/push/key", include_in_schema=False)
async def key(request: Request[Any, Any, Any]) -> PushKeyOut:
    """The VAPID public key; null when push is not configured (the toggle stays hidden)."""
    public_key: str = request.app.state.settings.vapid_public_key
    return PushKeyOut(public_key or None)


@post("/push/subscriptions", status_code=201, include_in_schema=False)
async def subscribe(
    request: Request[Any, Any, Any], data: PushSubscriptionIn, session: AsyncSession
) -> PushSubscribedOut:
    subscription_id = await push_service.subscribe(
        session,
        principal(request),
        endpoint=data.endpoint,
        p256dh=data.keys.p256dh,
        auth=data.keys.auth,
        allow_loopback_http=web_config(request.app.state).development,
    )
    return PushSubscribedOut(str(subscription_id))


@delete("/push/subscriptions", status_code=204, include_in_schema=False)
async def unsubscribe(
    request: Request[Any, Any, Any], data: PushEndpointIn, session: AsyncSession
) -> None:
    await push_service.unsubscribe(session, principal(request), data.endpoint)
