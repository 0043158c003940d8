"""What the API's routes are handed, typed, through Litestar's dependency injection.

create_app (app/edge/asgi.py, the composition root) builds one ApiDeps from settings and
provides it as the `deps` dependency: a route that needs the key box, a webhook secret or the
provider clients declares `deps: ApiDeps` and receives it; no route reads settings or looks
anything up by a string key.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.availability.memo import AvailabilityMemo
from app.gateways.accounts import Providers
from app.payments.inbox_writer import InboxWriter
from app.tenant_settings.sealing import Sealer


@dataclass
class ApiDeps:
    environment: str
    public_base_url: str
    sessions: async_sessionmaker[AsyncSession]
    # Seals provider secrets at rest (tenant credentials, calendar refresh tokens).
    secret_box: Sealer
    stripe_webhook_secret: str = field(repr=False)
    kashier_api_key: str = field(repr=False)
    # Signs the development sandbox's webhook events (derived from the application secret).
    sandbox_secret: str = field(repr=False)
    # Webhook acknowledgements: one INSERT each, committed by itself, on a pool of their own.
    inbox_writer: InboxWriter
    # How long a booking answer waits for the provider's checkout URL (0: do not wait).
    checkout_wait_seconds: float = 0.0
    # The platform's provider clients (reconciliation runs on demand). Tests swap in their own.
    providers: Providers = field(default_factory=Providers)
    # Time-slot availability reused while its calendar rows hold (app/availability/memo.py).
    availability_memo: AvailabilityMemo = field(default_factory=AvailabilityMemo, repr=False)

    @property
    def production(self) -> bool:
        return self.environment == "production"
