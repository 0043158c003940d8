"""Payment provider clients, and the one decision of whose account a business's money uses.

`Providers` is the platform's clients (Stripe, Kashier) built once from settings, plus what
opening a business's own account takes (the HTTP client, the API bases, the box that opens
its stored keys). `account_for` is the only place that decides, per business and provider,
which clients to use: the business's own when it saved its keys, the platform's otherwise.
Checkout, refunds, fee fetches, payouts, reconciliation (route, cron and CLI) and the
webhooks' own-account check all ask it (or `has_own_account`, its rule).

Composition only: the worker (JobDeps.providers) and the API (create_app's `providers`
dependency) are handed one `Providers`; tests build their own. Nothing here runs at import.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.errors import DependencyUnavailable
from app.integrations.crypto import DecryptionFailed, SecretBox
from app.integrations.kashier import KashierClient
from app.integrations.stripe_client import DEFAULT_API_BASE as STRIPE_DEFAULT_API_BASE
from app.integrations.stripe_client import StripeGateway
from app.outbox.errors import PermanentError
from app.payments.provider_names import KASHIER, ROUTED_PROVIDERS, STRIPE
from app.settings import Settings
from app.tenant_settings.sealing import Sealer
from app.tenant_settings.service import load_provider_config

KASHIER_DEFAULT_API_BASE = "https://test-api.kashier.io"
# Providers whose money can sit in the platform's account or in the business's own.
ACCOUNT_PROVIDERS = ROUTED_PROVIDERS
# Credential fields that make an account the business's own (see CREDENTIAL_FIELDS).
OWN_ACCOUNT_FIELDS: dict[str, frozenset[str]] = {
    STRIPE: frozenset({"api_key"}),
    KASHIER: frozenset({"merchant_id", "api_key", "secret_key"}),
}


@dataclass
class Providers:
    stripe: StripeGateway | None = None
    kashier: KashierClient | None = None
    http: httpx.AsyncClient | None = None
    stripe_api_base: str = STRIPE_DEFAULT_API_BASE
    kashier_api_base: str = KASHIER_DEFAULT_API_BASE
    secret_box: Sealer | None = None

    @property
    def configured(self) -> list[str]:
        return [name for name in ACCOUNT_PROVIDERS if getattr(self, name) is not None]


@dataclass(frozen=True, slots=True)
class Account:
    """The clients to use for one business and provider, and whether they are its own."""

    tenant_id: uuid.UUID
    provider: str
    providers: Providers
    own: bool

    @property
    def stripe(self) -> StripeGateway | None:
        return self.providers.stripe

    @property
    def kashier(self) -> KashierClient | None:
        return self.providers.kashier

    @property
    def configured(self) -> bool:
        return self.provider in self.providers.configured


class ProviderCredentialsUnreadable(DependencyUnavailable):
    slug = "provider_credentials_unreadable"
    title = "The business's stored provider keys cannot be read; save them again"


class OwnAccountUnreachable(DependencyUnavailable):
    slug = "own_account_unreachable"
    title = "The business's own provider account cannot be reached from here"


class _NoBox:
    """Stands in when no box was given: a business with no stored keys needs none, and one
    with keys is refused rather than silently served from the platform's account."""

    def encrypt(self, plaintext: str, *, associated_data: str = "") -> str:
        raise DecryptionFailed("no secret box to seal provider keys with")

    def decrypt(self, token: str, *, associated_data: str = "") -> str:
        raise DecryptionFailed("no secret box to open stored provider keys with")


def has_own_account(provider: str, credentials: Mapping[str, str]) -> bool:
    """A business has its own account with `provider` when it saved that account's keys."""
    needed = OWN_ACCOUNT_FIELDS.get(provider)
    return needed is not None and all(credentials.get(name) for name in needed)


async def account_for(
    sessions: async_sessionmaker[AsyncSession],
    platform: Providers,
    tenant_id: uuid.UUID,
    provider: str,
) -> Account:
    """The business's own Stripe or Kashier account when it saved its keys, else the
    platform's. Reads the keys in a short transaction of its own: call it before, never
    during, a transaction around the provider call."""
    if provider not in ACCOUNT_PROVIDERS:
        return Account(tenant_id, provider, platform, own=False)
    box = platform.secret_box or _NoBox()
    try:
        async with sessions() as session:
            config = await load_provider_config(session, tenant_id, provider, box)
    except DecryptionFailed as error:
        raise ProviderCredentialsUnreadable(
            f"{provider} keys of the business do not decrypt: {error}",
            tenant_id=tenant_id,
            provider=provider,
        ) from error
    credentials = config.credentials
    if not has_own_account(provider, credentials):
        return Account(tenant_id, provider, platform, own=False)
    http = platform.http
    if http is None:
        raise OwnAccountUnreachable(
            "no HTTP client to reach the business's own account",
            tenant_id=tenant_id,
            provider=provider,
        )
    if provider == "stripe":
        stripe = StripeGateway(credentials["api_key"], http, api_base=platform.stripe_api_base)
        return Account(tenant_id, provider, replace(platform, stripe=stripe), own=True)
    kashier = KashierClient(
        merchant_id=credentials["merchant_id"],
        api_key=credentials["api_key"],
        secret_key=credentials["secret_key"],
        http=http,
        api_base=platform.kashier_api_base,
    )
    return Account(tenant_id, provider, replace(platform, kashier=kashier), own=True)


async def account_in(
    sessions: async_sessionmaker[AsyncSession],
    providers: Providers,
    tenant_id: uuid.UUID,
    provider: str,
) -> Account:
    """account_for inside an outbox handler: keys that cannot be read cannot be fixed by
    retrying (until someone saves them again), so the row goes dead and on-call sees why."""
    try:
        return await account_for(sessions, providers, tenant_id, provider)
    except (ProviderCredentialsUnreadable, OwnAccountUnreachable) as error:
        raise PermanentError(str(error)) from error


def build_providers(
    settings: Settings, transport: httpx.AsyncBaseTransport | None = None
) -> Providers:
    """Clients for the providers whose keys are set; the others stay None. `transport`: the
    worker's traced transport (app/gateways/tracing.py)."""
    http = httpx.AsyncClient(timeout=httpx.Timeout(20.0, connect=5.0), transport=transport)
    stripe = (
        StripeGateway(settings.stripe_api_key, http, api_base=settings.stripe_api_base)
        if settings.stripe_api_key
        else None
    )
    kashier = (
        KashierClient(
            merchant_id=settings.kashier_merchant_id,
            api_key=settings.kashier_api_key,
            secret_key=settings.kashier_secret_key,
            http=http,
            api_base=settings.kashier_api_base,
        )
        if settings.kashier_secret_key
        else None
    )
    return Providers(
        stripe=stripe,
        kashier=kashier,
        http=http,
        stripe_api_base=settings.stripe_api_base,
        kashier_api_base=settings.kashier_api_base,
        secret_box=SecretBox(settings.secret_key),
    )
