"""Reconciliation's errors that the HTTP edge maps (see app/edge/http.py)."""

from __future__ import annotations

from app.errors import Conflict
from app.payments.provider_names import KASHIER, STRIPE

# What a deployment sets so that reconciliation can read each provider's records.
PROVIDER_SETTINGS: dict[str, tuple[str, ...]] = {
    STRIPE: ("STRIPE_API_KEY",),
    KASHIER: ("KASHIER_MERCHANT_ID", "KASHIER_API_KEY", "KASHIER_SECRET_KEY"),
}


class ReconciliationProviderNotConfigured(Conflict):
    """Runs for this provider cannot start until its keys are set: the state of the setup, not
    an outage, so retrying unchanged cannot help (unlike a provider being down, a 503)."""

    slug = "provider_not_configured"
    title = "The payment provider is not configured for reconciliation"

    def __init__(self, provider: str) -> None:
        needed = PROVIDER_SETTINGS.get(provider, ())
        detail = (
            f"Reconciling {provider} reads its records with the API keys in "
            f"{', '.join(needed)}; set them and start the run again"
            if needed
            else f"{provider} has no records to reconcile"
        )
        super().__init__(detail, provider=provider, configure=list(needed))
