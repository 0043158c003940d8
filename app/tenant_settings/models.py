"""Per-tenant provider rows. Credentials are one sealed JSON object per provider."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Text, func
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, TenantScoped

PROVIDERS = ("stripe", "kashier", "sandbox", "cash", "whatsapp", "google_calendar")
# Credential fields a provider accepts; anything else is a typo the API refuses.
CREDENTIAL_FIELDS: dict[str, frozenset[str]] = {
    "stripe": frozenset({"api_key", "webhook_secret"}),
    "kashier": frozenset({"merchant_id", "api_key", "secret_key"}),
    "sandbox": frozenset(),
    "cash": frozenset(),
    "whatsapp": frozenset({"access_token", "phone_number_id"}),
    "google_calendar": frozenset({"client_id", "client_secret"}),
}
# A tenant that never saved settings can take cash and sandbox payments and nothing else:
# the paid and messaging integrations are opt-in.
DEFAULT_ENABLED = frozenset({"cash", "sandbox"})


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
