"""A provider call inside an outbox handler: the client's failures become the outbox's."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from opentelemetry.trace import SpanKind

from app import traces
from app.integrations.errors import PermanentProviderError, RetryableProviderError
from app.outbox.errors import PermanentError, RetryableError

T = TypeVar("T")


async def call(make: Callable[[], Awaitable[T]]) -> T:
    """Retryable provider errors (timeouts, 5xx, 429) retry with backoff, honouring the
    provider's Retry-After; permanent ones (4xx) send the row dead at once."""
    with traces.span("provider.call", kind=SpanKind.CLIENT) as span:
        try:
            return await make()
        except RetryableProviderError as error:
            traces.set_error(span, error)
            raise RetryableError(str(error), retry_after=error.retry_after) from error
        except PermanentProviderError as error:
            traces.set_error(span, error)
            raise PermanentError(str(error)) from error
