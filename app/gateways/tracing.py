"""A client span per outgoing provider HTTP call (installed only when tracing is on).

Records the method, host, path and status: never the query string, headers or bodies, which
carry access tokens, API keys and card or customer data."""

from __future__ import annotations

import httpx
from opentelemetry.trace import SpanKind, Status, StatusCode

from app import traces


class TracingTransport(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        with traces.span(
            f"HTTP {request.method} {request.url.host}",
            kind=SpanKind.CLIENT,
            parent=None,
            **{
                "http.request.method": request.method,
                "server.address": request.url.host,
                "url.path": request.url.path,
            },
        ) as span:
            response = await self.inner.handle_async_request(request)
            span.set_attribute("http.response.status_code", response.status_code)
            if response.status_code >= 500:
                span.set_status(Status(StatusCode.ERROR))
            return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def client_transport() -> httpx.AsyncBaseTransport | None:
    """The transport for the worker's provider client: traced when tracing is on, else
    httpx's default (None)."""
    return TracingTransport(httpx.AsyncHTTPTransport()) if traces.enabled() else None
