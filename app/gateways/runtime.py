"""What jobs need from the worker to reach providers: keys into WorkerContext.extras and the
read helper for a tenant's decrypted provider config.

worker.py (the composition root) puts one shared httpx.AsyncClient and a SecretBox built
from settings.secret_key under these keys; tests put their own (an httpx client whose
transport respx intercepts) into a HandlerContext's extras.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from app.integrations.crypto import DecryptionFailed
from app.outbox.dispatch import HandlerContext
from app.outbox.errors import PermanentError
from app.tenant_settings.sealing import Sealer
from app.tenant_settings.service import ProviderConfig, load_provider_config

HTTP_CLIENT = "integrations.http"
SECRET_BOX = "integrations.secret_box"


def _extra(ctx: HandlerContext, key: str, kind: type[Any]) -> Any:
    value = ctx.extras.get(key)
    if not isinstance(value, kind):
        raise PermanentError(f"worker context has no {key}: the composition root must set it")
    return value


def http_client(ctx: HandlerContext) -> httpx.AsyncClient:
    client: httpx.AsyncClient = _extra(ctx, HTTP_CLIENT, httpx.AsyncClient)
    return client


def secret_box(ctx: HandlerContext) -> Sealer:
    box = ctx.extras.get(SECRET_BOX)
    if box is None:
        raise PermanentError(f"worker context has no {SECRET_BOX}")
    sealer: Sealer = box
    return sealer


async def provider_config(
    ctx: HandlerContext, tenant_id: uuid.UUID, provider: str
) -> ProviderConfig:
    """The tenant's on/off state and decrypted credentials for `provider`, read in its own
    short transaction (call it before, never during, a provider call's surrounding tx)."""
    try:
        async with ctx.sessions() as session:
            return await load_provider_config(session, tenant_id, provider, secret_box(ctx))
    except DecryptionFailed as error:
        # A rotated secret without `previous=`: retrying cannot help until someone re-saves.
        raise PermanentError(f"{provider} credentials do not decrypt: {error}") from error
