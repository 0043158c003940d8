"""Composition root of the API: create_app(settings) -> Litestar."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, Router
from litestar.config.app import AppConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import traces
from app.db import CONNECT_TIMEOUT, POOL_TIMEOUT, service_engine, session_factory
from app.edge import ops
from app.edge.api import audit as audit_routes
from app.edge.api import availability as availability_routes
from app.edge.api import bookings as booking_routes
from app.edge.api import calendar_sync as calendar_routes
from app.edge.api import catalog as catalog_routes
from app.edge.api import customers as customer_routes
from app.edge.api import events as events_routes
from app.edge.api import invoices as invoice_routes
from app.edge.api import ledger as ledger_routes
from app.edge.api import outbox as outbox_routes
from app.edge.api import payments as checkout_routes
from app.edge.api import payouts as payout_routes
from app.edge.api import reconciliation as reconciliation_routes
from app.edge.api import reports as report_routes
from app.edge.api import tenancy as tenancy_routes
from app.edge.api import tenant_settings as tenant_settings_routes
from app.edge.auth import build_jwt_auth
from app.edge.deps import ApiDeps
from app.edge.http import (
    EXCEPTION_HANDLERS,
    ReckonRequest,
    provide_session,
)
from app.edge.web import routes as web_routes
from app.edge.web.config import STATE_KEY as WEB_STATE
from app.edge.web.config import DemoBusiness, WebConfig
from app.gateways.accounts import build_providers
from app.heap import freeze_long_lived
from app.integrations.crypto import SecretBox
from app.logs import configure_logging
from app.outbox.metrics import OutboxGauges
from app.outbox.relay import libpq_url
from app.payments.inbox_writer import InboxWriter
from app.presentation.links import ManageLinks
from app.settings import Settings
from app.tenancy.demo import DEMO_TENANTS


def route_modules() -> list[Router]:
    """Every domain's router. Later domains append theirs here."""
    return [
        ops.router(),
        tenancy_routes.router(),
        outbox_routes.router(),
        events_routes.router(),
        ledger_routes.router(),
        catalog_routes.router(),
        catalog_routes.public_router(),
        availability_routes.router(),
        availability_routes.public_router(),
        booking_routes.router(),
        booking_routes.public_router(),
        payout_routes.router(),
        reconciliation_routes.router(),
        invoice_routes.router(),
        tenant_settings_routes.router(),
        calendar_routes.router(),
        checkout_routes.router(),
        report_routes.router(),
        audit_routes.router(),
        customer_routes.router(),
    ]


def create_app(settings: Settings, *, extra_routers: list[Router] | None = None) -> Litestar:
    configure_logging(json=settings.log_json)
    tracing = traces.configure("reckon-api", endpoint=settings.otel_exporter_otlp_endpoint)
    jwt_auth = build_jwt_auth(settings.secret_key, settings.jwt_ttl_seconds)
    registry = CollectorRegistry()
    engine = service_engine(settings.runtime_database_url)
    traces.instrument_engine(engine)
    # Webhook acknowledgements, one statement in autocommit on plain psycopg connections of
    # their own (app/payments/inbox_writer.py).
    inbox_writer = InboxWriter(
        libpq_url(settings.runtime_database_url),
        size=32,
        connect_timeout=CONNECT_TIMEOUT,
        pool_timeout=POOL_TIMEOUT,
    )
    redis = Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
    sessions = session_factory(engine)

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        # Everything built so far (modules, templates, the app) lives as long as the process:
        # out of the collector's way, so a page that makes many objects pays for its own only.
        freeze_long_lived()
        try:
            yield
        finally:
            await redis.aclose()
            await engine.dispose()
            await inbox_writer.close()
            if deps.providers.http is not None:
                await deps.providers.http.aclose()

    deps = api_deps(settings, sessions, inbox_writer)
    state = State(
        {
            "settings": settings,
            "engine": engine,
            "sessions": sessions,
            # The one typed object routes are handed (the `deps` dependency); kept here so
            # tests can swap the provider clients (see api_deps_of).
            DEPS_STATE: deps,
            "redis": redis,
            "jwt_auth": jwt_auth,
            "metrics_registry": registry,
            "http_metrics": ops.HttpMetrics(registry),
            "metric_collectors": [OutboxGauges(registry).collect],
            WEB_STATE: web_config(settings),
        }
    )

    def _register_auth(app_config: AppConfig) -> AppConfig:
        return jwt_auth.on_app_init(app_config)

    app = Litestar(
        route_handlers=[*route_modules(), *web_routes.routers(), *(extra_routers or [])],
        template_config=web_routes.template_config(),
        dependencies={
            "session": Provide(provide_session),
            "deps": Provide(lambda: deps, use_cache=True, sync_to_thread=False),
        },
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[
            ops.request_context_middleware,
            *([ops.trace_middleware] if tracing else []),
        ],
        on_app_init=[_register_auth],
        lifespan=[lifespan],
        state=state,
        request_max_body_size=1_048_576,
        request_class=ReckonRequest,
        openapi_config=OpenAPIConfig(
            title="Reckon API",
            version="1.0.0",
            path="/schema",
            render_plugins=[ScalarRenderPlugin(), SwaggerRenderPlugin()],
            components=Components(
                security_schemes={
                    "BearerToken": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT")
                }
            ),
        ),
        debug=False,
    )
    return app


DEPS_STATE = "api_deps"


def sandbox_secret(settings: Settings) -> str:
    """The sandbox provider's webhook secret, derived from SECRET_KEY."""
    return hmac.new(
        settings.secret_key.encode(), b"reckon-sandbox-webhooks", hashlib.sha256
    ).hexdigest()


def api_deps(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], inbox_writer: InboxWriter
) -> ApiDeps:
    return ApiDeps(
        environment=settings.environment,
        public_base_url=settings.public_base_url,
        sessions=sessions,
        secret_box=SecretBox(settings.secret_key),
        stripe_webhook_secret=settings.stripe_webhook_secret,
        kashier_api_key=settings.kashier_api_key,
        sandbox_secret=sandbox_secret(settings),
        inbox_writer=inbox_writer,
        checkout_wait_seconds=settings.checkout_wait_seconds,
        providers=build_providers(settings),
    )


def api_deps_of(app: Litestar) -> ApiDeps:
    """The ApiDeps create_app built (tests swap `providers` on it)."""
    deps = app.state[DEPS_STATE]
    assert isinstance(deps, ApiDeps)
    return deps


def web_config(settings: Settings) -> WebConfig:
    """The booking site's settings; the demo businesses are linked from `/` in development."""
    demos = tuple(DemoBusiness(t.name, t.slug) for t in DEMO_TENANTS)
    return WebConfig(
        environment=settings.environment,
        public_base_url=settings.public_base_url,
        links=ManageLinks(settings.secret_key),
        checkout_wait_seconds=settings.checkout_wait_seconds,
        demo_businesses=demos if settings.environment == "development" else (),
    )


def app_from_environment() -> Any:
    """Factory for `uvicorn --factory app.edge.asgi:app_from_environment`."""
    from app.settings import load_settings

    return create_app(load_settings())
