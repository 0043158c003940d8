"""Google Calendar v3 over httpx, with a deterministic event id per booking.

The event id is the booking UUID in base32hex (RFC 2938 alphabet a-v0-9, lowercase, 26
chars), so a retried insert after a crash hits 409 and becomes a patch instead of a duplicate
event: the id IS the idempotency key. Cancelling sets `status: cancelled` (the event stays
addressable, so a late patch cannot resurrect a deleted id); deleting an already deleted
event (404/410) counts as done.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote
from uuid import UUID

import httpx

from app.integrations.errors import (
    PermanentProviderError,
    RetryableProviderError,
    response_json,
    send,
)

PROVIDER = "google_calendar"
DEFAULT_API_BASE = "https://www.googleapis.com/calendar/v3"
TOKEN_URL = "https://oauth2.googleapis.com/token"
RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})


class AccessTokenProvider(Protocol):
    async def access_token(self) -> str: ...

    def invalidate(self) -> None: ...


def event_id_for(booking_id: UUID) -> str:
    """Base32hex of the UUID's 16 bytes, unpadded, lowercase: valid Google event id."""
    return base64.b32hexencode(booking_id.bytes).decode().rstrip("=").lower()


def is_rate_limited(response: httpx.Response) -> bool:
    """Google reports rate limits as 403 with reason rateLimitExceeded/userRateLimitExceeded."""
    body = response_json(response)
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return False
    reasons = {e.get("reason") for e in error.get("errors") or [] if isinstance(e, dict)}
    for detail in error.get("details") or []:
        if isinstance(detail, dict) and detail.get("reason") in ("RATE_LIMIT_EXCEEDED",):
            return True
    return bool(reasons & RATE_LIMIT_REASONS) or error.get("status") == "RESOURCE_EXHAUSTED"


@dataclass
class _CachedToken:
    value: str
    expires_at: float


class GoogleOAuthRefresher:
    """Exchanges a refresh token for access tokens, cached until shortly before expiry."""

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        http: httpx.AsyncClient,
        token_url: str = TOKEN_URL,
        clock: Callable[[], float] = time.monotonic,
        skew_seconds: float = 60.0,
    ) -> None:
        self._client_id = client_id
        self._client_secret = client_secret
        self._refresh_token = refresh_token
        self._http = http
        self._token_url = token_url
        self._clock = clock
        self._skew = skew_seconds
        self._cached: _CachedToken | None = None
        self._lock = asyncio.Lock()

    async def access_token(self) -> str:
        async with self._lock:  # one refresh at a time, not one per concurrent caller
            if self._cached and self._clock() < self._cached.expires_at:
                return self._cached.value
            form = {
                "grant_type": "refresh_token",
                "refresh_token": self._refresh_token,
                "client_id": self._client_id,
                "client_secret": self._client_secret,
            }
            request = self._http.build_request("POST", self._token_url, data=form)
            # 400 invalid_grant means the user revoked access: permanent, reconnect needed.
            response = await send(self._http, PROVIDER, request)
            body = response_json(response)
            token = body.get("access_token") if isinstance(body, dict) else None
            if not token:
                raise PermanentProviderError("no access_token in response", provider=PROVIDER)
            lifetime = float(body.get("expires_in") or 3600)
            self._cached = _CachedToken(str(token), self._clock() + lifetime - self._skew)
            return str(token)

    def invalidate(self) -> None:
        self._cached = None


class GcalClient:
    def __init__(
        self,
        tokens: AccessTokenProvider,
        http: httpx.AsyncClient,
        *,
        api_base: str = DEFAULT_API_BASE,
    ) -> None:
        self._tokens = tokens
        self._http = http
        self._api_base = api_base.rstrip("/")

    event_id_for = staticmethod(event_id_for)

    async def insert_event(
        self, calendar_id: str, event_id: str, event: dict[str, Any]
    ) -> dict[str, Any]:
        """Create the event with our id; if it already exists (409), patch it instead."""
        body = {**event, "id": event_id}
        response = await self._request(
            "POST", self._events_url(calendar_id), json=body, ok_statuses=frozenset({409})
        )
        if response.status_code == 409:
            # The id exists (an earlier attempt landed, or the event was cancelled): an insert
            # means the booking is live, so bring the event back to confirmed with our fields.
            return await self.patch_event(calendar_id, event_id, {**event, "status": "confirmed"})
        return _json_object(response)

    async def patch_event(
        self, calendar_id: str, event_id: str, changes: dict[str, Any]
    ) -> dict[str, Any]:
        response = await self._request(
            "PATCH", self._events_url(calendar_id, event_id), json=changes
        )
        return _json_object(response)

    async def cancel_event(self, calendar_id: str, event_id: str) -> None:
        """Mark the event cancelled; an event that is already gone counts as cancelled."""
        await self._request(
            "PATCH",
            self._events_url(calendar_id, event_id),
            json={"status": "cancelled"},
            ok_statuses=frozenset({404, 410}),
        )

    async def delete_event(self, calendar_id: str, event_id: str) -> None:
        await self._request(
            "DELETE", self._events_url(calendar_id, event_id), ok_statuses=frozenset({404, 410})
        )

    def _events_url(self, calendar_id: str, event_id: str | None = None) -> str:
        url = f"{self._api_base}/calendars/{quote(calendar_id, safe='')}/events"
        return f"{url}/{quote(event_id, safe='')}" if event_id else url

    async def _request(
        self,
        method: str,
        url: str,
        *,
        json: dict[str, Any] | None = None,
        ok_statuses: frozenset[int] = frozenset(),
    ) -> httpx.Response:
        # One retry on 401: the cached access token may have been revoked or expired early.
        for attempt in range(2):
            token = await self._tokens.access_token()
            request = self._http.build_request(
                method, url, json=json, headers={"Authorization": f"Bearer {token}"}
            )
            try:
                return await send(
                    self._http,
                    PROVIDER,
                    request,
                    is_retryable=is_rate_limited,
                    ok_statuses=ok_statuses,
                )
            except PermanentProviderError as exc:
                if exc.status != 401 or attempt == 1:
                    raise
                self._tokens.invalidate()
        raise RetryableProviderError("unreachable", provider=PROVIDER)  # pragma: no cover


def _json_object(response: httpx.Response) -> dict[str, Any]:
    body = response_json(response)
    return body if isinstance(body, dict) else {}
