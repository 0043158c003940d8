"""Per-tenant provider rows. Credentials are one sealed JSON object per provider."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, get_args

from sqlalchemy import Text, func
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, TenantScoped
from app.payments.provider_names import (
    CASH,
    KASHIER,
    ROUTED_PROVIDERS,
    SANDBOX,
    STRIPE,
    PaymentProvider,
)

MessagingProvider = Literal["whatsapp", "google_calendar"]
ProviderName = Literal[PaymentProvider, MessagingProvider]
"""Everything a business configures: the payment providers and the messaging integrations."""

WHATSAPP, GOOGLE_CALENDAR = get_args(MessagingProvider)
PROVIDERS: tuple[ProviderName, ...] = (*ROUTED_PROVIDERS, SANDBOX, CASH, WHATSAPP, GOOGLE_CALENDAR)
# Credential fields a provider accepts; anything else is a typo the API refuses.
CREDENTIAL_FIELDS: dict[str, frozenset[str]] = {
    STRIPE: frozenset({"api_key", "webhook_secret"}),
    KASHIER: frozenset({"merchant_id", "api_key", "secret_key"}),
    SANDBOX: frozenset(),
    CASH: frozenset(),
    WHATSAPP: frozenset({"access_token", "phone_number_id"}),
    GOOGLE_CALENDAR: frozenset({"client_id", "client_secret"}),
}
# A tenant that never saved settings can take cash and sandbox payments and nothing else:
# the paid and messaging integrations are opt-in.
DEFAULT_ENABLED = frozenset({CASH, SANDBOX})


class TenantProviderSetting(TenantScoped, Base):
    __tablename__ = "tenant_provider_settings"

    provider: Mapped[str]
    enabled: Mapped[bool] = mapped_column(default=False)
    sealed: Mapped[str | None]
    fields_set: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


def associated_data(tenant_id: object, provider: str) -> str:
    """Binds a sealed value to its tenant and provider: copied elsewhere, it will not open."""
    return f"{tenant_id}:provider_settings:{provider}"
