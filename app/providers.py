"""Payment provider clients (Stripe, Kashier) built once from settings, shared by the payment
handlers, payouts and reconciliation.

Composition only: tests (and the worker) may inject their own `Providers` under
`PROVIDERS` in WorkerContext.extras or the app state; nothing here runs at import.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from app.integrations.kashier import KashierClient
from app.integrations.stripe_client import StripeGateway
from app.settings import Settings
from app.worker_context import WorkerContext

PROVIDERS = "reconciliation.providers"


@dataclass
class Providers:
    stripe: StripeGateway | None = None
    kashier: KashierClient | None = None
    http: httpx.AsyncClient | None = None

    @property
    def configured(self) -> list[str]:
        return [name for name in ("stripe", "kashier") if getattr(self, name) is not None]


def build_providers(settings: Settings) -> Providers:
    """Clients for the providers whose keys are set; the others stay None."""
    http = httpx.AsyncClient(timeout=httpx.Timeout(20.0, connect=5.0))
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
    return Providers(stripe=stripe, kashier=kashier, http=http)


def providers_from(extras: dict[str, Any]) -> Providers | None:
    found = extras.get(PROVIDERS)
    return found if isinstance(found, Providers) else None


async def install_providers(context: WorkerContext) -> None:
    """Background task: put the clients where outbox handlers and cron jobs find them."""
    if PROVIDERS not in context.extras:
        context.extras[PROVIDERS] = build_providers(context.settings)
