"""Operations endpoints: liveness, readiness (PostgreSQL + Redis), Prometheus metrics,
and the request-id / metrics middleware."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from litestar import Request, Response, Router, get
from litestar.datastructures import State
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine


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


@get("/health/ready", tags=["ops"])
async def ready(state: State) -> Response[dict[str, Any]]:
    checks = {
        "database": await _check_database(state.engine),
        "redis": await _check_redis(state.redis),
    }
    healthy = all(value == "ok" for value in checks.values())
    return Response(
        {"status": "ok" if healthy else "degraded", "checks": checks},
        status_code=200 if healthy else 503,
    )


async def _check_database(engine: AsyncEngine) -> str:
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        return "ok"
    except Exception as exc:  # any failure means not ready
        return f"error: {type(exc).__name__}"


async def _check_redis(redis: Redis) -> str:
    try:
        await redis.ping()
        return "ok"
    except Exception as exc:
        return f"error: {type(exc).__name__}"


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


def client_address(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else "unknown"
