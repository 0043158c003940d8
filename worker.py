"""arq worker composition root: job functions, cron jobs, and a typed ctx built on startup.

Jobs run at least once; every job here is safe to run twice. The outbox relay runs as a
background task inside this process (see app/outbox/relay.py) so effects leave PostgreSQL
without waiting for arq's queue.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import replace
from signal import Signals
from typing import Any, cast

import httpx
from arq.connections import RedisSettings
from arq.worker import Worker, func
from redis.asyncio import Redis

from app import traces
from app.db import service_engine, session_factory
from app.gateways.accounts import build_providers
from app.gateways.tracing import client_transport
from app.gateways.webpush import VapidKeys
from app.heap import freeze_long_lived
from app.integrations import gcal, whatsapp
from app.logs import configure_logging
from app.mail.confirmation import MailSetup
from app.mail.smtp import SmtpConfig
from app.outbox.dispatch import HandlerContext
from app.outbox.models import OutboxEvent
from app.presentation.links import ManageLinks
from app.settings import Settings
from app.worker import registry
from app.worker.config import GoogleConfig, WhatsAppConfig
from app.worker.context import WorkerContext
from app.worker.deps import JobDeps

Customize = Callable[[JobDeps], JobDeps]


async def ping(_: dict[Any, Any], *args: Any, **kwargs: Any) -> str:
    """A no-op job to check the queue end to end (`reckon.ping`)."""
    return "pong"


def build_deps(settings: Settings) -> JobDeps:
    """What jobs and handlers use, from settings. The provider clients share one HTTP client,
    closed when the worker stops."""
    return JobDeps(
        providers=build_providers(settings, transport=client_transport()),
        public_base_url=settings.public_base_url,
        google=GoogleConfig(
            client_id=settings.google_client_id,
            client_secret=settings.google_client_secret,
            api_base=settings.google_api_base or gcal.DEFAULT_API_BASE,
            token_url=settings.google_token_url or gcal.TOKEN_URL,
        ),
        whatsapp=WhatsAppConfig(
            access_token=settings.whatsapp_access_token,
            phone_number_id=settings.whatsapp_phone_number_id,
            api_base=settings.whatsapp_api_base or whatsapp.DEFAULT_API_BASE,
            api_version=settings.whatsapp_api_version or whatsapp.DEFAULT_API_VERSION,
        ),
        mail=mail_setup(settings),
        vapid=VapidKeys(
            public_key=settings.vapid_public_key,
            private_key=settings.vapid_private_key,
            subject=settings.vapid_subject,
        ),
        dispatcher=registry.build_dispatcher(),
    )


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
    settings: Settings, *, customize: Customize | None = None, **overrides: Any
) -> Worker:
    """`customize` adjusts the JobDeps built from settings (tests: a short relay lease)."""
    configure_logging(json=settings.log_json)
    traces.configure("reckon-worker", endpoint=settings.otel_exporter_otlp_endpoint)

    async def on_startup(ctx: dict[str, Any]) -> None:
        engine = service_engine(settings.runtime_database_url)
        traces.instrument_engine(engine)
        deps = build_deps(settings)
        if os.environ.get(SLOW_TOPIC_VARIABLE) and settings.environment != "production":
            deps.dispatcher.register(SLOW_TOPIC, _slow_handler, channel=SLOW_TOPIC)
        if customize is not None:
            deps = customize(deps)
        context = WorkerContext(
            settings=settings,
            engine=engine,
            sessions=session_factory(engine),
            redis=Redis.from_url(settings.redis_url, socket_timeout=5),
            deps=deps,
            background=list(registry.BACKGROUND),
        )
        ctx["app"] = context
        freeze_long_lived()  # before the relay and the applier start making objects
        await context.start_background_tasks()

    async def on_shutdown(ctx: dict[str, Any]) -> None:
        context: WorkerContext | None = ctx.get("app")
        if context is not None:
            await context.close()
            http: httpx.AsyncClient | None = context.deps.providers.http
            if http is not None:
                await http.aclose()

    options: dict[str, Any] = {
        "functions": [func(cast(Any, ping), name="reckon.ping")],
        "cron_jobs": list(registry.CRON_JOBS),
        "queue_name": f"{settings.redis_namespace}:queue",
        # A worker (re)started while Redis is down waits for it (a minute) instead of exiting.
        "redis_settings": replace(
            RedisSettings.from_dsn(settings.redis_url), conn_retries=60, conn_retry_delay=1
        ),
        "on_startup": on_startup,
        "on_shutdown": on_shutdown,
        # arq's default 0.5 s poll adds up to half a second to every queued job.
        "poll_delay": 0.05,
        "max_jobs": 20,
        "job_timeout": 120,
        "keep_result": 60,
        "health_check_interval": 30,
        "health_check_key": f"{settings.redis_namespace}:worker-health",
        # On SIGTERM/SIGINT: pick no new job, give running ones this long, then cancel them
        # (arq runs a cancelled job again). The relay stops at once (see GracefulWorker).
        "job_completion_wait": JOB_COMPLETION_WAIT,
    }
    options.update(overrides)
    return GracefulWorker(**options)


JOB_COMPLETION_WAIT = 5

# Test-only (refused in production): with RECKON_TEST_SLOW_TOPIC=1 the worker also serves
# "test.slow", whose handler sleeps payload["seconds"], so the shutdown tests can have a
# delivery in flight when SIGTERM arrives.
SLOW_TOPIC_VARIABLE = "RECKON_TEST_SLOW_TOPIC"
SLOW_TOPIC = "test.slow"


async def _slow_handler(_: HandlerContext, event: OutboxEvent) -> None:
    await asyncio.sleep(float(event.payload.get("seconds", 1)))


class GracefulWorker(Worker):
    """arq's Worker, telling the background tasks (the outbox relay) to stop the moment the
    stop signal arrives, so they finish or hand back their rows while jobs complete."""

    def handle_sig_wait_for_completion(self, signum: Signals) -> None:
        context = self.ctx.get("app")
        if isinstance(context, WorkerContext):
            context.stopping.set()
        super().handle_sig_wait_for_completion(signum)
