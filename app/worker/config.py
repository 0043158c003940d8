"""Configuration the worker's composition root builds: Reckon's own accounts with Google and
Meta (a business's saved credentials override them per tenant) and the inbox applier's timing."""

from __future__ import annotations

from dataclasses import dataclass

from app.integrations import gcal, whatsapp


@dataclass(frozen=True, slots=True)
class GoogleConfig:
    """Reckon's own OAuth client; a tenant's google_calendar credentials override it."""

    client_id: str = ""
    client_secret: str = ""
    api_base: str = gcal.DEFAULT_API_BASE
    token_url: str = gcal.TOKEN_URL


@dataclass(frozen=True, slots=True)
class WhatsAppConfig:
    """Reckon's own WhatsApp Business number; a tenant's whatsapp credentials override it."""

    access_token: str = ""
    phone_number_id: str = ""
    api_base: str = whatsapp.DEFAULT_API_BASE
    api_version: str = whatsapp.DEFAULT_API_VERSION


@dataclass(frozen=True, slots=True)
class ApplierConfig:
    """The webhook inbox applier (app/worker/jobs/inbox.py); tests shorten the lease."""

    batch_size: int = 64
    concurrency: int = 8
    capture_group: int = 16  # plain captures of one business applied in one transaction
    lease_seconds: float = 30.0
    poll_interval: float = 1.0
    max_attempts: int = 10
    backoff_base: float = 0.5
    backoff_cap: float = 300.0
