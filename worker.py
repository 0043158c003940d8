"""arq worker composition root: job functions, cron jobs, and a typed ctx built on startup.

Jobs run at least once; every job here is safe to run twice. The outbox relay runs as a
background task inside this process (see app/outbox/relay.py) so effects leave PostgreSQL
without waiting for arq's queue.
"""

from __future__ import annotations

import importlib
from typing import Any, cast

import httpx
from arq.connections import RedisSettings
from arq.cron import CronJob
from arq.worker import Function, Worker, func
from redis.asyncio import Redis

from app.db import create_engine, session_factory
from app.gateways.accounts import PROVIDERS, build_providers
from app.gateways.runtime import HTTP_CLIENT, SECRET_BOX
from app.integrations import gcal, whatsapp
from app.integrations.crypto import SecretBox
from app.logs import configure_logging
from app.mail.confirmation import MAIL_SETUP, MailSetup
from app.mail.smtp import SmtpConfig
from app.outbox.dispatch import Dispatcher, Registrar
from app.presentation.links import ManageLinks
from app.settings import Settings
from app.worker.context import BackgroundTask, WorkerContext
from app.worker.jobs.calendar_sync import GOOGLE_CONFIG, GoogleConfig
from app.worker.jobs.notifications import WHATSAPP_CONFIG, WhatsAppConfig
from app.worker.jobs.outbox import DISPATCHER
from app.worker.jobs.payments import KASHIER_API_BASE, PUBLIC_BASE_URL, STRIPE_API_BASE

# Each domain contributes (functions, cron jobs) through its jobs module.
JOB_MODULES: list[str] = [
    "app.worker.jobs.outbox",
    "app.worker.jobs.inbox",
    "app.worker.jobs.events",
    "app.worker.jobs.bookings",
    "app.worker.jobs.payouts",
    "app.worker.jobs.reconciliation",
    "app.worker.jobs.calendar_sync",
    "app.worker.jobs.notifications",
    "app.worker.jobs.payments",
    "app.worker.jobs.mail",
]


def _collect() -> tuple[list[Function | Any], list[CronJob], list[BackgroundTask]]:
    """Each module in JOB_MODULES may define FUNCTIONS, CRON_JOBS and BACKGROUND (long-running
    coroutines started with the worker, like the outbox relay)."""
    functions: list[Function | Any] = []
    crons: list[CronJob] = []
    background: list[BackgroundTask] = []
    for name in JOB_MODULES:
        module = importlib.import_module(name)
        functions.extend(getattr(module, "FUNCTIONS", []))
        crons.extend(getattr(module, "CRON_JOBS", []))
        background.extend(getattr(module, "BACKGROUND", []))
    return functions, crons, background


def _registrars() -> list[Registrar]:
    """Modules in JOB_MODULES may define `register_handlers(dispatcher)` for outbox topics."""
    found: list[Registrar] = []
    for name in JOB_MODULES:
        register = getattr(importlib.import_module(name), "register_handlers", None)
        if register is not None:
            found.append(register)
    return found


def build_dispatcher() -> Dispatcher:
    dispatcher = Dispatcher()
    for register in _registrars():
        register(dispatcher)
    return dispatcher


async def ping(_: dict[Any, Any], *args: Any, **kwargs: Any) -> str:
    """A no-op job to check the queue end to end (`reckon.ping`)."""
    return "pong"


def integration_extras(settings: Settings) -> dict[str, Any]:
    """Provider config for outbox handlers (the HTTP client is added on startup, unless
    `context_extras` injects one, e.g. a client whose transport respx intercepts)."""
    return {
        PROVIDERS: build_providers(settings),
        PUBLIC_BASE_URL: settings.public_base_url,
        STRIPE_API_BASE: settings.stripe_api_base,
        KASHIER_API_BASE: settings.kashier_api_base,
        SECRET_BOX: SecretBox(settings.secret_key),
        GOOGLE_CONFIG: GoogleConfig(
            client_id=settings.google_client_id,
            client_secret=settings.google_client_secret,
            api_base=settings.google_api_base or gcal.DEFAULT_API_BASE,
            token_url=settings.google_token_url or gcal.TOKEN_URL,
        ),
        WHATSAPP_CONFIG: WhatsAppConfig(
            access_token=settings.whatsapp_access_token,
            phone_number_id=settings.whatsapp_phone_number_id,
            api_base=settings.whatsapp_api_base or whatsapp.DEFAULT_API_BASE,
            api_version=settings.whatsapp_api_version or whatsapp.DEFAULT_API_VERSION,
        ),
        MAIL_SETUP: mail_setup(settings),
    }


def mail_setup(settings: Settings) -> MailSetup:
    """SMTP for booking confirmations; without SMTP_HOST mail is off (the handler does
    nothing)."""
    smtp = (
        SmtpConfig(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.mail_from,
            username=settings.smtp_username,
            password=settings.smtp_password,
            starttls=settings.smtp_starttls,
        )
        if settings.smtp_host
        else None
    )
    return MailSetup(
        smtp=smtp, links=ManageLinks(settings.secret_key), public_base_url=settings.public_base_url
    )


def build_worker(
    settings: Settings, *, context_extras: dict[str, Any] | None = None, **overrides: Any
) -> Worker:
    """`context_extras` lands in WorkerContext.extras (e.g. a RelayConfig, injected fakes)."""
    configure_logging(json=settings.log_json)
    functions, crons, background = _collect()
    dispatcher = build_dispatcher()

    async def on_startup(ctx: dict[str, Any]) -> None:
        engine = create_engine(settings.runtime_database_url)
        extras: dict[str, Any] = {DISPATCHER: dispatcher, **integration_extras(settings)}
        extras.update(context_extras or {})
        if HTTP_CLIENT not in extras:
            extras[HTTP_CLIENT] = ctx["owned_http"] = httpx.AsyncClient(
                timeout=httpx.Timeout(15.0, connect=5.0)
            )
        context = WorkerContext(
            settings=settings,
            engine=engine,
            sessions=session_factory(engine),
            redis=Redis.from_url(settings.redis_url, socket_timeout=5),
            background=background,
            extras=extras,
        )
        ctx["app"] = context
        await context.start_background_tasks()

    async def on_shutdown(ctx: dict[str, Any]) -> None:
        context: WorkerContext | None = ctx.get("app")
        if context is not None:
            await context.close()
        owned_http: httpx.AsyncClient | None = ctx.get("owned_http")
        if owned_http is not None:
            await owned_http.aclose()

    options: dict[str, Any] = {
        "functions": [func(cast(Any, ping), name="reckon.ping"), *functions],
        "cron_jobs": crons,
        "queue_name": f"{settings.redis_namespace}:queue",
        "redis_settings": RedisSettings.from_dsn(settings.redis_url),
        "on_startup": on_startup,
        "on_shutdown": on_shutdown,
        # arq's default 0.5 s poll adds up to half a second to every queued job.
        "poll_delay": 0.05,
        "max_jobs": 20,
        "job_timeout": 120,
        "keep_result": 60,
        "health_check_interval": 30,
        "health_check_key": f"{settings.redis_namespace}:worker-health",
    }
    options.update(overrides)
    return Worker(**options)
