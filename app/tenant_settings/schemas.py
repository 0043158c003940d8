"""HTTP shapes for provider settings. Responses never carry a secret, only field names."""

from __future__ import annotations

from typing import Annotated

import msgspec

from app.tenant_settings.models import ProviderName

Secret = Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]


class ProviderSettingsIn(msgspec.Struct, forbid_unknown_fields=True):
    enabled: list[ProviderName] | None = None
    credentials: dict[ProviderName, dict[str, Secret | None]] = {}


class ProviderOut(msgspec.Struct, omit_defaults=True):
    provider: str
    enabled: bool
    fields_set: list[str]
    # Stripe, for a business with its own account: where its Stripe account must send
    # events (signed with the webhook_secret it saves here). Absent otherwise.
    webhook_url: str | None = None


class ProviderSettingsOut(msgspec.Struct):
    enabled: list[str]
    providers: list[ProviderOut]
