"""Operations endpoints: liveness, readiness (PostgreSQL + Redis), Prometheus metrics,
and the request-id / metrics middleware."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from litestar import Request, Response, Router, get
from litestar.datastructures import State
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app import traces


class HttpMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "reckon_http_requests", "HTTP requests", ["method", "status"], registry=registry
        )
        self.latency = Histogram(
            "reckon_http_request_seconds", "HTTP request latency", ["method"], registry=registry
        )


Collector = Callable[[State], Awaitable[None]]


@get("/health/live", include_in_schema=True, tags=["ops"])
async def live() -> dict[str, str]:
    return {"status": "ok"}


# A readiness probe answers within this, whatever is down (a dependency that does not
# answer by then counts as down).
READY_TIMEOUT_SECONDS = 1.0


@get("/health/ready", tags=["ops"])
async def ready(state: State) -> Response[dict[str, Any]]:
    """200 when PostgreSQL and Redis both answer; else 503, naming what is down."""
    postgres, redis = await asyncio.gather(
        _check(_ping_database(state.engine)), _check(_ping_redis(state.redis))
    )
    checks = {"postgres": postgres, "redis": redis}
    down = [name for name, value in checks.items() if value != "ok"]
    return Response(
        {"status": "degraded" if down else "ok", "checks": checks, "down": down},
        status_code=503 if down else 200,
        headers={"Retry-After": "1"} if down else None,
    )


async def _check(ping: Awaitable[None]) -> str:
    try:
        async with asyncio.timeout(READY_TIMEOUT_SECONDS):
            await ping
        return "ok"
    except TimeoutError:
        return "error: timeout"
    except Exception as exc:  # any failure means not ready
        return f"error: {type(exc).__name__}"


async def _ping_database(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


async def _ping_redis(redis: Redis) -> None:
    await redis.ping()


@get("/metrics", tags=["ops"], media_type=CONTENT_TYPE_LATEST)
async def metrics(state: State) -> Response[bytes]:
    for collect in state.metric_collectors:
        await collect(state)
    return Response(generate_latest(state.metrics_registry), media_type=CONTENT_TYPE_LATEST)


def router() -> Router:
    return Router(path="/", route_handlers=[live, ready, metrics])


def request_context_middleware(app: ASGIApp) -> ASGIApp:
    """Bind a request id to the log context, echo it back, and count the request."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        request_id = headers.get(b"x-request-id", b"").decode("latin-1")[:100] or uuid.uuid4().hex
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status_holder = {"status": 500}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode("latin-1")),
                ]
            await send(message)

        try:
            await app(scope, receive, send_wrapper)
        finally:
            http: HttpMetrics | None = getattr(scope["app"].state, "http_metrics", None)
            if http is not None:
                method = str(scope.get("method", ""))
                http.requests.labels(method, str(status_holder["status"])).inc()
                http.latency.labels(method).observe(time.perf_counter() - started)

    return middleware


def trace_middleware(app: ASGIApp) -> ASGIApp:
    """A server span per HTTP request (installed only when tracing is on), named after the
    route template: paths can hold signed tokens, so neither the path nor the query string
    is recorded. A caller's `traceparent` header is continued."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        headers = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope.get("headers", [])
            if name in (b"traceparent", b"tracestate")
        }
        method = str(scope.get("method", ""))
        route = str(scope.get("path_template") or "unmatched")
        with traces.span(
            f"{method} {route}",
            kind=SpanKind.SERVER,
            parent=traces.from_headers(headers),
            **{"http.request.method": method, "http.route": route},
        ) as span:

            async def send_wrapper(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR))
                await send(message)

            await app(scope, receive, send_wrapper)

    return middleware


def client_address(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else "unknown"
