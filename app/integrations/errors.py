"""Provider failures, classified once: retry later, or give up.

Outbox handlers catch `RetryableProviderError` (back off, honouring `retry_after`) and
`PermanentProviderError` (mark the row dead / the payment failed). Nothing here knows about
the domain; each client maps its provider's wire errors onto these two classes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import httpx


class ProviderError(Exception):
    """A provider call failed. `status` is the HTTP status (None for transport errors)."""

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        status: int | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.status = status
        self.code = code
        # The request went out and no answer came back: the provider may have acted on it.
        # Retrying is safe only where the provider takes an idempotency key.
        self.answer_lost = False


class RetryableProviderError(ProviderError):
    """Try again later; `retry_after` (seconds) is the provider's own hint when it gave one."""

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        status: int | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, provider=provider, status=status, code=code)
        self.retry_after = retry_after


class PermanentProviderError(ProviderError):
    """Retrying the same request can never succeed (bad request, auth, not found...)."""


class InvalidSignature(Exception):
    """A webhook's signature is missing, malformed, stale or wrong. Answer 400, store nothing."""


# Decides, from a non-2xx response, whether a provider-specific error is transient even though
# its HTTP status says otherwise (Google's 403 rateLimitExceeded, WhatsApp's 130429).
RetryablePredicate = Callable[[httpx.Response], bool]


def parse_retry_after(value: str | None, date_header: str | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP-date.

    An HTTP-date is measured against the response's own Date header, so the result does not
    depend on our clock; without a Date header it cannot be interpreted and is ignored.
    """
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    if not date_header:
        return None
    try:
        target = parsedate_to_datetime(value)
        sent = parsedate_to_datetime(date_header)
    except (TypeError, ValueError):
        return None
    return max(0.0, (target - sent).total_seconds())


def classify_status(
    provider: str,
    status: int,
    headers: Mapping[str, str],
    *,
    message: str = "",
    code: str | None = None,
    retryable: bool = False,
) -> ProviderError:
    """Map an HTTP status (plus a provider-specific `retryable` verdict) to an error."""
    retry_after = parse_retry_after(headers.get("retry-after"), headers.get("date"))
    text = message or f"HTTP {status}"
    if retryable or status == 429 or status >= 500 or status == 408:
        return RetryableProviderError(
            text, provider=provider, status=status, code=code, retry_after=retry_after
        )
    return PermanentProviderError(text, provider=provider, status=status, code=code)


def classify_response(
    provider: str, response: httpx.Response, *, is_retryable: RetryablePredicate | None = None
) -> ProviderError:
    body = response_json(response)
    message = _error_message(body) or response.reason_phrase
    return classify_status(
        provider,
        response.status_code,
        response.headers,
        message=message,
        code=_error_code(body),
        retryable=bool(is_retryable and is_retryable(response)),
    )


# Raised after the request was written: the provider may have acted on it and its answer was
# lost. (Connect and pool failures and write errors mean it never arrived whole.)
ANSWER_LOST = (httpx.ReadTimeout, httpx.ReadError, httpx.RemoteProtocolError)


def classify_transport_error(provider: str, exc: httpx.HTTPError) -> ProviderError:
    """Timeouts and connection failures are transient; a malformed request is not."""
    if isinstance(exc, httpx.TransportError) and not isinstance(
        exc, httpx.UnsupportedProtocol | httpx.LocalProtocolError
    ):
        error = RetryableProviderError(f"{type(exc).__name__}: {exc}", provider=provider)
        error.answer_lost = isinstance(exc, ANSWER_LOST)
        return error
    return PermanentProviderError(f"{type(exc).__name__}: {exc}", provider=provider)


async def send(
    client: httpx.AsyncClient,
    provider: str,
    request: httpx.Request,
    *,
    is_retryable: RetryablePredicate | None = None,
    ok_statuses: frozenset[int] = frozenset(),
) -> httpx.Response:
    """Send `request`; return the response when 2xx (or in `ok_statuses`), else raise."""
    try:
        response = await client.send(request)
    except httpx.HTTPError as exc:
        raise classify_transport_error(provider, exc) from exc
    if response.is_success or response.status_code in ok_statuses:
        return response
    raise classify_response(provider, response, is_retryable=is_retryable)


def response_json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def _error_message(body: Any) -> str | None:
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])
    for key in ("message", "error_description", "error"):
        if isinstance(body.get(key), str):
            return str(body[key])
    return None


def _error_code(body: Any) -> str | None:
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    if isinstance(error, dict) and error.get("code") is not None:
        return str(error["code"])
    if isinstance(error, str):
        return error
    return None
