"""Everything the worker wires for its jobs and outbox handlers, typed.

worker.py (the composition root) builds one JobDeps from settings on startup; tests build
their own (an httpx client whose transport respx intercepts, a moved clock, a short lease).
Handlers receive it as `HandlerContext.deps` and name what they use as a Protocol next to
themselves (e.g. app/mail/confirmation.HasMail), so each reads only its own part and a
reader can follow every dependency from here to its use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from app.gateways.accounts import Providers
from app.gateways.webpush import VapidKeys
from app.integrations.gcal import GoogleOAuthRefresher
from app.mail.confirmation import MailSetup
from app.outbox.dispatch import Dispatcher
from app.outbox.metrics import RelayMetrics
from app.outbox.relay import RelayConfig
from app.reconciliation.matching import Tolerances
from app.worker.config import ApplierConfig, GoogleConfig, WhatsAppConfig


@dataclass
class JobDeps:
    # The platform's provider clients, plus the HTTP client, API bases and key box that
    # opening a business's own account (or its calendar and WhatsApp credentials) takes.
    providers: Providers = field(default_factory=Providers)
    public_base_url: str = "http://127.0.0.1:8000"
    google: GoogleConfig = field(default_factory=GoogleConfig)
    whatsapp: WhatsAppConfig = field(default_factory=WhatsAppConfig)
    mail: MailSetup | None = None
    # Web Push's application server keys (off until both are set).
    vapid: VapidKeys = field(default_factory=VapidKeys)
    # `() -> aware datetime`: tests move time for checkout expiry.
    clock: Callable[[], datetime] | None = None
    tolerances: Tolerances = field(default_factory=Tolerances)
    dispatcher: Dispatcher = field(default_factory=Dispatcher)
    relay: RelayConfig = field(default_factory=RelayConfig)
    relay_metrics: RelayMetrics = field(default_factory=RelayMetrics)
    applier: ApplierConfig = field(default_factory=ApplierConfig)
    # One OAuth refresher per credential set, kept across handler runs (bounded by the job).
    google_refreshers: dict[tuple[str, ...], GoogleOAuthRefresher] = field(default_factory=dict)


if TYPE_CHECKING:
    # Every handler's Protocol is met by JobDeps (mypy checks these assignments).
    from app.mail.confirmation import HasMail
    from app.worker.jobs.calendar_sync import HasGoogle
    from app.worker.jobs.notifications import HasWhatsApp
    from app.worker.jobs.payments import HasPaymentDeps
    from app.worker.jobs.payouts import HasProviders
    from app.worker.jobs.push import HasVapid

    _mail: HasMail = JobDeps()
    _google: HasGoogle = JobDeps()
    _whatsapp: HasWhatsApp = JobDeps()
    _payments: HasPaymentDeps = JobDeps()
    _payouts: HasProviders = JobDeps()
    _push: HasVapid = JobDeps()
