"""OpenTelemetry traces: one booking is one trace, from the HTTP request through the use case,
its lock wait, every SQL statement and the outbox row, to the worker delivering the effect."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from litestar.testing import AsyncTestClient
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from redis.asyncio import Redis

from app import traces
from app.db import create_engine, session_factory
from app.edge.asgi import create_app
from app.outbox.dispatch import Dispatcher, HandlerContext
from app.outbox.relay import Relay, RelayConfig, new_worker_id
from app.settings import Settings
from app.worker.jobs import events as event_jobs
from tests.factories import PASSWORD, make_catalog, sign_up

TZ = ZoneInfo("Africa/Cairo")


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    traces.configure("reckon-test", exporter=memory)
    try:
        yield memory
    finally:
        traces.shutdown()


def _by_id(spans: list[ReadableSpan]) -> dict[int, ReadableSpan]:
    return {span.context.span_id: span for span in spans if span.context is not None}


def _ancestors(span: ReadableSpan, index: dict[int, ReadableSpan]) -> list[str]:
    names = []
    while span.parent is not None and span.parent.span_id in index:
        span = index[span.parent.span_id]
        names.append(span.name)
    return names


async def test_a_booking_is_one_trace_from_request_to_delivered_outbox_effect(
    settings: Settings, exporter: InMemorySpanExporter
) -> None:
    app = create_app(settings)
    async with AsyncTestClient(app=app) as client:
        business = await sign_up(client)
        catalog = await make_catalog(client, business, capacity=2, start="08:00", end="20:00")
        day = datetime.now(TZ).date() + timedelta(days=3)
        exporter.clear()
        response = await client.post(
            "/api/v1/bookings",
            json={
                "service_id": catalog["service_id"],
                "branch_id": catalog["branch_id"],
                "resource_id": catalog["resource_id"],
                "start": datetime(day.year, day.month, day.day, 10, tzinfo=TZ).isoformat(),
                "customer": {"name": "Amal", "phone": "+201001234567"},
                "payment": {"provider": "sandbox"},
            },
            headers={**business.headers, "Idempotency-Key": str(uuid.uuid4())},
        )
        assert response.status_code == 201, response.text

    engine = create_engine(settings.runtime_database_url, pool_size=2)
    traces.instrument_engine(engine)
    redis = Redis.from_url(settings.redis_url)
    dispatcher = Dispatcher()
    event_jobs.register_handlers(dispatcher)  # live events: a real effect (Redis publish)
    relay = Relay(
        engine,
        dispatcher,
        HandlerContext(
            sessions=session_factory(engine),
            redis=redis,
            namespace=f"traces-{uuid.uuid4().hex[:6]}",
            worker_id=new_worker_id(),
        ),
        config=RelayConfig(max_attempts=1),
    )
    traces.instrument_engine(relay.engine)
    try:
        assert await relay.drain() > 0
    finally:
        await relay.close()
        await redis.aclose()
        await engine.dispose()

    spans = list(exporter.get_finished_spans())
    index = _by_id(spans)
    [request] = [s for s in spans if s.name == "POST /api/v1/bookings"]
    assert request.kind == SpanKind.SERVER
    assert request.attributes is not None
    assert request.attributes["http.response.status_code"] == 201
    trace_id = request.context.trace_id
    in_trace = [s for s in spans if s.context.trace_id == trace_id]

    [placing] = [s for s in in_trace if s.name == "booking.place"]
    assert "POST /api/v1/bookings" in _ancestors(placing, index)
    [lock] = [s for s in in_trace if s.name == "booking.lock_resources"]
    assert "booking.place" in _ancestors(lock, index)
    sql = [s for s in in_trace if s.name.startswith("sql ")]
    assert len(sql) >= 5
    assert any("INSERT INTO bookings" in str((s.attributes or {})["db.statement"]) for s in sql)
    assert all("POST /api/v1/bookings" in _ancestors(s, index) for s in sql)

    staged = {s.context.span_id: s for s in in_trace if s.name == "outbox.stage"}
    assert staged
    delivered = [s for s in in_trace if s.name == "outbox.deliver"]
    assert delivered, sorted({s.name for s in spans})
    for span in delivered:
        # The worker's span continues the request's trace, as a child of the staging span.
        assert span.kind == SpanKind.CONSUMER
        assert span.parent is not None and span.parent.span_id in staged
        assert span.status.status_code != StatusCode.ERROR
        assert "POST /api/v1/bookings" in _ancestors(span, index)

    secrets = [PASSWORD, business.token, settings.secret_key, "+201001234567", "Bearer"]
    for span in spans:
        for key, value in (span.attributes or {}).items():
            assert not any(secret in str(value) for secret in secrets), (span.name, key)


def test_tracing_is_off_without_an_endpoint(settings: Settings) -> None:
    assert not traces.enabled()
    create_app(settings)
    assert not traces.enabled()
    assert traces.traceparent() is None
    with traces.span("anything") as span:
        assert not span.is_recording()
