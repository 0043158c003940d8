"""What handlers need to reach a business's providers: the worker's shared HTTP client and key
box (both carried by `Providers`, which the composition root builds) and the read of a
tenant's decrypted provider config.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.integrations.crypto import DecryptionFailed
from app.outbox.errors import PermanentError
from app.tenant_settings.sealing import Sealer
from app.tenant_settings.service import ProviderConfig, load_provider_config

if TYPE_CHECKING:
    from app.gateways.accounts import Providers


def http_client(providers: Providers) -> httpx.AsyncClient:
    if providers.http is None:
        raise PermanentError("the worker wired no HTTP client: the composition root must set it")
    return providers.http


def secret_box(providers: Providers) -> Sealer:
    if providers.secret_box is None:
        raise PermanentError("the worker wired no secret box: the composition root must set it")
    return providers.secret_box


async def provider_config(
    sessions: async_sessionmaker[AsyncSession],
    providers: Providers,
    tenant_id: uuid.UUID,
    provider: str,
) -> ProviderConfig:
    """The tenant's on/off state and decrypted credentials for `provider`, read in its own
    short transaction (call it before, never during, a provider call's surrounding tx)."""
    try:
        async with sessions() as session:
            return await load_provider_config(session, tenant_id, provider, secret_box(providers))
    except DecryptionFailed as error:
        # A rotated secret without `previous=`: retrying cannot help until someone re-saves.
        raise PermanentError(f"{provider} credentials do not decrypt: {error}") from error
