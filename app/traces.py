"""OpenTelemetry traces: spans for use cases, SQL statements and outbox deliveries, and the
W3C trace context an outbox row carries from the API to the worker.

Off unless a composition root configures it (an OTLP endpoint, or a test's exporter): then
`span()` yields a no-op span without touching OpenTelemetry, `traceparent()` is None, and no
engine listener or middleware is installed, so tracing costs nothing when off.

Attributes are ids, names, counts and statement text (placeholders, never bound values):
nothing from a request body, no card data, tokens, keys or passwords.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.trace import INVALID_SPAN, Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from sqlalchemy import event
from sqlalchemy.engine import Connection, ExceptionContext
from sqlalchemy.engine.interfaces import DBAPICursor, ExecutionContext
from sqlalchemy.ext.asyncio import AsyncEngine

TRACER_NAME = "reckon"
STATEMENT_LIMIT = 2000
_PROPAGATOR = TraceContextTextMapPropagator()
_SPAN_KEY = "_reckon_span"

Attribute = str | bool | int | float


@dataclass
class _Tracing:
    provider: TracerProvider | None = None
    tracer: trace.Tracer | None = None


# Set by configure() from a composition root, never at import.
_STATE = _Tracing()


def configure(
    service_name: str, *, endpoint: str | None = None, exporter: SpanExporter | None = None
) -> bool:
    """Turn tracing on: export to `exporter` (tests: the SDK's InMemorySpanExporter, spans
    exported as they end) or over OTLP/HTTP to `endpoint` (batched). With neither, leave it
    as it is (off, unless configured before). Returns whether tracing is on."""
    if exporter is None and not endpoint:
        return enabled()
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        assert endpoint is not None
        url = endpoint.rstrip("/")
        if not url.endswith("/v1/traces"):
            url += "/v1/traces"
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url)))
    previous = _STATE.provider
    _STATE.provider, _STATE.tracer = provider, provider.get_tracer(TRACER_NAME)
    if previous is not None:
        previous.shutdown()
    return True


def shutdown() -> None:
    """Flush and turn tracing off."""
    provider, _STATE.provider, _STATE.tracer = _STATE.provider, None, None
    if provider is not None:
        provider.shutdown()


def enabled() -> bool:
    return _STATE.tracer is not None


def _clean(attributes: Mapping[str, Any]) -> dict[str, Attribute]:
    return {
        key: value if isinstance(value, Attribute) else str(value)
        for key, value in attributes.items()
        if value is not None
    }


@contextmanager
def span(
    name: str,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    parent: otel_context.Context | None = None,
    **attributes: Any,
) -> Iterator[Span]:
    """A child of the current span (or of `parent`), current inside the block; an exception
    leaving the block is recorded on it. A no-op when tracing is off."""
    tracer = _STATE.tracer
    if tracer is None:
        yield INVALID_SPAN
        return
    with tracer.start_as_current_span(
        name, context=parent, kind=kind, attributes=_clean(attributes)
    ) as current:
        yield current


def traceparent() -> str | None:
    """The current span's W3C `traceparent`, to store with work another process continues."""
    if _STATE.tracer is None:
        return None
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get("traceparent")


def continued(traceparent_value: str | None) -> otel_context.Context | None:
    """The context a stored (or received) `traceparent` names, as a parent for span()."""
    if not traceparent_value or _STATE.tracer is None:
        return None
    return _PROPAGATOR.extract({"traceparent": traceparent_value})


def from_headers(headers: Mapping[str, str]) -> otel_context.Context | None:
    """An incoming request's trace context (`traceparent`/`tracestate`), if it has one."""
    if _STATE.tracer is None or "traceparent" not in headers:
        return None
    return _PROPAGATOR.extract(dict(headers))


def set_error(current: Span, error: BaseException) -> None:
    current.set_status(Status(StatusCode.ERROR, type(error).__name__))


def instrument_engine(engine: AsyncEngine) -> None:
    """A client span per SQL statement, child of whatever span is current. Installed only
    when tracing is on (the listeners cost a little on every statement)."""
    if _STATE.tracer is None:
        return
    sync_engine = engine.sync_engine
    if getattr(sync_engine, "_reckon_traced", False):
        return
    sync_engine._reckon_traced = True  # type: ignore[attr-defined]
    event.listen(sync_engine, "before_cursor_execute", _before_execute)
    event.listen(sync_engine, "after_cursor_execute", _after_execute)
    event.listen(sync_engine, "handle_error", _on_error)


@contextmanager
def sql_spans(statements: Sequence[str]) -> Iterator[None]:
    """A client span per statement sent straight through psycopg (app.db.run_together and
    Batch: no SQLAlchemy cursor event sees them), as instrument_engine gives SQLAlchemy's:
    the statements of one pipeline share its round trip, so their spans share its time. An
    error leaving the block marks them all. A no-op when tracing is off."""
    tracer = _STATE.tracer
    if tracer is None:
        yield
        return
    started = [
        tracer.start_span(
            f"sql {_operation(sql)}", kind=SpanKind.CLIENT, attributes=_sql_attributes(sql)
        )
        for sql in statements
    ]
    try:
        yield
    except BaseException as error:
        for one in started:
            set_error(one, error)
        raise
    finally:
        for one in started:
            one.end()


def _operation(statement: str) -> str:
    return statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "SQL"


def _sql_attributes(statement: str) -> dict[str, Attribute]:
    return {
        "db.system": "postgresql",
        "db.operation": _operation(statement),
        "db.statement": statement[:STATEMENT_LIMIT],
    }


def _before_execute(
    connection: Connection,
    cursor: DBAPICursor,
    statement: str,
    parameters: Any,
    context: ExecutionContext | None,
    executemany: bool,
) -> None:
    tracer = _STATE.tracer
    if tracer is None or context is None:
        return
    started = tracer.start_span(
        f"sql {_operation(statement)}", kind=SpanKind.CLIENT, attributes=_sql_attributes(statement)
    )
    setattr(context, _SPAN_KEY, started)


def _after_execute(
    connection: Connection,
    cursor: DBAPICursor,
    statement: str,
    parameters: Any,
    context: ExecutionContext | None,
    executemany: bool,
) -> None:
    started: Span | None = getattr(context, _SPAN_KEY, None)
    if started is not None:
        rows = getattr(cursor, "rowcount", -1)
        if isinstance(rows, int) and rows >= 0:
            started.set_attribute("db.rows", rows)
        started.end()


def _on_error(exception: ExceptionContext) -> None:
    started: Span | None = getattr(exception.execution_context, _SPAN_KEY, None)
    if started is not None:
        state = getattr(exception.original_exception, "sqlstate", None)
        if state:
            started.set_attribute("db.sqlstate", str(state))
        set_error(started, exception.original_exception)
        started.end()
