"""HTTP shapes for provider settings. Responses never carry a secret, only field names."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

ProviderName = Literal["stripe", "kashier", "sandbox", "cash", "whatsapp", "google_calendar"]
Secret = Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]


class ProviderSettingsIn(msgspec.Struct, forbid_unknown_fields=True):
    enabled: list[ProviderName] | None = None
    credentials: dict[ProviderName, dict[str, Secret | None]] = {}


class ProviderOut(msgspec.Struct):
    provider: str
    enabled: bool
    fields_set: list[str]


class ProviderSettingsOut(msgspec.Struct):
    enabled: list[str]
    providers: list[ProviderOut]
